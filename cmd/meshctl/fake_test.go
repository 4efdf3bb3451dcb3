package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
)

// fakeAPI answers with its funcs, as docker/cli's fakeClient does; a nil
// func gives the zero result. It implements every narrow interface of the
// commands, and its methods serve runInspect and runRm as *api.Client's
// do.
type fakeAPI struct {
	infoFunc            func() (api.Info, error)
	nodesFunc           func() ([]api.Node, error)
	nodeFunc            func(ref string) (api.Node, error)
	updateNodeFunc      func(ref string, u api.NodeUpdate) (api.Node, error)
	removeNodeFunc      func(ref string, force bool) error
	networksFunc        func() ([]api.NetworkResource, error)
	networkFunc         func(ref string) (api.NetworkResource, error)
	createNetworkFunc   func(req api.NetworkCreate) (api.Network, error)
	removeNetworkFunc   func(ref string) error
	servicesFunc        func() ([]api.Service, error)
	serviceFunc         func(ref string) (api.Service, error)
	createServiceFunc   func(req api.ServiceCreate) (api.Service, error)
	scaleServiceFunc    func(ref string, replicas int) (api.Service, error)
	removeServiceFunc   func(ref string) error
	tasksFunc           func(service, node string) ([]api.Task, error)
	taskFunc            func(ref string) (api.Task, error)
	containerFunc       func(ref string) (api.Container, error)
	containersFunc      func() ([]api.Container, error)
	taskLogsFunc        func(ref, tail string, follow bool) (string, error)
	namespacesFunc      func() ([]api.Namespace, error)
	lbTablesFunc        func() ([]api.LBTable, error)
	joinTokenFunc       func(role string, rotate bool) (api.JoinToken, error)
	caFunc              func(rotate bool) (api.SwarmCA, error)
	swarmInitFunc       func(req api.SwarmInit) (api.SwarmInitResponse, error)
	swarmJoinFunc       func(req api.SwarmJoin) (api.SwarmJoinResponse, error)
	swarmLeaveFunc      func(req api.SwarmLeave) error
	runContainerFunc    func(req api.ContainerCreate) (api.Task, error)
	stopContainerFunc   func(ref string, req api.ContainerStop) error
	startContainerFunc  func(ref string) (api.Task, error)
	removeContainerFunc func(ref string, force bool) error
	connectFunc         func(network string, req api.NetworkConnect) error
	disconnectFunc      func(network string, req api.NetworkConnect) error
}

var (
	_ nodeAPI      = (*fakeAPI)(nil)
	_ networkAPI   = (*fakeAPI)(nil)
	_ serviceAPI   = (*fakeAPI)(nil)
	_ taskAPI      = (*fakeAPI)(nil)
	_ psAPI        = (*fakeAPI)(nil)
	_ anyAPI       = (*fakeAPI)(nil)
	_ logsAPI      = (*fakeAPI)(nil)
	_ nsAPI        = (*fakeAPI)(nil)
	_ lbAPI        = (*fakeAPI)(nil)
	_ swarmAPI     = (*fakeAPI)(nil)
	_ containerAPI = (*fakeAPI)(nil)
	_ connectAPI   = (*fakeAPI)(nil)
)

func call0[T any](f func() (T, error)) (T, error) {
	if f == nil {
		var zero T
		return zero, nil
	}
	return f()
}

func call1[A, T any](f func(A) (T, error), a A) (T, error) {
	if f == nil {
		var zero T
		return zero, nil
	}
	return f(a)
}

func call2[A, B, T any](f func(A, B) (T, error), a A, b B) (T, error) {
	if f == nil {
		var zero T
		return zero, nil
	}
	return f(a, b)
}

// noResult and noResult2 adapt a func returning only an error to the
// helpers above.
func noResult[A any](f func(A) error) func(A) (struct{}, error) {
	if f == nil {
		return nil
	}
	return func(a A) (struct{}, error) { return struct{}{}, f(a) }
}

func noResult2[A, B any](f func(A, B) error) func(A, B) (struct{}, error) {
	if f == nil {
		return nil
	}
	return func(a A, b B) (struct{}, error) { return struct{}{}, f(a, b) }
}

func (f *fakeAPI) Info(context.Context) (api.Info, error)    { return call0(f.infoFunc) }
func (f *fakeAPI) Nodes(context.Context) ([]api.Node, error) { return call0(f.nodesFunc) }
func (f *fakeAPI) Node(_ context.Context, ref string) (api.Node, error) {
	return call1(f.nodeFunc, ref)
}
func (f *fakeAPI) UpdateNode(_ context.Context, ref string, u api.NodeUpdate) (api.Node, error) {
	return call2(f.updateNodeFunc, ref, u)
}
func (f *fakeAPI) RemoveNode(_ context.Context, ref string, force bool) error {
	_, err := call2(noResult2(f.removeNodeFunc), ref, force)
	return err
}
func (f *fakeAPI) Networks(context.Context) ([]api.NetworkResource, error) {
	return call0(f.networksFunc)
}
func (f *fakeAPI) Network(_ context.Context, ref string) (api.NetworkResource, error) {
	return call1(f.networkFunc, ref)
}
func (f *fakeAPI) CreateNetwork(_ context.Context, req api.NetworkCreate) (api.Network, error) {
	return call1(f.createNetworkFunc, req)
}
func (f *fakeAPI) RemoveNetwork(_ context.Context, ref string) error {
	_, err := call1(noResult(f.removeNetworkFunc), ref)
	return err
}
func (f *fakeAPI) Services(context.Context) ([]api.Service, error) { return call0(f.servicesFunc) }
func (f *fakeAPI) Service(_ context.Context, ref string) (api.Service, error) {
	return call1(f.serviceFunc, ref)
}
func (f *fakeAPI) CreateService(_ context.Context, req api.ServiceCreate) (api.Service, error) {
	return call1(f.createServiceFunc, req)
}
func (f *fakeAPI) ScaleService(_ context.Context, ref string, replicas int) (api.Service, error) {
	return call2(f.scaleServiceFunc, ref, replicas)
}
func (f *fakeAPI) RemoveService(_ context.Context, ref string) error {
	_, err := call1(noResult(f.removeServiceFunc), ref)
	return err
}
func (f *fakeAPI) Tasks(_ context.Context, service, node string) ([]api.Task, error) {
	return call2(f.tasksFunc, service, node)
}
func (f *fakeAPI) Task(_ context.Context, ref string) (api.Task, error) {
	return call1(f.taskFunc, ref)
}
func (f *fakeAPI) Container(_ context.Context, ref string) (api.Container, error) {
	return call1(f.containerFunc, ref)
}
func (f *fakeAPI) Containers(context.Context) ([]api.Container, error) {
	return call0(f.containersFunc)
}
func (f *fakeAPI) TaskLogs(_ context.Context, ref, tail string, follow bool) (io.ReadCloser, error) {
	if f.taskLogsFunc == nil {
		return io.NopCloser(strings.NewReader("")), nil
	}
	out, err := f.taskLogsFunc(ref, tail, follow)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader(out)), nil
}
func (f *fakeAPI) Namespaces(context.Context) ([]api.Namespace, error) {
	return call0(f.namespacesFunc)
}
func (f *fakeAPI) LBTables(context.Context) ([]api.LBTable, error) { return call0(f.lbTablesFunc) }
func (f *fakeAPI) JoinToken(_ context.Context, role string, rotate bool) (api.JoinToken, error) {
	return call2(f.joinTokenFunc, role, rotate)
}
func (f *fakeAPI) CA(_ context.Context, rotate bool) (api.SwarmCA, error) {
	return call1(f.caFunc, rotate)
}
func (f *fakeAPI) SwarmInit(_ context.Context, req api.SwarmInit) (api.SwarmInitResponse, error) {
	return call1(f.swarmInitFunc, req)
}
func (f *fakeAPI) SwarmJoin(_ context.Context, req api.SwarmJoin) (api.SwarmJoinResponse, error) {
	return call1(f.swarmJoinFunc, req)
}
func (f *fakeAPI) SwarmLeave(_ context.Context, req api.SwarmLeave) error {
	_, err := call1(noResult(f.swarmLeaveFunc), req)
	return err
}

func (f *fakeAPI) RunContainer(_ context.Context, req api.ContainerCreate) (api.Task, error) {
	return call1(f.runContainerFunc, req)
}
func (f *fakeAPI) StopContainer(_ context.Context, ref string, req api.ContainerStop) error {
	_, err := call2(noResult2(f.stopContainerFunc), ref, req)
	return err
}
func (f *fakeAPI) StartContainer(_ context.Context, ref string) (api.Task, error) {
	return call1(f.startContainerFunc, ref)
}
func (f *fakeAPI) RemoveContainer(_ context.Context, ref string, force bool) error {
	_, err := call2(noResult2(f.removeContainerFunc), ref, force)
	return err
}
func (f *fakeAPI) ConnectNetwork(_ context.Context, network string, req api.NetworkConnect) error {
	_, err := call2(noResult2(f.connectFunc), network, req)
	return err
}
func (f *fakeAPI) DisconnectNetwork(_ context.Context, network string, req api.NetworkConnect) error {
	_, err := call2(noResult2(f.disconnectFunc), network, req)
	return err
}

// fakeLab is a lab of three nodes whose daemons are only recorded: what
// was asked of them, in order, as "stop node2 killed", "start node2",
// "wait node2". errs fails the call of that text.
type fakeLab struct {
	calls []string
	errs  map[string]error
}

var _ labDaemons = (*fakeLab)(nil)

func (l *fakeLab) Nodes() []lab.Node {
	var nodes []lab.Node
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("node%d", i)
		nodes = append(nodes, lab.Node{Name: name, Netns: name, Addr: netip.AddrFrom4([4]byte{192, 168, 33, byte(9 + i)}),
			RunDir: "/run/meshd-lab/default/" + name, Log: "/run/meshd-lab/default/" + name + "/meshd.log"})
	}
	return nodes
}

func (l *fakeLab) call(c string) error {
	l.calls = append(l.calls, c)
	return l.errs[c]
}

func (l *fakeLab) StopNode(name string, sig syscall.Signal) error {
	return l.call("stop " + name + " " + sig.String())
}

func (l *fakeLab) StartNode(_ context.Context, name string) error { return l.call("start " + name) }

func (l *fakeLab) WaitNode(_ context.Context, name string, _ time.Duration, _ func(context.Context, lab.Node) error) error {
	return l.call("wait " + name)
}

// fakeMachine records what the exec commands run instead of running it.
type fakeMachine struct {
	labNodes []string   // nodes of the local lab
	ran      [][]string // argv of every run, in order
	attached []stdio    // how each attach would attach, in order
	envs     [][]string // the Env of each attach, nil for meshctl's
	status   int        // what every command exits with
	// log, when set, gets "exec ARGV..." for each run, so that a test
	// can put it in order among the API's calls.
	log *[]string
}

var _ execMachine = (*fakeMachine)(nil)

func (m *fakeMachine) labNode(name string) bool { return slices.Contains(m.labNodes, name) }

func (m *fakeMachine) run(x *exec.Cmd, _ string) error {
	m.ran = append(m.ran, x.Args)
	if m.log != nil {
		*m.log = append(*m.log, "exec "+strings.Join(x.Args, " "))
	}
	if m.status != 0 {
		return exitCode(m.status)
	}
	return nil
}

func (m *fakeMachine) attach(x *exec.Cmd, s stdio, what string) error {
	m.attached, m.envs = append(m.attached, s), append(m.envs, x.Env)
	return m.run(x, what)
}

// The fixtures: a three-node cluster at a fixed time, so that goldens are
// stable. Address plan (the tutorials'): underlay 192.168.33.0/24, node<i>
// at .(9+i); ingress 10.255.0.0/16; overlays 10.0.<n>.0/24.
const (
	workerToken  = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz0123456789abcd-1awxwuwd3z9j1z3puu7rcgdbx"
	managerToken = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz0123456789abcd-8dnbvjhk4bj3o4u2o4fz2zl5m"
)

var (
	t0      = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	testNow = t0.Add(3 * time.Hour)

	threeNodes = []api.Node{
		{ID: "vrto8yiuht7u28ey3faajwvr8", Hostname: "node1", Role: "manager", Status: "Ready", Availability: "Active", ManagerStatus: "Leader", Addr: "192.168.33.10", DataPlane: "iptables", Self: true},
		{ID: "8bau2aslhpnjxxq1e0p5ohm3u", Hostname: "node2", Role: "worker", Status: "Down", Availability: "Active", Addr: "192.168.33.11", DataPlane: "iptables"},
		{ID: "w1iwcy57ihkj0s0x6k3b4ig1c", Hostname: "node3", Role: "worker", Status: "Ready", Availability: "Drain", Addr: "192.168.33.12", DataPlane: "ipvs"},
	}
	// managerNodes is a swarm of three managers, one of them gone, and a
	// worker, as node ls shows it on the leader.
	managerNodes = []api.Node{
		{ID: "vrto8yiuht7u28ey3faajwvr8", Hostname: "node1", Role: "manager", Status: "Ready", Availability: "Active", ManagerStatus: "Leader", Addr: "192.168.33.10", DataPlane: "iptables", Self: true},
		{ID: "8bau2aslhpnjxxq1e0p5ohm3u", Hostname: "node2", Role: "manager", Status: "Ready", Availability: "Active", ManagerStatus: "Reachable", Addr: "192.168.33.11", DataPlane: "iptables"},
		{ID: "w1iwcy57ihkj0s0x6k3b4ig1c", Hostname: "node3", Role: "manager", Status: "Down", Availability: "Active", ManagerStatus: "Unreachable", Addr: "192.168.33.12", DataPlane: "ipvs"},
		{ID: "q2p8c4x6v1n3m5b7z9l0k2j4h", Hostname: "node4", Role: "worker", Status: "Ready", Availability: "Active", Addr: "192.168.33.13", DataPlane: "ipvs"},
	}
	testServices = []api.Service{
		{ID: "9d2k4m6p8r0t1v3x5z7b9c1e3", Name: "www", Image: "whoami", Replicas: 2, Running: 1, Version: 7, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour),
			Networks: []api.NetworkAttachment{{Target: "kq0b2hbd7c4h5dqwlq4x9s0r3", Aliases: []string{"web"}}},
			Endpoint: api.Endpoint{Mode: "vip",
				Ports: []api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8888, PublishMode: "ingress"},
					{Protocol: "udp", TargetPort: 53, PublishedPort: 5353, PublishMode: "ingress"}},
				VirtualIPs: []api.VirtualIP{{NetworkID: "x2nd1o7i0nqvz6tb1y2omqawh", Addr: "10.255.0.4/16"}, {NetworkID: "kq0b2hbd7c4h5dqwlq4x9s0r3", Addr: "10.0.1.2/24"}}},
			RestartPolicy: api.RestartPolicy{Condition: "any", Delay: 5 * time.Second}},
		{ID: "b5n7q9s1u3w5y7a9c1e3g5i7k", Name: "dns", Args: []string{"dnsmasq", "--keep-in-foreground"}, Replicas: 1, Running: 0, Version: 1,
			CreatedAt: t0, UpdatedAt: t0, Endpoint: api.Endpoint{Mode: "dnsrr"},
			RestartPolicy: api.RestartPolicy{Condition: "on-failure", Delay: time.Second, MaxAttempts: 3}},
		{ID: "m1o3q5s7u9w1y3a5c7e9g1i3k", Name: "idle", Image: "alpine", Replicas: 0, Version: 2, CreatedAt: t0, UpdatedAt: t0, Endpoint: api.Endpoint{Mode: "vip"}},
	}
	testTasks = []api.Task{
		{ID: "p7b0d3zr5n6hq1w8y2k4c9m0a", ServiceID: "9d2k4m6p8r0t1v3x5z7b9c1e3", ServiceName: "www", Slot: 1, NodeID: "vrto8yiuht7u28ey3faajwvr8", NodeName: "node1",
			Image: "whoami", DesiredState: "running", CreatedAt: t0,
			Networks: []api.TaskNetwork{{NetworkID: "x2nd1o7i0nqvz6tb1y2omqawh", NetworkName: "ingress", Addr: "10.255.0.5/16", MAC: "02:42:0a:ff:00:05"},
				{NetworkID: "kq0b2hbd7c4h5dqwlq4x9s0r3", NetworkName: "ovnet", Addr: "10.0.1.3/24", MAC: "02:42:0a:00:01:03"}},
			Status: api.TaskStatus{State: "running", Timestamp: testNow.Add(-42 * time.Second), PID: 4242, Sandbox: "/var/run/meshd/netns/p7b0d3zr5n6h"}},
		// www.1's history: the task before it failed, and the one before
		// that was moved off node2. Listed out of order, as a map gives
		// them.
		{ID: "k3m5o7q9s1u3w5y7a9c1e3g5i", ServiceID: "9d2k4m6p8r0t1v3x5z7b9c1e3", ServiceName: "www", Slot: 1, NodeID: "8bau2aslhpnjxxq1e0p5ohm3u", NodeName: "node2",
			Image: "whoami", DesiredState: "shutdown", CreatedAt: t0, EndedAt: testNow.Add(-10 * time.Minute),
			Status: api.TaskStatus{State: "shutdown", Message: "moved off its node", Timestamp: testNow.Add(-10 * time.Minute)}},
		{ID: "d2f4h6j8l0n2p4r6t8v0x2z4b", ServiceID: "9d2k4m6p8r0t1v3x5z7b9c1e3", ServiceName: "www", Slot: 1, NodeID: "vrto8yiuht7u28ey3faajwvr8", NodeName: "node1",
			Image: "whoami", DesiredState: "shutdown", CreatedAt: t0.Add(time.Minute), EndedAt: testNow.Add(-47 * time.Second),
			Status: api.TaskStatus{State: "failed", Err: "task: non-zero exit (1)", Timestamp: testNow.Add(-48 * time.Second)}},
		{ID: "h4j6l8n0p2r4t6v8x0z2b4d6f", ServiceID: "9d2k4m6p8r0t1v3x5z7b9c1e3", ServiceName: "www", Slot: 2, NodeID: "8bau2aslhpnjxxq1e0p5ohm3u", NodeName: "node2",
			Image: "whoami", DesiredState: "running", CreatedAt: t0,
			Status: api.TaskStatus{State: "failed", Timestamp: testNow.Add(-5 * time.Minute),
				Err: "start task: exec whoami: the network ovnet has no address left for this task, try a larger subnet\nsecond line"}},
		{ID: "r8t0v2x4z6b8d0f2h4j6l8n0p", ServiceID: "b5n7q9s1u3w5y7a9c1e3g5i7k", ServiceName: "dns", Slot: 1, NodeID: "vrto8yiuht7u28ey3faajwvr8", NodeName: "node1",
			Args: []string{"dnsmasq", "--keep-in-foreground"}, DesiredState: "running", CreatedAt: t0,
			Status: api.TaskStatus{State: "starting"}},
	}
	testInfo = api.Info{NodeID: "vrto8yiuht7u28ey3faajwvr8", NodeName: "node1", NodeAddr: "192.168.33.10", LocalNodeState: "active", Role: "manager",
		ClusterID: "c0c0c0c0c0c0c0c0c0c0c0c0c", ManagerAddr: "192.168.33.10:2377",
		Managers:         []string{"192.168.33.10:2377", "192.168.33.11:2377", "192.168.33.12:2377"},
		ControlAvailable: true, Leader: "node1", ManagerReachable: true,
		DataPlane: "iptables", Version: "0.1.0-dev", RunDir: "/var/run/meshd", Nodes: 3, NodesReady: 2}
	// workerInfo is node4 of managerNodes once every manager is gone.
	workerInfo = api.Info{NodeID: "q2p8c4x6v1n3m5b7z9l0k2j4h", NodeName: "node4", NodeAddr: "192.168.33.13", LocalNodeState: "active", Role: "worker",
		ClusterID: "c0c0c0c0c0c0c0c0c0c0c0c0c", ManagerAddr: "192.168.33.10:2377",
		Managers:  []string{"192.168.33.10:2377", "192.168.33.11:2377", "192.168.33.12:2377"},
		DataPlane: "ipvs", Version: "0.1.0-dev", RunDir: "/var/run/meshd",
		Warning: "manager unreachable: serving the last desired state"}
	// inactiveInfo is a meshd that has neither initialised nor joined a swarm.
	inactiveInfo = api.Info{NodeID: "vrto8yiuht7u28ey3faajwvr8", NodeName: "node1", NodeAddr: "192.168.33.10", LocalNodeState: "inactive",
		DataPlane: "iptables", Version: "0.1.0-dev", RunDir: "/var/run/meshd"}
)

// newFakeAPI is a fakeAPI serving the fixtures, looking objects up as
// meshd does: by ID, ID prefix or name.
func newFakeAPI() *fakeAPI {
	return &fakeAPI{
		infoFunc:  func() (api.Info, error) { return testInfo, nil },
		nodesFunc: func() ([]api.Node, error) { return threeNodes, nil },
		nodeFunc: func(ref string) (api.Node, error) {
			return lookup(threeNodes, "node", ref, func(n api.Node) (string, string) { return n.ID, n.Hostname })
		},
		networksFunc: func() ([]api.NetworkResource, error) { return networkList(testNetworks), nil },
		networkFunc: func(ref string) (api.NetworkResource, error) {
			return lookup(testNetworks, "network", ref, func(n api.NetworkResource) (string, string) { return n.ID, n.Name })
		},
		servicesFunc: func() ([]api.Service, error) { return testServices, nil },
		serviceFunc: func(ref string) (api.Service, error) {
			return lookup(testServices, "service", ref, func(s api.Service) (string, string) { return s.ID, s.Name })
		},
		tasksFunc: func(service, node string) ([]api.Task, error) {
			var out []api.Task
			for _, t := range testTasks {
				if (service == "" || service == t.ServiceName || service == t.ServiceID) && (node == "" || node == t.NodeID) {
					out = append(out, t)
				}
			}
			return out, nil
		},
		taskFunc: func(ref string) (api.Task, error) {
			return lookup(testTasks, "task", ref, func(t api.Task) (string, string) { return t.ID, t.Name() })
		},
		containerFunc: func(ref string) (api.Container, error) {
			t, err := api.MatchContainer(testTasks, ref)
			if err != nil {
				return api.Container{}, err
			}
			return testContainer(t), nil
		},
		containersFunc: func() ([]api.Container, error) {
			var out []api.Container
			for _, t := range testTasks {
				if t.NodeID == testInfo.NodeID {
					out = append(out, testContainer(t))
				}
			}
			return out, nil
		},
		namespacesFunc: func() ([]api.Namespace, error) {
			return []api.Namespace{
				{Name: "ingress_sbox", Path: "/var/run/meshd/netns/ingress_sbox", Kind: "ingress", Owner: "ingress"},
				{Name: "1-kq0b2hbd7c", Path: "/var/run/meshd/netns/1-kq0b2hbd7c", Kind: "overlay", Owner: "ovnet"},
				{Name: "p7b0d3zr5n6h", Path: "/var/run/meshd/netns/p7b0d3zr5n6h", Kind: "task", Owner: "www.1"},
			}, nil
		},
		lbTablesFunc: func() ([]api.LBTable, error) {
			return []api.LBTable{
				{Sandbox: "ingress_sbox", Network: "ingress", DataPlane: "ipvs", Table: "IP Virtual Server version 1.2.1 (size=4096)\n" +
					"Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
					"FWM  256 rr\n  -> 10.255.0.5:0                 Masq    1      0          0\n"},
				{Sandbox: "lb_kq0b2hbd7c", Network: "ovnet", DataPlane: "ipvs", Error: "netlink: no such file or directory"},
			}, nil
		},
		// Rotation gives the next token: a fixture that cannot be mistaken
		// for the one before.
		joinTokenFunc: func(role string, rotate bool) (api.JoinToken, error) {
			tok := map[string]string{api.RoleWorker: workerToken, api.RoleManager: managerToken}[role]
			if rotate {
				tok = tok[:len(tok)-4] + "next"
			}
			return api.JoinToken{Role: role, Token: tok, ManagerAddr: "192.168.33.10:2377"}, nil
		},
		swarmInitFunc: func(api.SwarmInit) (api.SwarmInitResponse, error) {
			return api.SwarmInitResponse{NodeID: threeNodes[0].ID, ClusterID: testInfo.ClusterID, WorkerToken: workerToken, ManagerAddr: "192.168.33.10:2377"}, nil
		},
		swarmJoinFunc: func(req api.SwarmJoin) (api.SwarmJoinResponse, error) {
			role := api.RoleWorker
			if req.Token == managerToken {
				role = api.RoleManager
			}
			return api.SwarmJoinResponse{NodeID: threeNodes[1].ID, Role: role}, nil
		},
	}
}

// lookup finds ref among items by ID, ID prefix or name, failing as meshd
// does.
func lookup[T any](items []T, kind, ref string, keys func(T) (id, name string)) (T, error) {
	for _, it := range items {
		if id, name := keys(it); name == ref || strings.HasPrefix(id, ref) {
			return it, nil
		}
	}
	var zero T
	return zero, api.NotFound("%s %s not found", kind, ref)
}
