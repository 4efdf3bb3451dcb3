package apiserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// taskNode is a node running tasks, as the container and logs routes
// read it: its objects and statuses, and log files under dir. Only the
// methods those routes use are implemented.
type taskNode struct {
	Node     // nil: any other read panics
	self     string
	manager  bool
	dir      string
	mu       sync.Mutex
	objects  records.Objects
	statuses map[string]api.TaskStatus
	exits    map[string]int // how its agent saw the processes it stopped end
}

func (n *taskNode) Info() api.Info { return api.Info{NodeID: n.self} }
func (n *taskNode) Manager() error {
	if n.manager {
		return nil
	}
	return api.ErrNotManager
}
func (n *taskNode) Objects() records.Objects { return n.objects }
func (n *taskNode) TaskStatuses() map[string]api.TaskStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]api.TaskStatus{}
	for k, v := range n.statuses {
		out[k] = v
	}
	return out
}
func (n *taskNode) TaskLogPath(id string) string { return filepath.Join(n.dir, id, "task.log") }
func (n *taskNode) StateVersion() uint64         { return 0 }

func (n *taskNode) StoppedTask(id string) (*int, bool) {
	if t := n.objects.Tasks[id]; t.Current() && t.NodeID == n.self {
		return nil, false
	}
	if code, ok := n.exits[id]; ok {
		return &code, true
	}
	return nil, true
}

// TaskEnded: the task's process reported its end, or it was shut down.
func (n *taskNode) TaskEnded(id string) bool {
	st := n.TaskStatuses()[id].State
	return api.Terminal(st) || st == api.TaskShutdown
}

func (n *taskNode) setStatus(id string, s api.TaskStatus) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.statuses[id] = s
}

// newTaskNode is node n1 (a worker unless manager) running www.1 (t1, a
// host-mode port) with www.2 (t2) on n2, www.1's earlier task t0 that
// exited with status 3, and tz before it, which an update shut down and
// whose server exited 0 on the agent's SIGTERM.
func newTaskNode(t *testing.T, manager bool) (*taskNode, *api.Client) {
	t.Helper()
	st := records.Objects{}
	st.Init()
	st.Nodes["n1"] = api.Node{ID: "n1", Hostname: "node1"}
	st.Nodes["n2"] = api.Node{ID: "n2", Hostname: "node2"}
	st.Services["s1"] = api.Service{ID: "s1", Name: "www", Image: "whoami",
		Networks: []api.NetworkAttachment{{Target: "net1", Aliases: []string{"web"}}},
		Endpoint: api.Endpoint{Ports: []api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: api.PublishHost}}}}
	st.Tasks["t1"] = api.Task{ID: "t1", ServiceID: "s1", ServiceName: "www", Slot: 1, NodeID: "n1", Image: "whoami", DesiredState: api.TaskRunning,
		Networks: []api.TaskNetwork{{NetworkID: "net1", NetworkName: "ovnet", Addr: "10.0.1.3/24", MAC: "02:42:0a:00:01:03"}}}
	st.Tasks["t2"] = api.Task{ID: "t2", ServiceID: "s1", ServiceName: "www", Slot: 2, NodeID: "n2", Image: "whoami", DesiredState: api.TaskRunning}
	st.Tasks["t0"] = api.Task{ID: "t0", ServiceID: "s1", ServiceName: "www", Slot: 1, NodeID: "n1", Image: "whoami", DesiredState: api.TaskShutdown,
		Status: api.TaskStatus{State: api.TaskFailed, Err: "task: non-zero exit (3)"}}
	st.Tasks["tz"] = api.Task{ID: "tz", ServiceID: "s1", ServiceName: "www", Slot: 1, NodeID: "n1", Image: "whoami", DesiredState: api.TaskShutdown,
		Status: api.TaskStatus{State: api.TaskShutdown}}
	n := &taskNode{self: "n1", manager: manager, dir: t.TempDir(), objects: st, statuses: map[string]api.TaskStatus{
		"t1": {State: api.TaskRunning, PID: 42, Sandbox: "/var/run/meshd/netns/" + st.Tasks["t1"].Hostname()},
		"t2": {State: api.TaskRunning, PID: 43},
	}, exits: map[string]int{"t0": 137, "tz": 0}}
	srv, err := New(Config{Node: n, Swarm: fakeSwarm{}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "meshd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.LocalHandler(), WriteTimeout: 300 * time.Millisecond}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return n, api.NewClient(sock)
}

func TestContainerRoutes(t *testing.T) {
	ctx := context.Background()
	_, worker := newTaskNode(t, false)
	_, manager := newTaskNode(t, true)
	t1 := api.Task{ID: "t1", ServiceName: "www", Slot: 1}

	c, err := worker.Container(ctx, "www.1.t1")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != t1.ContainerID() || c.NetworkSettings.SandboxKey != "/var/run/meshd/netns/"+t1.Hostname() ||
		c.Config.Hostname != t1.Hostname() || c.State.Pid != 42 || !c.State.Running {
		t.Errorf("got %+v, want www.1 running with its sandbox", c)
	}
	if ep := c.NetworkSettings.Networks["ovnet"]; ep.IPAddress != "10.0.1.3" || ep.IPPrefixLen != 24 || len(ep.Aliases) != 1 {
		t.Errorf("got endpoint %+v, want 10.0.1.3/24 with alias web", ep)
	}
	if got := c.NetworkSettings.Ports["80/tcp"]; len(got) != 1 || got[0].HostPort != "8080" {
		t.Errorf("got ports %v, want 80/tcp on 8080", c.NetworkSettings.Ports)
	}
	// A worker knows only its own tasks; a manager the cluster's.
	if _, err := worker.Container(ctx, "www.2"); api.StatusCode(err) != http.StatusNotFound {
		t.Errorf("worker: www.2 gave %v, want a 404", err)
	}
	if c, err := manager.Container(ctx, "www.2"); err != nil || c.Node.Name != "node2" {
		t.Errorf("manager: www.2 gave %+v, %v, want it on node2", c.Node, err)
	}
	old, err := worker.Container(ctx, "t0")
	if err != nil || old.State.Status != "exited" || old.State.ExitCode == nil || *old.State.ExitCode != 3 ||
		len(old.NetworkSettings.Ports) != 0 {
		t.Errorf("got %+v, %v, want exited with status 3 and no ports", old.State, err)
	}
	// The managers wrote tz's shutdown without a status; its agent saw
	// the process exit 0. t0's own report, 3, stands.
	if c, err := worker.Container(ctx, "tz"); err != nil || c.State.Status != "exited" || c.State.ExitCode == nil || *c.State.ExitCode != 0 {
		t.Errorf("tz: got %+v, %v, want exited with status 0, as its agent saw", c.State, err)
	}
	// ps: the node's own tasks, ended ones included.
	all, err := manager.Containers(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("got %d containers (%v), want node1's 3", len(all), err)
	}
	// meshctl ps reads the node's tasks.
	tasks, err := worker.Tasks(ctx, "", "n1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if code, ok := api.ContainerExitCode(tk); tk.ID == "tz" && (!ok || code != 0) {
			t.Errorf("ps: tz's exit status %d (known %v), want 0", code, ok)
		}
	}
}

func TestTaskLogs(t *testing.T) {
	ctx := context.Background()
	n, cl := newTaskNode(t, true)
	logf := n.TaskLogPath("t1")
	if err := os.MkdirAll(filepath.Dir(logf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logf, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(ref, tail string) (string, error) {
		r, err := cl.TaskLogs(ctx, ref, tail, false)
		if err != nil {
			return "", err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		return string(b), err
	}
	for _, tt := range []struct{ tail, want string }{
		{"", "one\ntwo\nthree\n"}, {"all", "one\ntwo\nthree\n"}, {"2", "two\nthree\n"}, {"0", ""}, {"9", "one\ntwo\nthree\n"},
	} {
		if got, err := read("www.1", tt.tail); err != nil || got != tt.want {
			t.Errorf("tail %q: got %q, %v, want %q", tt.tail, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ ref, tail, want string }{
		{"www.1", "-1", "invalid tail"},
		{"www.1", "99999999", "invalid tail"},
		{"www.2", "", "runs on node2"},
		{"t0", "", "no longer keeps its output"},
		{"nosuch", "", "No such container: nosuch"},
	} {
		if _, err := read(tt.ref, tt.tail); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s tail %q: got %v, want %q", tt.ref, tt.tail, err, tt.want)
		}
	}

	// Follow streams what the task writes past the server's write
	// timeout, and ends when the task does.
	r, err := cl.TaskLogs(ctx, "www.1", "1", true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lines := make(chan string, 10)
	go func() {
		b := make([]byte, 100)
		for {
			k, err := r.Read(b)
			if k > 0 {
				lines <- string(b[:k])
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	want := "three\n"
	var got string
	deadline := time.After(10 * time.Second)
	for got != want {
		select {
		case s := <-lines:
			got += s
		case <-deadline:
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// Not a synchronisation: the stream must outlive the server's write
	// timeout.
	time.Sleep(600 * time.Millisecond)
	f, err := os.OpenFile(logf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("four\n")
	f.Close()
	n.setStatus("t1", api.TaskStatus{State: api.TaskFailed, Err: "task: non-zero exit (1)"})
	for s := range lines {
		got += s
	}
	if got != "three\nfour\n" {
		t.Errorf("followed %q, want three then four, then the end", got)
	}
}
