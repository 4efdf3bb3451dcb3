package apiserver

import (
	"bytes"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/records"
)

// fakeNode answers the reads of a node whose role is given: a manager
// (leader or follower forwarding to the leader), a worker, or a node in
// no cluster.
type fakeNode struct {
	m       *manager.Manager
	db      *records.FakeDB
	control func() (Writes, error)
	// worker is a worker's way to the cluster for its containers.
	worker ContainerWrites
}

func (n fakeNode) ClusterContainers() (ContainerWrites, error) {
	w, err := n.control()
	if errors.Is(err, api.ErrNotManager) && n.worker != nil {
		return n.worker, nil
	}
	return w, err
}

func (n fakeNode) Info() api.Info                               { return api.Info{NodeID: "w2", NodeName: "node2"} }
func (n fakeNode) Control() (Writes, error)                     { return n.control() }
func (n fakeNode) Manager() error                               { _, err := n.control(); return err }
func (n fakeNode) JoinToken(role string) (api.JoinToken, error) { return n.m.JoinToken(role) }
func (n fakeNode) TaskStatuses() map[string]api.TaskStatus      { return records.TaskStatuses(n.db) }
func (n fakeNode) Nodes() []api.Node                            { return n.m.Nodes() }
func (n fakeNode) Namespaces() (string, []string, error) {
	return "/run/x", []string{"ingress_sbox"}, nil
}
func (n fakeNode) LBTables() []api.LBTable { return nil }
func (n fakeNode) Check(context.Context) (api.Check, error) {
	return api.Check{Node: "node2", Diffs: []api.CheckDiff{{Netns: "ingress_sbox", Kind: api.DiffVIP, State: "missing", Object: "10.255.0.4/32", Where: "eth0"}}}, nil
}
func (n fakeNode) PauseRepair(context.Context, bool) error {
	return api.Errorf(http.StatusForbidden, "test hooks are off: start meshd with --test-hooks")
}
func (n fakeNode) Kernel(context.Context) (api.KernelSnapshot, error) {
	return api.KernelSnapshot{NodeName: "node2", Namespaces: []api.NetnsState{{Name: api.HostNamespace}, {Name: "ingress_sbox", Path: "/run/x/ingress_sbox"}}}, nil
}

// Objects: a node in no swarm knows no state, as the daemon's.
func (n fakeNode) Objects() records.Objects {
	if _, ok := n.Gateway(); !ok {
		var o records.Objects
		o.Init()
		return o
	}
	return n.m.Objects()
}

// NetworkBuilt: a node in a swarm has every network the state holds.
func (n fakeNode) NetworkBuilt(id string) bool {
	if _, ok := n.Gateway(); !ok {
		return false
	}
	_, ok := n.m.Objects().Networks[id]
	return ok
}

// Gateway: a node in a swarm runs the current tasks the state gives it
// (node w2), each with an address on the bridge after the ingress
// sandbox's.
func (n fakeNode) Gateway() (Gateway, bool) {
	if n.control == nil || errors.Is(n.Manager(), api.ErrNotInSwarm) {
		return Gateway{}, false
	}
	gw := Gateway{Name: "mesh_gwbridge", Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: netip.MustParseAddr("172.18.0.1"),
		Ingress: netip.MustParseAddr("172.18.0.2"), Tasks: map[string]netip.Addr{}}
	next := gw.Ingress.Next()
	tasks := n.m.Objects().Tasks
	for _, id := range slices.Sorted(maps.Keys(tasks)) {
		if t := tasks[id]; t.NodeID == n.Info().NodeID && t.Current() {
			gw.Tasks[id] = next
			next = next.Next()
		}
	}
	return gw, true
}
func (n fakeNode) TaskLogPath(string) string { return "" }
func (n fakeNode) TaskEnded(string) bool     { return true }

// StoppedTask: an agent that stops a container as soon as it is no
// longer desired running, by the stop's SIGTERM.
func (n fakeNode) StoppedTask(id string) (*int, bool) {
	if n.m == nil || n.Objects().Tasks[id].Current() {
		return nil, false
	}
	return new(143), true
}
func (n fakeNode) LogSubs() (records.DB, netip.AddrPort)      { return nil, netip.AddrPort{} }
func (n fakeNode) Programmed() map[string]map[string][]string { return nil }
func (n fakeNode) StateVersion() uint64                       { return n.m.State().Version }
func (n fakeNode) CA() (api.SwarmCA, error)                   { return n.m.CA(), nil }

type fakeSwarm struct{}

func (fakeSwarm) Init(context.Context, api.SwarmInit) (api.SwarmInitResponse, error) {
	return api.SwarmInitResponse{}, api.ErrAlreadyInSwarm
}
func (fakeSwarm) Join(context.Context, api.SwarmJoin) (api.SwarmJoinResponse, error) {
	return api.SwarmJoinResponse{}, api.ErrAlreadyInSwarm
}
func (fakeSwarm) Leave(context.Context, api.SwarmLeave) error { return nil }

// fakePeers admits nodes the manager's state holds, managers only while
// it says they are, as the daemon's does.
type fakePeers struct{ m *manager.Manager }

func (p fakePeers) Check(peer ca.Peer, mgr bool) error {
	st := p.m.State()
	n, ok := st.Nodes[peer.NodeID]
	if peer.ClusterID != st.ClusterID || !ok {
		return api.Errorf(http.StatusForbidden, "node %s is not part of this swarm", peer.NodeID)
	}
	if mgr && n.Role != api.RoleManager {
		return api.Errorf(http.StatusForbidden, "node %s is no longer a manager", peer.NodeID)
	}
	return nil
}

// testCluster is a leader's manager behind its cluster port (TLS with
// client certificates), and the local APIs of a follower manager
// (forwarding to it), a worker and a node in no cluster.
type testCluster struct {
	leaderAddr                string
	follower, worker, outside *api.Client
	m                         *manager.Manager
	db                        *records.FakeDB
	waited                    *atomic.Uint64 // the last version the follower waited for
	root                      *ca.Root
	ids                       map[string]*ca.Identity // m1 the leader, m2 a manager, w2 a worker
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	store, err := manager.OpenStore(manager.StoreConfig{NodeID: "m1", Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	now := time.Now()
	self := api.Node{ID: "m1", Hostname: "node1", Role: api.RoleManager, Availability: api.AvailabilityActive,
		Addr: "192.168.33.10", AddrPrefix: "192.168.33.10/24", APIAddr: "192.168.33.10:2377", CreatedAt: now}
	st, err := manager.NewCluster(self, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	st.Nodes["m2"] = api.Node{ID: "m2", Hostname: "node2m", Role: api.RoleManager, Status: api.StatusReady, APIAddr: "192.168.33.13:2377"}
	if err := store.Bootstrap("m1", st); err != nil {
		t.Fatal(err)
	}
	root, err := st.Root()
	if err != nil {
		t.Fatal(err)
	}
	db := records.NewFakeDB("m1")
	m, err := manager.New(manager.Config{Store: store, DB: db, NodeID: "m1", APIAddr: "192.168.33.10:2377"})
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{m: m, db: db, root: root, ids: map[string]*ca.Identity{}}
	if _, err := m.Join(context.Background(), joinRequest(t, st.WorkerToken, "w2", "node2")); err != nil {
		t.Fatal(err)
	}
	for id, role := range map[string]string{"m1": api.RoleManager, "m2": api.RoleManager, "w2": api.RoleWorker} {
		tc.ids[id] = identity(t, root, id, role, st.ClusterID)
	}
	serve := func(node fakeNode) (*Server, *api.Client) {
		srv, err := New(Config{Node: node, Swarm: fakeSwarm{}, Peers: fakePeers{m}})
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
	leader, _ := serve(fakeNode{m, db, func() (Writes, error) { return m, nil }, nil})
	cluster := httptest.NewUnstartedServer(leader.ClusterHandler())
	cluster.TLS = tc.ids["m1"].ServerConfig(false)
	cluster.StartTLS()
	t.Cleanup(cluster.Close)
	tc.leaderAddr = strings.TrimPrefix(cluster.URL, "https://")
	var waited atomic.Uint64
	fwd := NewForwarder(tc.leaderAddr, tc.ids["m2"].ClientConfig(), func(_ context.Context, v uint64) error {
		waited.Store(v)
		return nil
	})
	tc.waited = &waited
	_, tc.follower = serve(fakeNode{m, db, func() (Writes, error) { return fwd, nil }, nil})
	worker := NewNodeForwarder([]string{"127.0.0.1:1", tc.leaderAddr}, tc.ids["w2"].ClientConfig()) // the first manager is down
	_, tc.worker = serve(fakeNode{m, db, func() (Writes, error) { return nil, api.ErrNotManager }, worker})
	_, tc.outside = serve(fakeNode{m, db, func() (Writes, error) { return nil, api.ErrNotInSwarm }, nil})
	return tc
}

// identity issues a node certificate from root.
func identity(t *testing.T, root *ca.Root, nodeID, role, cluster string) *ca.Identity {
	t.Helper()
	key, cert, err := root.NewNode(nodeID, role, cluster, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := ca.NewIdentity(cert, key, [][]byte{root.CertDER})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func joinRequest(t *testing.T, token, id, host string) api.JoinRequest {
	t.Helper()
	_, csr, err := ca.NewKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return api.JoinRequest{Token: token, ID: id, Hostname: host, Addr: "192.168.33.11", GossipPort: 7946,
		APIAddr: "192.168.33.11:2377", CSR: csr}
}

func TestFollowerForwardsWritesToTheLeader(t *testing.T) {
	tc := newTestCluster(t)
	c := tc.follower
	ctx := context.Background()
	n, err := c.CreateNetwork(ctx, api.NetworkCreate{Name: "ovnet", Driver: api.DriverOverlay})
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
		{"the leader's refusal comes back as it is", func() error {
			_, err := c.CreateNetwork(ctx, api.NetworkCreate{Name: "ovnet", Driver: api.DriverOverlay})
			return err
		},
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

// TestClusterPortChecksCertificates calls the leader's cluster port as
// nodes with and without certificates would.
func TestClusterPortChecksCertificates(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	other, err := ca.NewRoot("c2", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st := tc.m.State()
	digest := ca.Digest(st.CACerts[0])
	as := func(id *ca.Identity) *api.Client { return api.NewClusterClient(tc.leaderAddr, id.ClientConfig()) }
	pinned := api.NewClusterClient(tc.leaderAddr, ca.PinnedConfig(digest))
	write := func(c *api.Client) error { _, err := c.CreateNetwork(ctx, api.NetworkCreate{Name: "x"}); return err }
	tests := []struct {
		name string
		do   func() error
		want string // "" = allowed
	}{
		{"write by a manager", func() error { return write(as(tc.ids["m2"])) }, ""},
		{"write without a certificate", func() error { return write(pinned) }, "a node certificate of this cluster is required"},
		{"write by a worker", func() error { return write(as(tc.ids["w2"])) }, "only managers may call /v1/networks"},
		{"write by another cluster's manager", func() error {
			return write(as(identity(t, other, "x1", api.RoleManager, "c2")))
		}, "certificate"},
		// w2 is a worker in the state: a manager's certificate it kept from
		// before a demotion gives it nothing.
		{"write by a demoted manager", func() error { return write(as(identity(t, tc.root, "w2", api.RoleManager, st.ClusterID))) }, "no longer a manager"},
		{"write by a removed manager", func() error { return write(as(identity(t, tc.root, "gone", api.RoleManager, st.ClusterID))) }, "not part of this swarm"},
		{"join with the worker token", func() error {
			resp, err := pinned.Join(ctx, joinRequest(t, st.WorkerToken, "w4", "node4"))
			if err == nil && resp.Role != api.RoleWorker {
				err = errors.New("role " + resp.Role)
			}
			return err
		}, ""},
		{"join with a wrong token", func() error {
			_, err := pinned.Join(ctx, joinRequest(t, api.NewJoinToken(digest), "w5", "node5"))
			return err
		}, "invalid join token"},
		{"join pinned to another CA", func() error {
			_, err := api.NewClusterClient(tc.leaderAddr, ca.PinnedConfig(other.Digest())).Join(ctx, joinRequest(t, st.WorkerToken, "w6", "node6"))
			return err
		}, "not the one the token names"},
		{"renew by a worker", func() error {
			csr, _ := ca.CSRFor(mustKeyOf(t), "w2")
			_, err := as(tc.ids["w2"]).Renew(ctx, api.RenewRequest{CSR: csr})
			return err
		}, ""},
		{"a worker renewing for another node", func() error {
			_, err := as(tc.ids["w2"]).RenewFor(ctx, "m2", api.RenewRequest{})
			return err
		}, "only managers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A manager's request with an unknown field is refused by the decoder.
	body := []byte(`{"Name":"y","Bogus":1}`)
	req, _ := http.NewRequest(http.MethodPost, "https://"+tc.leaderAddr+"/v1/networks", bytes.NewReader(body))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc.ids["m2"].ClientConfig()}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "unknown field") {
		t.Errorf("unknown field: %s %s, want a 400 naming it", resp.Status, msg)
	}
}

func mustKeyOf(t *testing.T) []byte {
	t.Helper()
	key, _, err := ca.NewKey("w2")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestForwarderWithoutManager(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody listens on once closed
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = NewForwarder(addr, nil, nil).CreateNetwork(context.Background(), api.NetworkCreate{Name: "x"})
	if api.StatusCode(err) != http.StatusBadGateway || !strings.HasPrefix(err.Error(), "forward to the leader: cannot reach meshd at "+addr) {
		t.Errorf("unreachable manager: %v (code %d), want a 502 naming it", err, api.StatusCode(err))
	}
}

func ptr[T any](v T) *T { return &v }

// TestKernelSnapshot: any node answers for its own kernel, its
// namespaces described as ns ls describes them.
func TestKernelSnapshot(t *testing.T) {
	tc := newTestCluster(t)
	snap, err := tc.worker.Kernel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ns := range snap.Namespaces {
		got = append(got, ns.Name+" "+ns.Kind+" "+ns.Owner)
	}
	if want := []string{"host host ", "ingress_sbox ingress ingress"}; !slices.Equal(got, want) {
		t.Errorf("namespaces = %q, want %q", got, want)
	}
}

func (n fakeNode) ConnectBridge(context.Context, string, string, api.ContainerAttach) error {
	return api.ErrNotInSwarm
}
func (n fakeNode) DisconnectBridge(context.Context, string, string) error { return api.ErrNotInSwarm }
func (n fakeNode) SyncAgent(context.Context) error                        { return nil }
