package container

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/task"
	"github.com/meshd/meshd/overlay"
)

// fakeHost is a node's kernel, rules and processes, in memory. Its
// processes run until their context ends or exit() ends them.
type fakeHost struct {
	t      *testing.T
	runDir string
	kernel *overlay.FakeKernel
	runner *task.FakeRunner

	mu    sync.Mutex
	rules map[string]*lb.FakeRules
}

func newFakeHost(t *testing.T) *fakeHost {
	return &fakeHost{t: t, runDir: t.TempDir(), kernel: overlay.NewFakeKernel(), runner: task.NewFakeRunner(),
		rules: map[string]*lb.FakeRules{}}
}

func (h *fakeHost) rulesOf(ns string) lb.Rules {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rules[ns] == nil {
		h.rules[ns] = lb.NewFakeRules()
	}
	return h.rules[ns]
}

// exit ends a container's process with state.
func (h *fakeHost) exit(id string, s task.State) {
	h.t.Helper()
	if err := h.runner.Exit(id, s); err != nil {
		h.t.Fatal(err)
	}
}

// engine starts an engine on the host's run dir, as meshd does at every
// start; it is stopped at the end of the test.
func (h *fakeHost) engine() (*Engine, context.CancelFunc) {
	h.t.Helper()
	e, err := New(Config{RunDir: h.runDir, Kernel: h.kernel, Rules: h.rulesOf, Runner: h.runner.Run,
		DNSUpstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")},
		Listen: func(string) (net.PacketConn, net.Listener, error) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, err
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				pc.Close()
				return nil, nil, err
			}
			return pc, ln, nil
		},
		Taken: func() []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix("192.168.33.0/24")} },
		Now:   func() time.Time { return time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.Up(ctx)
	go func() { defer close(done); _ = e.Serve(ctx) }()
	stop := func() { cancel(); <-done }
	h.t.Cleanup(stop)
	return e, stop
}

// hostDump is the fake kernel's host namespace and the host rules.
func (h *fakeHost) hostRules() string {
	h.t.Helper()
	b, err := h.rulesOf("").Save(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func mustNetwork(t *testing.T, e *Engine, req api.NetworkCreate) api.NetworkResource {
	t.Helper()
	n, err := e.CreateNetwork(req)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustRun(t *testing.T, e *Engine, req api.ContainerCreate) api.Task {
	t.Helper()
	c, err := e.Run(req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefaultBridgeAndNetworkCreate(t *testing.T) {
	h := newFakeHost(t)
	e, _ := h.engine()
	dev := mustNetwork(t, e, api.NetworkCreate{Name: "dev"})
	nets := e.Networks(false)
	if len(nets) != 2 || nets[0].Name != api.DefaultBridge || nets[1].Name != "dev" {
		t.Fatalf("networks %+v, want bridge and dev", nets)
	}
	if got := nets[0].IPAM.Config[0].Subnet; got != "172.17.0.0/16" {
		t.Errorf("default bridge subnet %s, want 172.17.0.0/16", got)
	}
	if got := dev.IPAM.Config[0]; got.Subnet != "172.18.0.0/16" || got.Gateway != "172.18.0.1" {
		t.Errorf("dev IPAM %+v, want 172.18.0.0/16 via 172.18.0.1", got)
	}
	if len(dev.ID) != 64 || dev.Options[optionBridgeName] != "br-"+dev.ID[:12] {
		t.Errorf("dev ID %q, bridge %q: want 64 hex and br-<id12>", dev.ID, dev.Options[optionBridgeName])
	}
	dump := h.kernel.Dump()
	for _, want := range []string{"mesh0: mtu 1500 UP bridge address 02:42:ac:11:00:01 inet 172.17.0.1/16", "br-" + dev.ID[:12] + ": mtu 1500 UP bridge address 02:42:ac:12:00:01 inet 172.18.0.1/16"} {
		if !strings.Contains(dump, want) {
			t.Errorf("kernel lacks %q:\n%s", want, dump)
		}
	}
	for _, tc := range []struct {
		req  api.NetworkCreate
		want string
	}{
		{api.NetworkCreate{Name: "dev"}, "network with name dev already exists"},
		{api.NetworkCreate{Name: "host"}, "host is a pre-defined network"},
		{api.NetworkCreate{Name: "bad name"}, "invalid network name"},
		{api.NetworkCreate{Name: "x", Subnet: "172.18.5.0/24"}, "overlaps"},
		{api.NetworkCreate{Name: "x", Subnet: "10.66.0.0/16", Gateway: "10.67.0.1"}, "gateway"},
		{api.NetworkCreate{Name: "x", Attachable: true}, "--attachable"},
	} {
		if _, err := e.CreateNetwork(tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CreateNetwork(%+v) = %v, want an error with %q", tc.req, err, tc.want)
		}
	}
	if got := len(e.Networks(false)); got != 2 {
		t.Errorf("%d networks after refused creates, want 2", got)
	}
}

func TestRunNamesAndAddresses(t *testing.T) {
	h := newFakeHost(t)
	e, _ := h.engine()
	mustNetwork(t, e, api.NetworkCreate{Name: "dev"})
	mustNetwork(t, e, api.NetworkCreate{Name: "pubnet", Subnet: "10.66.0.0/16"})
	es := mustRun(t, e, api.ContainerCreate{Name: "es", Image: "elasticsearch:2", Networks: []api.ContainerAttach{{Network: "dev"}}})
	if got := es.Networks[0].Addr; got != "172.18.0.2/16" {
		t.Errorf("es address %s, want 172.18.0.2/16 (the first after the gateway)", got)
	}
	fixed := mustRun(t, e, api.ContainerCreate{Image: "nginx", Networks: []api.ContainerAttach{{Network: "pubnet", IP: "10.66.66.66"}}})
	if got := fixed.Networks[0].Addr; got != "10.66.66.66/16" {
		t.Errorf("--ip 10.66.66.66 gave %s", got)
	}
	if fixed.Standalone.Name == "" || !strings.Contains(fixed.Standalone.Name, "_") {
		t.Errorf("a container run without --name is called %q, want adjective_surname", fixed.Standalone.Name)
	}
	anon := mustRun(t, e, api.ContainerCreate{Image: "alpine"})
	if got := anon.Networks[0]; got.NetworkName != api.DefaultBridge || got.Addr != "172.17.0.2/16" {
		t.Errorf("no --net: %+v, want the default bridge's 172.17.0.2", got)
	}
	for _, tc := range []struct {
		req  api.ContainerCreate
		want string
	}{
		{api.ContainerCreate{Name: "es", Image: "alpine"}, `The container name "/es" is already in use`},
		{api.ContainerCreate{Image: "alpine", Networks: []api.ContainerAttach{{Network: "nosuch"}}}, "network nosuch not found"},
		{api.ContainerCreate{Image: "alpine", Networks: []api.ContainerAttach{{Network: "pubnet", IP: "10.66.66.66"}}}, "Address already in use"},
		{api.ContainerCreate{Image: "alpine", Networks: []api.ContainerAttach{{Network: "pubnet", IP: "10.99.0.1"}}}, "does not belong"},
		{api.ContainerCreate{Image: "alpine", Networks: []api.ContainerAttach{{Network: "bridge", Aliases: []string{"x"}}}}, "user defined networks"},
		{api.ContainerCreate{Image: "alpine", Networks: []api.ContainerAttach{{Network: "dev"}, {Network: "dev"}}}, "already attached"},
		{api.ContainerCreate{Image: "postgres"}, "postgres"},
		{api.ContainerCreate{Name: "-x", Image: "alpine"}, "Invalid container name"},
	} {
		if _, err := e.Run(tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v) = %v, want an error with %q", tc.req, err, tc.want)
		}
	}
	if got := len(e.Tasks()); got != 3 {
		t.Errorf("%d containers after refused runs, want 3", got)
	}
	// The refused runs gave their addresses back.
	if got := allocated(e, "dev"); got != "[172.18.0.2]" {
		t.Errorf("addresses taken on dev after refused runs: %s, want only es's", got)
	}
}

// allocated lists the addresses a network's pool has handed out.
func allocated(e *Engine, network string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.pools[e.byName(network).ID].Allocated())
}

// waitState waits until the container named name reports state.
func waitState(t *testing.T, e *Engine, name, state string) api.Task {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, c := range e.Tasks() {
			if c.Standalone.Name == name && c.Status.State == state {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s never %s: %+v", name, state, e.Tasks())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPublishedPorts(t *testing.T) {
	h := newFakeHost(t)
	e, _ := h.engine()
	mustNetwork(t, e, api.NetworkCreate{Name: "dev"})
	tw := mustRun(t, e, api.ContainerCreate{Image: "jpetazzo/trainingwheels", PublishAll: true, Networks: []api.ContainerAttach{{Network: "dev"}}})
	if got := tw.Standalone.Ports; len(got) != 1 || got[0] != (api.ContainerPort{Proto: "tcp", HostPort: 32768, Port: 5000}) {
		t.Errorf("-P ports %+v, want 32768->5000/tcp", got)
	}
	tw2 := mustRun(t, e, api.ContainerCreate{Image: "jpetazzo/trainingwheels", PublishAll: true, Networks: []api.ContainerAttach{{Network: "dev"}}})
	if got := tw2.Standalone.Ports[0].HostPort; got != 32769 {
		t.Errorf("second -P host port %d, want 32769", got)
	}
	mustRun(t, e, api.ContainerCreate{Name: "web", Image: "nginx", Publish: []api.ContainerPort{{Proto: "tcp", HostPort: 8080, Port: 80}}})
	if _, err := e.Run(api.ContainerCreate{Image: "nginx", Publish: []api.ContainerPort{{Proto: "tcp", HostPort: 8080, Port: 80}}}); err == nil ||
		!strings.Contains(err.Error(), "Bind for 0.0.0.0:8080 failed: port is already allocated") {
		t.Errorf("second -p 8080: %v, want Docker's port is already allocated", err)
	}
	rules := h.hostRules()
	for _, want := range []string{"--dport 32768 -j DNAT --to-destination 172.18.0.2:5000", "--dport 8080 -j DNAT --to-destination 172.17.0.2:80"} {
		if !strings.Contains(rules, want) {
			t.Errorf("host rules lack %q:\n%s", want, rules)
		}
	}
}

// rm -f takes away everything the container made: its namespace, its
// veth, its published port, its address and its entry in the state.
func TestRemoveLeavesNothing(t *testing.T) {
	h := newFakeHost(t)
	e, _ := h.engine()
	mustNetwork(t, e, api.NetworkCreate{Name: "dev"})
	kernelBefore, rulesBefore := h.kernel.Dump(), h.hostRules()
	c := mustRun(t, e, api.ContainerCreate{Name: "web", Image: "nginx", Networks: []api.ContainerAttach{{Network: "dev", Aliases: []string{"www"}}},
		Publish: []api.ContainerPort{{Proto: "tcp", HostPort: 8080, Port: 80}}})
	if h.kernel.Dump() == kernelBefore || h.hostRules() == rulesBefore {
		t.Fatal("run changed neither the kernel nor the rules")
	}
	if err := e.Remove("web", false); err == nil || !strings.Contains(err.Error(), "You cannot remove a running container") {
		t.Errorf("rm of a running container without -f: %v", err)
	}
	if err := e.Remove("web", true); err != nil {
		t.Fatal(err)
	}
	if got := h.kernel.Dump(); got != kernelBefore {
		t.Errorf("kernel after rm -f:\n%s\nwant as before run:\n%s", got, kernelBefore)
	}
	if got := h.hostRules(); got != rulesBefore {
		t.Errorf("host rules after rm -f:\n%s\nwant as before run:\n%s", got, rulesBefore)
	}
	if _, err := os.Stat(filepath.Join(h.runDir, "containers", c.ID)); !os.IsNotExist(err) {
		t.Errorf("container dir after rm -f: %v", err)
	}
	if got := allocated(e, "dev"); got != "[]" {
		t.Errorf("addresses taken on dev after rm -f: %s, want none", got)
	}
	mustRun(t, e, api.ContainerCreate{Name: "web", Image: "nginx", Networks: []api.ContainerAttach{{Network: "dev"}}})
}

// A container that should run comes back after a restart, on the same
// address; one that was stopped does not.
func TestContainersComeBackAfterRestart(t *testing.T) {
	h := newFakeHost(t)
	e, stop := h.engine()
	mustNetwork(t, e, api.NetworkCreate{Name: "dev"})
	es := mustRun(t, e, api.ContainerCreate{Name: "es", Image: "elasticsearch:2", Networks: []api.ContainerAttach{{Network: "dev"}}})
	mustRun(t, e, api.ContainerCreate{Name: "off", Image: "nginx", Networks: []api.ContainerAttach{{Network: "dev"}}})
	if _, err := e.Stop("off", nil); err != nil {
		t.Fatal(err)
	}
	stop()
	e2, _ := h.engine()
	if got := waitState(t, e2, "es", api.TaskRunning); got.Networks[0].Addr != es.Networks[0].Addr {
		t.Errorf("es after restart on %v, want %s", got.Networks, es.Networks[0].Addr)
	}
	byName := map[string]api.Task{}
	for _, c := range e2.Tasks() {
		byName[c.Standalone.Name] = c
	}
	if got := byName["off"].Status.State; got == api.TaskRunning {
		t.Errorf("a stopped container is %s after restart, want it stopped", got)
	}
	if _, err := e2.CreateNetwork(api.NetworkCreate{Name: "dev"}); err == nil {
		t.Error("dev was forgotten by the restart")
	}
}

// A process that ends stops its container; with --rm the container goes.
func TestProcessEnd(t *testing.T) {
	h := newFakeHost(t)
	e, _ := h.engine()
	keep := mustRun(t, e, api.ContainerCreate{Image: "alpine", Cmd: []string{"false"}})
	gone := mustRun(t, e, api.ContainerCreate{Image: "alpine", Cmd: []string{"true"}, AutoRemove: true})
	h.exit(keep.ID, task.State{State: api.TaskFailed, Err: "task: non-zero exit (1)"})
	h.exit(gone.ID, task.State{State: api.TaskComplete})
	deadline := time.Now().Add(5 * time.Second)
	for {
		tasks := e.Tasks()
		if len(tasks) == 1 && tasks[0].Status.State == api.TaskFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers %+v: want only the failed one left", tasks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.Start(keep.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.Tasks()[0].Status.State; got != api.TaskRunning {
		t.Errorf("after start: %s, want running", got)
	}
}

// Run returns once the process is past starting, as docker run -d does:
// a ps right after it shows the container up. The fake's report of
// running waits for the engine's lock, which Run holds while it starts
// the process, so a Run that did not wait would return it starting.
func TestRunReturnsOnceRunning(t *testing.T) {
	h := newFakeHost(t)
	e, _ := h.engine()
	c := mustRun(t, e, api.ContainerCreate{Image: "alpine", Cmd: []string{"sleep", "1000"}})
	if c.Status.State != api.TaskRunning || c.Status.PID != task.FakePID {
		t.Errorf("run returned %s (pid %d), want running (pid %d)", c.Status.State, c.Status.PID, task.FakePID)
	}
}

// What drifts is repaired at the next resync: a bridge deleted by hand,
// a container's veth deleted by hand.
func TestDriftRepaired(t *testing.T) {
	h := newFakeHost(t)
	e, _ := h.engine()
	dev := mustNetwork(t, e, api.NetworkCreate{Name: "dev"})
	c := mustRun(t, e, api.ContainerCreate{Name: "es", Image: "elasticsearch:2", Networks: []api.ContainerAttach{{Network: "dev"}}})
	want := h.kernel.Dump()
	for _, breakIt := range []func() error{
		func() error { return h.kernel.RemoveLink("", vethName(c.ID, dev.ID)) },
		func() error { return h.kernel.RemoveLink("", "br-"+dev.ID[:12]) },
	} {
		if err := breakIt(); err != nil {
			t.Fatal(err)
		}
		if h.kernel.Dump() == want {
			t.Fatal("breaking it changed nothing")
		}
		e.mu.Lock()
		e.reconcileLocked(context.Background())
		e.mu.Unlock()
		if got := h.kernel.Dump(); got != want {
			t.Errorf("after a resync:\n%s\nwant:\n%s", got, want)
		}
	}
}

// network connect gives a running container a new interface and its
// names at once; disconnect takes both away and gives the address back.
func TestConnectDisconnect(t *testing.T) {
	h := newFakeHost(t)
	e, _ := h.engine()
	dev := mustNetwork(t, e, api.NetworkCreate{Name: "dev"})
	c := mustRun(t, e, api.ContainerCreate{Name: "lone", Image: "alpine"})
	veth := vethName(c.ID, dev.ID)
	if err := e.Connect("dev", "lone", api.ContainerAttach{Aliases: []string{"box"}}); err != nil {
		t.Fatal(err)
	}
	if dump := h.kernel.Dump(); !strings.Contains(dump, veth+": mtu 1500 master br-"+dev.ID[:12]+" UP veth peer eth1") {
		t.Errorf("no eth1 on dev after connect:\n%s", dump)
	}
	names := func() []string {
		e.mu.Lock()
		defer e.mu.Unlock()
		var out []string
		for _, ep := range dnsEndpoints(e.st, e.running()) {
			out = append(out, ep.Network+":"+ep.TaskName+":"+strings.Join(ep.TaskAliases, ","))
		}
		return out
	}
	if got := names(); len(got) != 1 || !strings.HasPrefix(got[0], "dev:lone:box,") {
		t.Errorf("names after connect: %v, want lone and box on dev", got)
	}
	if err := e.Connect("dev", "lone", api.ContainerAttach{}); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("a second connect: %v", err)
	}
	if err := e.Disconnect("dev", "lone"); err != nil {
		t.Fatal(err)
	}
	if dump := h.kernel.Dump(); strings.Contains(dump, veth) {
		t.Errorf("the veth on dev is left after disconnect:\n%s", dump)
	}
	if got := names(); len(got) != 0 {
		t.Errorf("names after disconnect: %v, want none", got)
	}
	if got := allocated(e, "dev"); got != "[]" {
		t.Errorf("addresses on dev after disconnect: %s", got)
	}
	if err := e.Disconnect("dev", "lone"); err == nil || !strings.Contains(err.Error(), "is not connected") {
		t.Errorf("a second disconnect: %v", err)
	}
}
