package manager

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/records"
)

// newFakeManager is a manager with a store and three Ready nodes (node1
// is the manager itself) over a fake gossip store that hears all three.
func newFakeManager(t testing.TB) *fakeManager {
	t.Helper()
	s := newTestStore(t)
	db := records.NewFakeDB("nnode1")
	m, err := New(Config{Store: s, DB: db, NodeID: "nnode1", APIAddr: "192.168.33.10:2377"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(func(st *State) error {
		for i, name := range []string{"node1", "node2", "node3"} {
			id := "n" + name
			addr := "192.168.33.1" + string(rune('0'+i))
			st.Nodes[id] = api.Node{ID: id, Hostname: name, Role: api.RoleWorker, Status: api.StatusReady,
				Availability: api.AvailabilityActive, Addr: addr, AddrPrefix: addr + "/24", APIAddr: addr + ":2377"}
			st.Trusted[id] = "trust"
		}
		st.Nodes["nnode1"] = withRole(st.Nodes["nnode1"], api.RoleManager)
		root, err := ca.NewRoot("c1", time.Now())
		if err != nil {
			return err
		}
		st.ClusterID, st.CACerts, st.CAKey, st.CertExpiry = "c1", [][]byte{root.CertDER}, root.KeyDER, time.Hour
		st.WorkerToken, st.ManagerToken = api.NewJoinToken(root.Digest()), api.NewJoinToken(root.Digest())
		st.GossipKeys = [][]byte{bytes.Repeat([]byte{7}, 32)}
		if err := addIngress(st, time.Now()); err != nil {
			return err
		}
		return ensureLBAddrs(st)
	})
	if err != nil {
		t.Fatal(err)
	}
	var members []gossip.Member
	for i, name := range []string{"node1", "node2", "node3"} {
		members = append(members, member("n"+name, name, fmt.Sprintf("192.168.33.1%d", i), gossip.StateAlive))
	}
	db.SetMembers(members...)
	return &fakeManager{Manager: m, store: s, db: db, ctx: context.Background()}
}

// fakeManager is a Manager with its store and gossip at hand.
type fakeManager struct {
	*Manager
	store *Store
	db    *records.FakeDB
	ctx   context.Context
}

func member(id, name, addr string, state gossip.MemberState) gossip.Member {
	meta, err := records.EncodeMeta(records.NodeMeta{Name: name, Role: api.RoleWorker, Addr: netip.MustParseAddr(addr),
		Prefix: netip.MustParsePrefix(addr + "/24"), DataPlane: "iptables", Version: "test"})
	if err != nil {
		panic(err)
	}
	return gossip.Member{Name: id, Addr: addr, Port: 7946, Meta: meta, State: state}
}

func replicas(n int) *int { return &n }

func withRole(n api.Node, role string) api.Node { n.Role = role; return n }

// newTestStore is a one-manager store in memory that leads already.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	s, err := OpenStore(StoreConfig{NodeID: "nnode1", Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Bootstrap("nnode1", State{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the store leads", func() error {
		if !s.IsLeader() {
			return fmt.Errorf("not leader yet")
		}
		return nil
	})
	return s
}

func TestNetworkCreateAllocatesInOrder(t *testing.T) {
	d := newFakeManager(t)
	var got []string
	for _, name := range []string{"ovnet", "other"} {
		n, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n.Subnet+" "+n.Gateway+" "+fmt.Sprint(n.VNI))
	}
	want := []string{"10.0.0.0/24 10.0.0.1 4097", "10.0.1.0/24 10.0.1.1 4098"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allocation (-want +got):\n%s", diff)
	}
	ing := d.store.Snapshot().Networks[ingressID(ptr(d.store.Snapshot()))]
	if ing.Name != "ingress" || ing.Subnet != "10.255.0.0/16" || ing.VNI != 4096 || !ing.Ingress {
		t.Errorf("ingress network: got %+v", ing)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	d := newFakeManager(t)
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "demo", Image: "alpine", Networks: []api.NetworkAttachment{{Target: "ovnet"}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		do      func() error
		wantErr string
	}{
		{"overlapping subnet", func() error {
			_, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "x", Subnet: "10.0.0.0/16"})
			return err
		}, "overlap"},
		{"subnet over the underlay", func() error {
			_, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "x", Subnet: "192.168.33.0/24"})
			return err
		}, "overlap"},
		{"malformed subnet", func() error {
			_, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "x", Subnet: "10.20.0.0/33"})
			return err
		}, `subnet "10.20.0.0/33" is not a CIDR`},
		{"gateway outside", func() error {
			_, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "x", Subnet: "10.20.0.0/24", Gateway: "10.21.0.1"})
			return err
		}, "gateway"},
		{"duplicate network", func() error { _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet"}); return err }, "already exists"},
		{"bad driver", func() error {
			_, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "y", Driver: "bridge"})
			return err
		}, "unsupported driver"},
		{"unknown network", func() error {
			_, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "s", Image: "alpine", Networks: []api.NetworkAttachment{{Target: "nope"}}})
			return err
		}, "network nope not found"},
		{"negative replicas", func() error {
			_, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "s", Image: "alpine", Replicas: replicas(-1)})
			return err
		}, "invalid replicas -1"},
		{"unknown image", func() error {
			_, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "s", Image: "postgres"})
			return err
		}, "Unable to find image 'postgres:latest' locally"},
		{"duplicate service", func() error {
			_, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "demo", Image: "alpine"})
			return err
		}, "already exists"},
		{"network in use", func() error { return d.RemoveNetwork(d.ctx, "ovnet") }, "in use by service demo"},
		{"ingress removal", func() error { return d.RemoveNetwork(d.ctx, "ingress") }, "cannot be removed"},
		{"bad service name", func() error {
			_, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "-x", Image: "alpine"})
			return err
		}, "invalid service name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			err := tt.do()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if !sameJSON(before, d.store.Snapshot()) {
				t.Errorf("a refused request changed the state")
			}
		})
	}
}

func TestSpreadSchedulingAndScale(t *testing.T) {
	d := newFakeManager(t)
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "other", Image: "alpine", Replicas: replicas(1)}); err != nil {
		t.Fatal(err)
	}
	svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2),
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}})
	if err != nil {
		t.Fatal(err)
	}
	placement := func() map[string]string {
		out := map[string]string{}
		for _, tk := range d.store.Snapshot().Tasks {
			if tk.ServiceID == svc.ID {
				out[tk.Name()] = d.store.Snapshot().Nodes[tk.NodeID].Hostname + " " + tk.Networks[0].Addr
			}
		}
		return out
	}
	// "other" sits on node1, so www spreads to the two emptier nodes.
	// The VIP takes 10.0.0.2, the tasks .3 and .4, the LB sandboxes .5, .6.
	want := map[string]string{"www.1": "node2 10.0.0.3/24", "www.2": "node3 10.0.0.4/24"}
	if diff := cmp.Diff(want, placement()); diff != "" {
		t.Errorf("placement (-want +got):\n%s", diff)
	}
	if _, err := d.ScaleService(d.ctx, "www", 3); err != nil {
		t.Fatal(err)
	}
	want["www.3"] = "node1 10.0.0.7/24"
	if diff := cmp.Diff(want, placement()); diff != "" {
		t.Errorf("after scale to 3 (-want +got):\n%s", diff)
	}
	if _, err := d.ScaleService(d.ctx, "www", 1); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"www.1": "node2 10.0.0.3/24"}, placement()); diff != "" {
		t.Errorf("after scale to 1, the highest slots go (-want +got):\n%s", diff)
	}
	if err := d.RemoveService(d.ctx, "www"); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveNetwork(d.ctx, "ovnet"); err != nil {
		t.Errorf("network rm after its service went: %v", err)
	}
}

func TestDrainedAndDownNodesGetNoTasks(t *testing.T) {
	d := newFakeManager(t)
	_, _ = d.store.Update(func(st *State) error {
		n1, n2 := st.Nodes["nnode1"], st.Nodes["nnode2"]
		n1.Availability, n2.Status = api.AvailabilityDrain, api.StatusDown
		st.Nodes["nnode1"], st.Nodes["nnode2"] = n1, n2
		return nil
	})
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "s", Image: "alpine", Replicas: replicas(3)}); err != nil {
		t.Fatal(err)
	}
	for _, tk := range d.store.Snapshot().Tasks {
		if tk.NodeID != "nnode3" {
			t.Errorf("task %s on %s, want node3 (the only Ready, Active node)", tk.Name(), tk.NodeID)
		}
	}
}

func TestPublishedServiceGetsVIPsAndIngress(t *testing.T) {
	d := newFakeManager(t)
	ov, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2),
		Networks: []api.NetworkAttachment{{Target: "ovnet"}},
		Ports:    []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}})
	if err != nil {
		t.Fatal(err)
	}
	st := d.store.Snapshot()
	ing := ingressID(&st)
	// Three nodes took 10.255.0.2-4 for their ingress sandboxes.
	want := []api.VirtualIP{{NetworkID: ing, Addr: "10.255.0.5/16"}, {NetworkID: ov.ID, Addr: "10.0.0.2/24"}}
	if diff := cmp.Diff(want, svc.Endpoint.VirtualIPs); diff != "" {
		t.Errorf("VIPs (-want +got):\n%s", diff)
	}
	if got := svc.Endpoint.Ports[0]; got.Protocol != "tcp" || got.PublishMode != "ingress" {
		t.Errorf("port defaults: got %+v", got)
	}
	for _, tk := range st.Tasks {
		if len(tk.Networks) != 2 || tk.Networks[0].NetworkID != ing || tk.Networks[1].NetworkID != ov.ID {
			t.Errorf("task %s networks %+v: want ingress first, then ovnet", tk.Name(), tk.Networks)
		}
	}
	if n := len(st.Networks[ing].LBAddrs); n != 3 {
		t.Errorf("ingress LB addresses: %d, want one per node (3)", n)
	}
	if n := len(st.Networks[ov.ID].LBAddrs); n != 2 {
		t.Errorf("ovnet LB addresses: %d, want one per node with a task (2)", n)
	}

	_, err = d.CreateService(d.ctx, api.ServiceCreate{Name: "clash", Image: "nginx", Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}})
	if err == nil || !strings.Contains(err.Error(), "already published by service www") {
		t.Errorf("port clash: err %v", err)
	}
	_, err = d.CreateService(d.ctx, api.ServiceCreate{Name: "rr", Image: "nginx", EndpointMode: "dnsrr", Ports: []api.PortConfig{{PublishedPort: 9999, TargetPort: 80}}})
	if err == nil || !strings.Contains(err.Error(), "dnsrr") {
		t.Errorf("dnsrr with ingress port: err %v", err)
	}
	dnsrr, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "rr", Image: "nginx", EndpointMode: "dnsrr",
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}})
	if err != nil || len(dnsrr.Endpoint.VirtualIPs) != 0 {
		t.Errorf("dnsrr service: VIPs %v, err %v; want none", dnsrr.Endpoint.VirtualIPs, err)
	}

	if err := d.RemoveService(d.ctx, "www"); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveService(d.ctx, "rr"); err != nil {
		t.Fatal(err)
	}
	st = d.store.Snapshot()
	if n := len(st.Networks[ov.ID].LBAddrs); n != 0 {
		t.Errorf("ovnet LB addresses after rm: %d, want 0", n)
	}
	again, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www2", Image: "whoami", Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}})
	if err != nil {
		t.Fatalf("port reusable after rm: %v", err)
	}
	if again.Endpoint.VirtualIPs[0].Addr == "10.255.0.5/16" {
		t.Errorf("a released VIP came back at once: %v", again.Endpoint.VirtualIPs)
	}
}

func TestTasksOfADownNodeAreRescheduled(t *testing.T) {
	d := newFakeManager(t)
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "s", Image: "alpine", Replicas: replicas(3)}); err != nil {
		t.Fatal(err)
	}
	down := time.Now().UTC()
	const after = 10 * time.Second
	_, _ = d.store.Update(func(st *State) error {
		n := st.Nodes["nnode2"]
		n.Status, n.UpdatedAt = api.StatusDown, down
		st.Nodes["nnode2"] = n
		return nil
	})
	_, _ = d.store.Update(func(st *State) error { return rescheduleDown(st, down.Add(after/2), after) })
	onNode2 := func() int {
		c := 0
		for _, tk := range current(d.store.Snapshot()) {
			if tk.NodeID == "nnode2" {
				c++
			}
		}
		return c
	}
	if onNode2() != 1 {
		t.Fatalf("a node down for less than %s lost its task", after)
	}
	_, _ = d.store.Update(func(st *State) error { return rescheduleDown(st, down.Add(after), after) })
	if got := onNode2(); got != 0 {
		t.Errorf("%d tasks left on the down node, want 0", got)
	}
	if got := len(current(d.store.Snapshot())); got != 3 {
		t.Errorf("%d tasks after rescheduling, want 3", got)
	}
	// The task moved stays as its slot's history, without addresses.
	for _, tk := range d.store.Snapshot().Tasks {
		if tk.NodeID == "nnode2" && (tk.DesiredState != api.TaskShutdown || tk.Networks != nil || tk.Status.State != api.TaskShutdown) {
			t.Errorf("moved task %s: desired %s, status %s, networks %v; want shut down, no addresses", tk.Name(), tk.DesiredState, tk.Status.State, tk.Networks)
		}
	}
}

// current is a state's current tasks, without the history.
func current(st State) map[string]api.Task {
	out := map[string]api.Task{}
	for id, tk := range st.Tasks {
		if tk.Current() {
			out[id] = tk
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
