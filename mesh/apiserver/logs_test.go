package apiserver

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/records"
)

// logNode is a taskNode (www.1 = t1 on n1, www.2 = t2 on n2) serving
// service logs over a fake gossip store, whose tasks a test may add to.
type logNode struct {
	*taskNode
	db *records.FakeDB

	mu    sync.Mutex // guards added
	added []api.Task
}

func (n *logNode) Objects() records.Objects {
	st := n.taskNode.Objects()
	n.mu.Lock()
	defer n.mu.Unlock()
	st.Tasks = maps.Clone(st.Tasks)
	for _, t := range n.added {
		st.Tasks[t.ID] = t
	}
	return st
}

func (n *logNode) addTask(t api.Task) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.added = append(n.added, t)
}

var testManagerAddr = netip.MustParseAddrPort("192.168.33.10:2377")

func (n *logNode) LogSubs() (records.DB, netip.AddrPort) {
	if !n.manager {
		return nil, netip.AddrPort{}
	}
	return n.db, testManagerAddr
}

// newLogServer serves service logs on a unix socket (the client's) and
// returns the cluster port's handler, which the test calls as a node
// whose certificate verified.
func newLogServer(t *testing.T, manager bool) (*logNode, *api.Client, func(node, sub, body string) (int, string)) {
	t.Helper()
	tn, _ := newTaskNode(t, manager)
	n := &logNode{taskNode: tn, db: records.NewFakeDB("n1")}
	srv, err := New(Config{Node: n, Swarm: fakeSwarm{}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "meshd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.LocalHandler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	cluster := clusterBodies(srv.mux(cluster))
	push := func(node, sub, body string) (int, string) {
		r := httptest.NewRequest(http.MethodPost, logPushPrefix+sub, strings.NewReader(body))
		r = r.WithContext(context.WithValue(r.Context(), peerKey{}, ca.Peer{NodeID: node, Role: api.RoleWorker}))
		w := httptest.NewRecorder()
		cluster.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	return n, api.NewClient(sock), push
}

// readAll reads a stream to its end: each record as "name@node: line" or
// "warning: ...".
func readAll(t *testing.T, s *api.LogStream) []string {
	t.Helper()
	var out []string
	for {
		rec, err := s.Next()
		if errors.Is(err, io.EOF) {
			slices.Sort(out)
			return out
		}
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if rec.Warning != "" {
			out = append(out, "warning: "+rec.Warning)
			continue
		}
		out = append(out, rec.TaskName+"."+rec.TaskID+"@"+rec.NodeName+": "+rec.Line)
	}
}

func onlySub(t *testing.T, db *records.FakeDB) records.LogSub {
	t.Helper()
	subs := records.LogSubs(db)
	if len(subs) != 1 {
		t.Fatalf("got subscriptions %+v, want one", subs)
	}
	return subs[0]
}

func TestServiceLogs(t *testing.T) {
	ctx := context.Background()
	n, cl, push := newLogServer(t, true)
	db := n.db
	s, err := cl.ServiceLogs(ctx, "www", api.ServiceLogsOptions{Tail: "2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sub := onlySub(t, db)
	if sub.Manager != testManagerAddr || sub.Tail != 2 || sub.Follow || sub.Owner != "n1" ||
		strings.Join(sub.Tasks["n1"], ",") != "t1" || strings.Join(sub.Tasks["n2"], ",") != "t2" || len(sub.Tasks) != 2 {
		t.Fatalf("published %+v, want t1 on n1 and t2 on n2, tail 2, to this manager", sub)
	}

	// Refusals: a node the subscription does not name, an unknown
	// subscription, a record for another node's task.
	if code, body := push("n3", sub.ID, `{"Task":"t1","Line":"forged"}`+"\n"); code != http.StatusForbidden {
		t.Errorf("push from n3: got %d %s, want 403", code, body)
	}
	if code, _ := push("n2", "nosuch", ""); code != http.StatusNotFound {
		t.Errorf("push to an unknown subscription: got %d, want 404", code)
	}
	if code, body := push("n1", sub.ID, `{"Task":"t1","Line":"one"}`+"\n"+`{"Task":"t1","Line":"two"}`+"\n"); code != http.StatusOK {
		t.Fatalf("push from n1: got %d %s", code, body)
	}
	code, body := push("n2", sub.ID, `{"Task":"t2","Line":"hello"}`+"\n"+`{"Task":"t1","Line":"forged"}`+"\n")
	if code != http.StatusForbidden || !strings.Contains(body, "is not node n2's") {
		t.Errorf("push of t1 from n2: got %d %s, want 403", code, body)
	}
	got := readAll(t, s)
	want := []string{"www.1.t1@node1: one", "www.1.t1@node1: two", "www.2.t2@node2: hello"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if subs := records.LogSubs(db); len(subs) != 0 {
		t.Errorf("subscriptions left after the stream: %+v", subs)
	}
}

func TestServiceLogsTaskAndRefusals(t *testing.T) {
	ctx := context.Background()
	n, cl, _ := newLogServer(t, true)
	db := n.db
	s, err := cl.ServiceLogs(ctx, "www.2", api.ServiceLogsOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	sub := onlySub(t, db)
	if len(sub.Tasks) != 1 || strings.Join(sub.Tasks["n2"], ",") != "t2" || sub.Tail != -1 || !sub.Follow {
		t.Errorf("published %+v, want t2 on n2 alone, all of it, followed", sub)
	}
	s.Close() // the client goes: the subscription goes
	deadline := time.Now().Add(5 * time.Second)
	for len(records.LogSubs(db)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("subscription left after the client went")
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, tt := range []struct{ ref, tail, want string }{
		{"nosuch", "", "no such task or service: nosuch"},
		{"www", "-1", "invalid tail"},
	} {
		if _, err := cl.ServiceLogs(ctx, tt.ref, api.ServiceLogsOptions{Tail: tt.tail}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.ref, err, tt.want)
		}
	}
	_, worker, _ := newLogServer(t, false)
	if _, err := worker.ServiceLogs(ctx, "www", api.ServiceLogsOptions{}); err == nil || err.Error() != api.ErrNotManager.Error() {
		t.Errorf("worker: got %v, want %v", err, api.ErrNotManager)
	}
}

func TestServiceLogsSilentNode(t *testing.T) {
	defer func(d time.Duration) { logAnswerWithin = d }(logAnswerWithin)
	logAnswerWithin = 100 * time.Millisecond
	n, cl, push := newLogServer(t, true)
	db := n.db
	s, err := cl.ServiceLogs(context.Background(), "www", api.ServiceLogsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code, body := push("n1", onlySub(t, db).ID, `{"Task":"t1","Line":"one"}`+"\n"); code != http.StatusOK {
		t.Fatalf("push from n1: got %d %s", code, body)
	}
	got := readAll(t, s)
	want := []string{"warning: node node2 did not answer within 100ms: its tasks' output is missing", "www.1.t1@node1: one"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestServiceLogsFollowNewTasks: a followed service's task that starts
// after the request is added to the subscription, read from its start,
// and its node's records for it are taken.
func TestServiceLogsFollowNewTasks(t *testing.T) {
	n, cl, push := newLogServer(t, true)
	s, err := cl.ServiceLogs(context.Background(), "www", api.ServiceLogsOptions{Tail: "0", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := onlySub(t, n.db).ID
	if code, _ := push("n2", id, `{"Task":"t3","Line":"too early"}`+"\n"); code != http.StatusForbidden {
		t.Errorf("push of a task not yet read: got %d, want 403", code)
	}
	n.addTask(api.Task{ID: "t3", ServiceID: "s1", ServiceName: "www", Slot: 3, NodeID: "n2", Image: "whoami", DesiredState: api.TaskRunning})
	deadline := time.Now().Add(5 * time.Second)
	for sub := onlySub(t, n.db); strings.Join(sub.Tasks["n2"], ",") != "t2,t3"; sub = onlySub(t, n.db) {
		if time.Now().After(deadline) {
			t.Fatalf("subscription %+v, want t3 added on n2", sub)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sub := onlySub(t, n.db); strings.Join(sub.Whole, ",") != "t3" || sub.Tail != 0 {
		t.Errorf("subscription %+v, want t3 read whole, the others from their end", sub)
	}
	if code, body := push("n2", id, `{"Task":"t3","Line":"first"}`+"\n"); code != http.StatusOK {
		t.Fatalf("push of t3: got %d %s", code, body)
	}
	rec, err := s.Next()
	if err != nil || rec.TaskName != "www.3" || rec.NodeName != "node2" || rec.Line != "first" {
		t.Errorf("got %+v, %v, want www.3's first line from node2", rec, err)
	}
}
