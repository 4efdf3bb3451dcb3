package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/kwatch"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/events"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/metrics"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
	"github.com/meshd/meshd/overlay"
)

// The address plan is the tutorials': node1 (this agent, also the
// manager) at 192.168.33.10, node2 at .11, the client at .1; ingress
// 10.255.0.0/16, ovnet 10.0.0.0/24, mesh_gwbridge 172.18.0.0/16.
var (
	node1Addr = netip.MustParseAddr("192.168.33.10")
	node2Addr = netip.MustParseAddr("192.168.33.11")
	client    = netip.MustParseAddr("192.168.33.1")
)

// fakeNode is an agent wired to fakes, with the manager whose objects it
// follows and the fakes to look into. The manager does not run: tests
// publish its objects into the tables ([fakeNode.publish]) when they
// choose, as its Run loop would.
type fakeNode struct {
	t       *testing.T
	ctx     context.Context
	mode    lb.Mode
	agent   *Agent
	mgr     *manager.Manager
	pub     *records.Publisher
	version uint64 // of the last publish
	db      *records.FakeDB
	kernel  *overlay.FakeKernel
	runDir  string
	clock   time.Time        // the agent's drain clock
	metrics *metrics.Metrics // what the agent measured (see scrape)
	runner  *task.FakeRunner // the tasks' processes
	events  *events.Log      // what the agent reported happening

	mu           sync.Mutex               // guards the fields below, written by the agent's task goroutines
	rules        map[string]*lb.FakeRules // by namespace path, "" = the host
	ipvs         map[string]*lb.FakeIPVS
	flows        map[string]*lb.FakeFlowTables
	sysctls      *lb.FakeSysctls   // every namespace's, the sandboxes' and the node's
	deaf         bool              // the tasks' processes do not listen on their ports
	listenChecks int               // how often the agent looked
	resolvers    map[string]string // task sandbox → its resolver's UDP address
	watched      map[string]bool   // namespaces the agent watches
	notify       func(ns string, k kwatch.Kind)
}

// fakeWatcher records the namespaces watched; tests report kernel changes
// through fakeNode.notify.
type fakeWatcher struct{ f *fakeNode }

func (w fakeWatcher) Watch(ns string) error {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.watched[ns] = true
	return nil
}

func (w fakeWatcher) Unwatch(ns string) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	delete(w.f.watched, ns)
}

func (w fakeWatcher) Close() {}

func newFakeNode(t *testing.T, mode lb.Mode) *fakeNode {
	t.Helper()
	runDir := t.TempDir()
	store, err := manager.OpenStore(manager.StoreConfig{NodeID: "node1id", Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	now := time.Now().UTC()
	self := api.Node{ID: "node1id", Hostname: "node1", Role: api.RoleManager, Availability: api.AvailabilityActive,
		Status: api.StatusReady, Addr: node1Addr.String(), AddrPrefix: "192.168.33.10/24", APIAddr: "192.168.33.10:2377", CreatedAt: now}
	st, err := manager.NewCluster(self, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Bootstrap("node1id", st); err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{t: t, ctx: context.Background(), mode: mode, db: records.NewFakeDB("node1id"), kernel: overlay.NewFakeKernel(),
		runDir: runDir, clock: now, metrics: metrics.New(metrics.Config{}), events: events.New(0), runner: task.NewFakeRunner(), pub: records.NewPublisher(), rules: map[string]*lb.FakeRules{}, ipvs: map[string]*lb.FakeIPVS{}, flows: map[string]*lb.FakeFlowTables{}, sysctls: &lb.FakeSysctls{AnyKey: true},
		resolvers: map[string]string{}, watched: map[string]bool{}}
	if f.mgr, err = manager.New(manager.Config{Store: store, DB: f.db, NodeID: "node1id"}); err != nil {
		t.Fatal(err)
	}
	_, csr, err := ca.NewKey("node2id")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.Join(f.ctx, api.JoinRequest{Token: st.WorkerToken, ID: "node2id", Hostname: "node2", Addr: node2Addr.String(),
		AddrPrefix: "192.168.33.11/24", GossipPort: 7946, APIAddr: "192.168.33.11:2377", CSR: csr}); err != nil {
		t.Fatal(err)
	}
	f.agent = f.newAgent()
	t.Cleanup(func() { f.agent.teardown() })
	return f
}

// newAgent builds an agent over the node's run dir, tables and kernel, as
// meshd does at every start.
func (f *fakeNode) newAgent() *Agent {
	f.t.Helper()
	a, err := New(Config{NodeID: "node1id", AdvertiseAddr: node1Addr, RunDir: f.runDir, DataPlane: f.mode,
		GatewaySubnet: netip.MustParsePrefix("172.18.0.0/16"), DB: f.db, Logger: testLogger(f.t), Metrics: f.metrics, Events: f.events,
		DNSUpstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")},
		Kernel:       f.kernel,
		Rules:        f.rulesOf,
		IPVS:         func(ns string) (lb.IPVS, error) { return f.ipvsOf(ns), nil },
		Sysctls:      func(string) lb.Sysctls { return f.sysctls },
		Conntrack:    func(string) lb.Conntrack { return lb.NewFakeConntrack() },
		FlowTables:   func(ns string) lb.FlowTables { return f.flowsOf(ns) },
		FlowOffload:  true,
		Runner:       f.runner.Run,
		Listening: func(int, uint16, string) bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.listenChecks++
			return !f.deaf
		},
		Watch: func(notify func(string, kwatch.Kind)) Watcher {
			f.notify = notify
			return fakeWatcher{f}
		},
		Listen: func(sandbox string) (net.PacketConn, net.Listener, error) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, err
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				pc.Close()
				return nil, nil, err
			}
			f.mu.Lock()
			f.resolvers[sandbox] = pc.LocalAddr().String()
			f.mu.Unlock()
			return pc, ln, nil
		}})
	if err != nil {
		f.t.Fatal(err)
	}
	a.now = func() time.Time { return f.clock }
	return a
}

// publish puts the manager's objects into the tables, as its Run loop
// does after every change.
func (f *fakeNode) publish() { f.publishObjects(f.mgr.Objects()) }

// publishObjects puts o into the tables as the leader, at the next
// version.
func (f *fakeNode) publishObjects(o records.Objects) {
	f.t.Helper()
	f.version++
	if err := f.pub.Publish(f.db, o, f.version, ""); err != nil {
		f.t.Fatal(err)
	}
}

// reconcile publishes the manager's objects and reconciles once.
func (f *fakeNode) reconcile() {
	f.publish()
	f.agent.Reconcile(f.ctx)
}

func (f *fakeNode) rulesOf(ns string) lb.Rules { return inNS(f, f.rules, ns, lb.NewFakeRules) }

func (f *fakeNode) flowsOf(ns string) *lb.FakeFlowTables {
	return inNS(f, f.flows, ns, lb.NewFakeFlowTables)
}

func (f *fakeNode) ipvsOf(ns string) *lb.FakeIPVS { return inNS(f, f.ipvs, ns, lb.NewFakeIPVS) }

// inNS returns namespace ns's fake from m, made by mk on first use.
func inNS[T any](f *fakeNode, m map[string]T, ns string, mk func() T) T {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := m[ns]
	if !ok {
		v = mk()
		m[ns] = v
	}
	return v
}

// tasks returns the manager's tasks of a service by node.
func (f *fakeNode) tasks(svc string) map[string]api.Task {
	out := map[string]api.Task{}
	for _, t := range f.mgr.Objects().Tasks {
		if t.ServiceName == svc {
			out[t.NodeID] = t
		}
	}
	return out
}

func (f *fakeNode) netID(name string) string {
	for id, n := range f.mgr.Objects().Networks {
		if n.Name == name {
			return id
		}
	}
	f.t.Fatalf("no network %s", name)
	return ""
}

// announceRemote makes node2's task appear in this node's tables as
// gossip would bring it: its peers and, once running, its endpoints.
func (f *fakeNode) announceRemote(t api.Task) {
	f.t.Helper()
	st := f.mgr.Objects()
	node2 := records.NewFakeDB("node2id")
	for netID, e := range endpointRecords(t, st) {
		if err := records.PutEndpoint(node2, netID, t.ID, e); err != nil {
			f.t.Fatal(err)
		}
		p := records.Peer{IP: e.IP, MAC: macOf(t, netID), VTEP: node2Addr}
		if err := records.SetPeer(node2, netID, t.ID, p); err != nil {
			f.t.Fatal(err)
		}
	}
	for _, table := range []string{records.TableEndpoints, records.TableOverlayPeer} {
		for _, e := range node2.List(table, records.AllNetworks) {
			if err := f.db.PutAs("node2id", table, e.Scope, e.Key, e.Value); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

func macOf(t api.Task, netID string) net.HardwareAddr {
	for _, tn := range t.Networks {
		if tn.NetworkID == netID {
			mac, _ := net.ParseMAC(tn.MAC)
			return mac
		}
	}
	return nil
}

// traceNet is this node's namespaces as the lb tracer sees them.
func (f *fakeNode) traceNet(mode lb.Mode) lb.TraceNet {
	f.mu.Lock()
	defer f.mu.Unlock()
	gwIface := map[netip.Prefix]lb.Iface{netip.MustParsePrefix("172.18.0.0/16"): {Name: lb.GatewayBridgeName, Addr: netip.MustParseAddr("172.18.0.1")}}
	net := lb.TraceNet{{Name: "host", Rules: f.rules[""], Local: []netip.Addr{node1Addr, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("172.18.0.1")}, Ifaces: gwIface}}
	for _, sb := range f.agent.sboxes {
		ns := &lb.TraceNS{Name: filepath.Base(sb.path), Rules: f.rules[sb.path], Local: append([]netip.Addr{sb.addr.Addr()}, sb.vips...)}
		if mode == lb.ModeIPVS {
			ns.IPVS = f.ipvs[sb.path]
		}
		if filepath.Base(sb.path) == ingressSandbox {
			ns.Local = append(ns.Local, f.agent.ingressGW)
		}
		net = append(net, ns)
	}
	for _, lt := range f.agent.tasks {
		ns := &lb.TraceNS{Name: lt.spec.Name(), Rules: f.rules[lt.sandbox], Task: true, Local: []netip.Addr{lt.gwAddr, netip.MustParseAddr("127.0.0.11")}}
		for _, tn := range lt.spec.Networks {
			ns.Local = append(ns.Local, api.AddrOf(tn.Addr))
		}
		net = append(net, ns)
	}
	return net
}

func replicas(n int) *int { return &n }

// TestServiceLifecycle drives the agent through what a user does: a
// service is created, a task lands on this node, the other node's task
// appears in the tables, a packet is traced from the client to both
// tasks, and the service is removed, leaving nothing behind.
func TestServiceLifecycle(t *testing.T) {
	for _, mode := range []lb.Mode{lb.ModeIPTables, lb.ModeIPVS} {
		t.Run(string(mode), func(t *testing.T) { testServiceLifecycle(t, mode) })
	}
}

func testServiceLifecycle(t *testing.T, mode lb.Mode) {
	f := newFakeNode(t, mode)
	f.reconcile()
	ingress := f.netID(api.IngressName)
	nsDir := filepath.Join(f.runDir, "netns")
	if got, _ := f.kernel.ListNS(nsDir); !slices.Equal(got, []string{"1-" + ingress[:10], ingressSandbox}) {
		t.Fatalf("namespaces before any service: %v, want the ingress network's and ingress_sbox", got)
	}

	if _, err := f.mgr.CreateNetwork(f.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2),
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}, Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	ovnet := f.netID("ovnet")
	tasks := f.tasks("www")
	local, remote := tasks["node1id"], tasks["node2id"]
	if local.ID == "" || remote.ID == "" {
		t.Fatalf("www tasks %v: want one on each node", tasks)
	}
	f.reconcile()
	testutil.Eventually(t, 5*time.Second, "www.1 running and announced", func() error {
		if !slices.Contains(f.runner.Running(), local.ID) {
			return fmt.Errorf("running %v", f.runner.Running())
		}
		if !records.HasEndpoint(f.db, ovnet, local.ID) || !records.HasEndpoint(f.db, ingress, local.ID) {
			return fmt.Errorf("endpoints %v", records.Endpoints(f.db, records.AllNetworks))
		}
		return nil
	})
	if s := records.TaskStatuses(f.db)[local.ID]; s.State != api.TaskRunning || s.PID != task.FakePID {
		t.Errorf("task status: got %+v, want running, pid %d", s, task.FakePID)
	}

	f.announceRemote(remote)
	f.reconcile()
	dump := f.kernel.Dump()
	for _, want := range []string{
		// node2's task behind its VTEP, on both of its networks
		macOf(remote, ovnet).String() + " dev vxlan0 dst " + node2Addr.String(),
		macOf(remote, ingress).String() + " dev vxlan0 dst " + node2Addr.String(),
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("kernel has no %q:\n%s", want, dump)
		}
	}
	if strings.Contains(dump, macOf(local, ovnet).String()+" dev vxlan0") {
		t.Errorf("the local task's MAC has an FDB entry:\n%s", dump)
	}
	lbName := lbSandboxPrefix + ovnet[:lbSandboxIDLen]
	vip := vipOn(f.mgr.Objects().Services[local.ServiceID], ovnet)
	if sb := f.agent.sboxes[ovnet]; sb == nil || filepath.Base(sb.path) != lbName || !slices.Equal(sb.vips, []netip.Addr{vip}) {
		t.Errorf("lb sandbox of ovnet: got %+v, want %s holding %s", f.agent.sboxes[ovnet], lbName, vip)
	}

	// The iptables plane offloads between each sandbox's interfaces;
	// IPVS's NAT is not conntrack's, so its sandboxes have no flowtable.
	for path, devices := range map[string]string{filepath.Join(nsDir, ingressSandbox): "eth0, eth1", filepath.Join(nsDir, lbName): "eth0"} {
		table := f.flowsOf(path).Table()
		if got := strings.Contains(table, "devices = { "+devices+" }"); got != (mode == lb.ModeIPTables) {
			t.Errorf("%s's flowtable, %s plane:\n%s", filepath.Base(path), mode, table)
		}
	}
	wantFlow := map[lb.Mode]string{lb.ModeIPTables: "on (eth0, eth1)", lb.ModeIPVS: "off"}[mode]
	if got := f.agent.sboxes[ingress].plane.FlowOffload(); got != wantFlow {
		t.Errorf("ingress_sbox's FlowOffload, %s plane: %q, want %q", mode, got, wantFlow)
	}
	// meshctl lb ls says so.
	for _, tab := range f.agent.LBTables() {
		if tab.Sandbox == ingressSandbox && tab.FlowOffload != wantFlow {
			t.Errorf("lb ls: ingress_sbox's FlowOffload %q, want %q", tab.FlowOffload, wantFlow)
		}
	}

	// A client on the underlay reaches both tasks through node1's mesh,
	// and a task reaches both through the VIP.
	trace := func(src, dst netip.Addr, port uint16) string {
		_, out := lb.TracePacket(t, f.traceNet(mode), src, "tcp", dst, port)
		return out
	}
	localIng, remoteIng := api.AddrOf(local.Networks[0].Addr), api.AddrOf(remote.Networks[0].Addr)
	want := []string{localIng.String() + ":80", remoteIng.String() + ":8888"}
	slices.Sort(want)
	if got := sortedOut(trace(client, node1Addr, 8888)); got != strings.Join(want, ", ") {
		t.Errorf("client to node1:8888 ends at %q, want %q (the local task redirected to 80)", got, strings.Join(want, ", "))
	}
	localOv, remoteOv := api.AddrOf(local.Networks[1].Addr), api.AddrOf(remote.Networks[1].Addr)
	want = []string{localOv.String() + ":80", remoteOv.String() + ":80"}
	slices.Sort(want)
	if got := sortedOut(trace(localOv, vip, 80)); got != strings.Join(want, ", ") {
		t.Errorf("www.1 to the VIP ends at %q, want %q", got, strings.Join(want, ", "))
	}

	if err := f.mgr.RemoveService(f.ctx, "www"); err != nil {
		t.Fatal(err)
	}
	_ = f.db.Delete(records.TableEndpoints, ovnet, remote.ID) // node2 withdraws, as gossip would show
	for _, table := range []string{records.TableEndpoints, records.TableOverlayPeer} {
		for _, netID := range []string{ovnet, ingress} {
			_ = f.db.Delete(table, netID, remote.ID)
		}
	}
	f.reconcile()
	if got := f.runner.Running(); len(got) != 0 {
		t.Errorf("tasks still running after service rm: %v", got)
	}
	if got, _ := f.kernel.ListNS(nsDir); !slices.Equal(got, []string{"1-" + ingress[:10], ingressSandbox}) {
		t.Errorf("namespaces after service rm: %v, want only the ingress network's and ingress_sbox", got)
	}
	if eps := records.Endpoints(f.db, records.AllNetworks); len(eps) != 0 {
		t.Errorf("endpoints left: %v", eps)
	}
	if table := f.flowsOf(filepath.Join(nsDir, ingressSandbox)).Table(); table != "" {
		t.Errorf("ingress_sbox's table with nothing to balance:\n%s", table)
	}
	if got := trace(client, node1Addr, 8888); got != "host 192.168.33.10:8888" {
		t.Errorf("client to node1:8888 after rm ends at %q, want the host itself", got)
	}
}

func sortedOut(s string) string {
	parts := strings.Split(s, ", ")
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// TestStoppedTaskClosesItsResolver checks that a task's embedded DNS
// sockets go with the task: open, they keep its namespace alive.
func TestStoppedTaskClosesItsResolver(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	var mu sync.Mutex
	var socks []string
	listen := f.agent.cfg.Listen
	f.agent.cfg.Listen = func(ns string) (net.PacketConn, net.Listener, error) {
		pc, ln, err := listen(ns)
		if err == nil {
			mu.Lock()
			socks = append(socks, pc.LocalAddr().String(), ln.Addr().String())
			mu.Unlock()
		}
		return pc, ln, err
	}
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "one", Image: "alpine", Replicas: replicas(1)}); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if len(socks) != 2 {
		t.Fatalf("resolver sockets opened: %v, want a UDP and a TCP one", socks)
	}
	udp, tcp := socks[0], socks[1]
	if c, err := net.Dial("tcp", tcp); err != nil {
		t.Fatalf("resolver's TCP socket %s not answering while the task runs: %v", tcp, err)
	} else {
		c.Close()
	}
	if _, err := f.mgr.ScaleService(f.ctx, "one", 0); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if _, err := net.Dial("tcp", tcp); err == nil {
		t.Errorf("resolver's TCP socket %s still accepts after the task stopped", tcp)
	}
	pc, err := net.ListenPacket("udp", udp)
	if err != nil {
		t.Errorf("resolver's UDP port %s still bound after the task stopped: %v", udp, err)
	} else {
		pc.Close()
	}
}

// testLogger sends the agent's log to the test's, so a failing test shows
// what the agent refused.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestGatewayBridgeCheckedOnResync checks the bridge's cost and repair:
// a wake-up from the tables does not look at mesh_gwbridge again, the
// resync tick does, and rebuilds it.
func TestGatewayBridgeCheckedOnResync(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	f.reconcile()
	hasBridge := func() bool {
		links, err := f.kernel.ListLinks("")
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(links, func(l overlay.Link) bool { return l.Name == lb.GatewayBridgeName })
	}
	if !hasBridge() {
		t.Fatal("no mesh_gwbridge after the first reconcile")
	}
	if err := f.kernel.RemoveLink("", lb.GatewayBridgeName); err != nil {
		t.Fatal(err)
	}
	f.reconcile() // woken by a table change
	if hasBridge() {
		t.Error("a wake-up from the tables looked at mesh_gwbridge again")
	}
	f.agent.gwChecked = false // what the resync tick does
	f.reconcile()
	if !hasBridge() {
		t.Error("mesh_gwbridge not rebuilt on resync")
	}
}
