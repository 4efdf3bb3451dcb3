package apiserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/records"
)

const (
	workerToken  = "SWMTKN-1-worker0123456789abcdefghij"
	managerToken = "SWMTKN-1-manager0123456789abcdefghi"
	leaderSecret = "SWMTKN-1-leadersecret0123456789abcd"
)

// fakeNode answers the reads of a node whose role is given: a manager
// (leader or follower forwarding to the leader), a worker, or a node in
// no cluster.
type fakeNode struct {
	m       *manager.Manager
	db      *records.FakeDB
	control func() (Writes, error)
}

func (n fakeNode) Info() api.Info                               { return api.Info{NodeID: "w2", NodeName: "node2"} }
func (n fakeNode) Control() (Writes, error)                     { return n.control() }
func (n fakeNode) JoinToken(role string) (api.JoinToken, error) { return n.m.JoinToken(role) }
func (n fakeNode) Objects() records.Objects                     { return n.m.Objects() }
func (n fakeNode) TaskStatuses() map[string]api.TaskStatus      { return records.TaskStatuses(n.db) }
func (n fakeNode) Nodes() []api.Node                            { return n.m.Nodes() }
func (n fakeNode) Namespaces() (string, []string, error) {
	return "/run/x", []string{"ingress_sbox"}, nil
}
func (n fakeNode) LBTables() []api.LBTable { return nil }
func (n fakeNode) StateVersion() uint64    { return n.m.State().Version }

type fakeSwarm struct{}

func (fakeSwarm) Init(context.Context, api.SwarmInit) (api.SwarmInitResponse, error) {
	return api.SwarmInitResponse{}, api.ErrAlreadyInSwarm
}
func (fakeSwarm) Join(context.Context, api.SwarmJoin) (api.SwarmJoinResponse, error) {
	return api.SwarmJoinResponse{}, api.ErrAlreadyInSwarm
}
func (fakeSwarm) Leave(context.Context, api.SwarmLeave) error { return nil }

type fakeKeys struct{ secret string }

func (fakeKeys) Tokens() (string, string) { return workerToken, managerToken }
func (k fakeKeys) NodeSecret() string     { return k.secret }

// testCluster is a leader's manager behind its cluster port, and the
// local APIs of a follower manager (forwarding to it), a worker and a node
// in no cluster, all over real HTTP.
type testCluster struct {
	leaderURL                 string
	follower, worker, outside *api.Client
	m                         *manager.Manager
	db                        *records.FakeDB
	waited                    *atomic.Uint64 // the last version the follower waited for
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	store, err := manager.OpenStore(manager.StoreConfig{NodeID: "m1", Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	self := api.Node{ID: "m1", Hostname: "node1", Role: api.RoleManager, Availability: api.AvailabilityActive,
		Addr: "192.168.33.10", AddrPrefix: "192.168.33.10/24", APIAddr: "192.168.33.10:2377", CreatedAt: time.Now()}
	st, err := manager.NewCluster(self)
	if err != nil {
		t.Fatal(err)
	}
	st.WorkerToken, st.ManagerToken, st.NodeSecrets["m1"] = workerToken, managerToken, leaderSecret
	if err := store.Bootstrap("m1", st); err != nil {
		t.Fatal(err)
	}
	db := records.NewFakeDB("m1")
	m, err := manager.New(manager.Config{Store: store, DB: db, NodeID: "m1", APIAddr: "192.168.33.10:2377"})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(node fakeNode, keys Keys) (*Server, *api.Client) {
		srv, err := New(Config{Node: node, Swarm: fakeSwarm{}, Keys: keys})
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
		return srv, api.NewClient(sock)
	}
	leader, _ := serve(fakeNode{m, db, func() (Writes, error) { return m, nil }}, fakeKeys{leaderSecret})
	cluster := httptest.NewServer(leader.ClusterHandler())
	t.Cleanup(cluster.Close)
	var waited atomic.Uint64
	fwd := NewForwarder(strings.TrimPrefix(cluster.URL, "http://"), leaderSecret, func(_ context.Context, v uint64) error {
		waited.Store(v)
		return nil
	})
	tc := &testCluster{leaderURL: cluster.URL, m: m, db: db, waited: &waited}
	_, tc.follower = serve(fakeNode{m, db, func() (Writes, error) { return fwd, nil }}, fakeKeys{"other"})
	_, tc.worker = serve(fakeNode{m, db, func() (Writes, error) { return nil, api.ErrNotManager }}, fakeKeys{})
	_, tc.outside = serve(fakeNode{m, db, func() (Writes, error) { return nil, api.ErrNotInSwarm }}, fakeKeys{})
	return tc
}

func TestFollowerForwardsWritesToTheLeader(t *testing.T) {
	tc := newTestCluster(t)
	c := tc.follower
	ctx := context.Background()
	n, err := c.CreateNetwork(ctx, api.NetworkCreate{Name: "ovnet"})
	if err != nil || n.Subnet != "10.0.0.0/24" {
		t.Fatalf("network create through a follower: %+v, %v", n, err)
	}
	if got, want := tc.waited.Load(), tc.m.State().Version; got != want || got == 0 {
		t.Errorf("the follower waited for version %d, want the leader's %d after the write", got, want)
	}
	if _, err := c.CreateService(ctx, api.ServiceCreate{Name: "www", Image: "whoami", Networks: []api.NetworkAttachment{{Target: "ovnet"}}}); err != nil {
		t.Fatal(err)
	}
	svcs, err := c.Services(ctx)
	if err != nil || len(svcs) != 1 || svcs[0].Name != "www" {
		t.Errorf("service ls after create: %+v, %v", svcs, err)
	}
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"the leader's refusal comes back as it is", func() error { _, err := c.CreateNetwork(ctx, api.NetworkCreate{Name: "ovnet"}); return err },
			"network with name ovnet already exists"},
		{"a read's not found", func() error { _, err := c.Service(ctx, "nope"); return err }, "service nope not found"},
		{"in use", func() error { return c.RemoveNetwork(ctx, "ovnet") }, "network ovnet is in use by service www"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestWorkersRefuseClusterReadsAndWrites checks docker's refusals on a
// worker and on a node in no cluster, and that a worker still lists and
// finds its own tasks (meshctl ps, exec).
func TestWorkersRefuseClusterReadsAndWrites(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	if _, err := tc.m.Join(ctx, api.JoinRequest{ID: "w2", Hostname: "node2", Addr: "192.168.33.11", GossipPort: 7946,
		APIAddr: "192.168.33.11:2377"}, api.RoleWorker); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.m.CreateService(ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: ptr(2)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		client *api.Client
		want   error
	}{{"worker", tc.worker, api.ErrNotManager}, {"outside", tc.outside, api.ErrNotInSwarm}} {
		calls := map[string]func() error{
			"service ls": func() error { _, err := c.client.Services(ctx); return err },
			"service create": func() error {
				_, err := c.client.CreateService(ctx, api.ServiceCreate{Name: "x", Image: "alpine"})
				return err
			},
			"network ls": func() error { _, err := c.client.Networks(ctx); return err },
			"network rm": func() error { return c.client.RemoveNetwork(ctx, "ingress") },
			"node ls":    func() error { _, err := c.client.Nodes(ctx); return err },
			"node promote": func() error {
				_, err := c.client.UpdateNode(ctx, "node2", api.NodeUpdate{Role: api.RoleManager})
				return err
			},
			"join-token":      func() error { _, err := c.client.JoinToken(ctx, "worker", false); return err },
			"service ps":      func() error { _, err := c.client.Tasks(ctx, "www", ""); return err },
			"tasks elsewhere": func() error { _, err := c.client.Tasks(ctx, "", "node1"); return err },
		}
		for what, call := range calls {
			if err := call(); err == nil || err.Error() != c.want.Error() || api.StatusCode(err) != http.StatusServiceUnavailable {
				t.Errorf("%s on %s: err %v, want %q (503)", what, c.name, err, c.want)
			}
		}
	}
	own, err := tc.worker.Tasks(ctx, "", "w2")
	if err != nil {
		t.Fatalf("ps on a worker: %v", err)
	}
	for _, tk := range own {
		if tk.NodeID != "w2" {
			t.Errorf("ps on node2 lists %s on %s", tk.Name(), tk.NodeName)
		}
		if _, err := tc.worker.Task(ctx, tk.Name()); err != nil {
			t.Errorf("exec lookup of its own %s on a worker: %v", tk.Name(), err)
		}
	}
	if len(own) == 0 {
		t.Error("the worker runs none of www's 2 tasks over 2 nodes")
	}
}

func TestClusterPortRefusesUnsignedAndUnknown(t *testing.T) {
	url := newTestCluster(t).leaderURL
	resp, err := http.Post(url+"/v1/networks", "application/json", strings.NewReader(`{"Name":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned write: %s, want 401", resp.Status)
	}
	addr := strings.TrimPrefix(url, "http://")
	for _, key := range []string{leaderSecret + "x", workerToken, managerToken} {
		_, err = NewClusterClient(addr, key).CreateNetwork(context.Background(), api.NetworkCreate{Name: "x"})
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || se.Msg != "invalid join token" {
			t.Errorf("write signed with %.12s…: %v, want a 401 saying invalid join token", key, err)
		}
	}
	body := []byte(`{"Name":"x","Bogus":1}`)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/networks", bytes.NewReader(body))
	signRequest(req, leaderSecret, body, time.Now())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "unknown field") {
		t.Errorf("signed, unknown field: %s %s, want a 400 naming it", resp.Status, msg)
	}
	req4 := api.JoinRequest{ID: "w4", Hostname: "node4", Addr: "192.168.33.13", GossipPort: 7946, APIAddr: "192.168.33.13:2377"}
	for _, tt := range []struct {
		name, key, role string
		join            func(c *api.Client) (api.JoinResponse, error)
	}{
		{"worker token", workerToken, api.RoleWorker, func(c *api.Client) (api.JoinResponse, error) { return c.Join(context.Background(), req4) }},
		{"manager token", managerToken, api.RoleManager, func(c *api.Client) (api.JoinResponse, error) { return c.Join(context.Background(), req4) }},
		// A worker token cannot ask for more than it gives.
		{"worker token asking for manager", workerToken, api.RoleWorker, func(c *api.Client) (api.JoinResponse, error) {
			return c.JoinAs(context.Background(), req4, api.RoleManager)
		}},
		{"forwarded by a manager", leaderSecret, api.RoleManager, func(c *api.Client) (api.JoinResponse, error) {
			return c.JoinAs(context.Background(), req4, api.RoleManager)
		}},
	} {
		joined, err := tt.join(NewClusterClient(addr, tt.key))
		if err != nil || joined.Role != tt.role {
			t.Errorf("join with %s: role %q, %v; want %s", tt.name, joined.Role, err, tt.role)
		}
	}
}

func TestForwarderWithoutManager(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody listens on once closed
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = NewForwarder(addr, leaderSecret, nil).CreateNetwork(context.Background(), api.NetworkCreate{Name: "x"})
	if api.StatusCode(err) != http.StatusBadGateway || !strings.HasPrefix(err.Error(), "forward to the leader: cannot reach meshd at "+addr) {
		t.Errorf("unreachable manager: %v (code %d), want a 502 naming it", err, api.StatusCode(err))
	}
}

func ptr[T any](v T) *T { return &v }
