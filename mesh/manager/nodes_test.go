package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

func TestJoinRecordsTheNodeAndAnswersGossipAddrs(t *testing.T) {
	d := newFakeManager(t)
	req := api.JoinRequest{ID: "nnode4", Hostname: "node4", Addr: "192.168.33.13", AddrPrefix: "192.168.33.13/24",
		GossipPort: 7946, APIAddr: "192.168.33.13:2377", DataPlane: "iptables", Version: "test"}
	resp, err := d.Join(d.ctx, req, api.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ManagerID != "nnode1" || resp.ManagerAddr != "192.168.33.10:2377" || len(resp.GossipAddrs) != 3 ||
		resp.Role != api.RoleWorker || strings.Join(resp.Managers, ",") != "192.168.33.10:2377" {
		t.Errorf("join answer: got %+v", resp)
	}
	// The secrets open with the worker token only.
	if _, err := api.Open("SWMTKN-1-manager", resp.Sealed); err == nil {
		t.Error("join secrets open with another token")
	}
	plain, err := api.Open("SWMTKN-1-worker", resp.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	var secrets api.JoinSecrets
	if err := json.Unmarshal(plain, &secrets); err != nil {
		t.Fatal(err)
	}
	if got := d.store.Snapshot().NodeSecrets["nnode4"]; secrets.NodeSecret == "" || got != secrets.NodeSecret {
		t.Errorf("node secret: sealed %q, recorded %q", secrets.NodeSecret, got)
	}
	st := d.store.Snapshot()
	n := st.Nodes["nnode4"]
	if n.Hostname != "node4" || n.Role != api.RoleWorker || n.AddrPrefix != "192.168.33.13/24" || n.Availability != api.AvailabilityActive {
		t.Errorf("node4 record: got %+v", n)
	}
	if _, ok := st.Networks[ingressID(&st)].LBAddrs["nnode4"]; !ok {
		t.Error("a joined node got no ingress sandbox address")
	}
	for _, tt := range []struct {
		name string
		req  api.JoinRequest
		want string
	}{
		{"no address", api.JoinRequest{ID: "x", Hostname: "x", GossipPort: 7946, APIAddr: "10.0.0.1:2377"}, "join request needs"},
		{"bad port", api.JoinRequest{ID: "x", Hostname: "x", Addr: "10.0.0.1", GossipPort: 70000, APIAddr: "10.0.0.1:2377"}, "join request needs"},
		{"no api address", api.JoinRequest{ID: "x", Hostname: "x", Addr: "10.0.0.1", GossipPort: 7946}, "needs APIAddr"},
		{"the manager's own ID", api.JoinRequest{ID: "nnode1", Hostname: "x", Addr: "10.0.0.1", GossipPort: 7946, APIAddr: "10.0.0.1:2377"}, "manager's own"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			_, err := d.Join(d.ctx, tt.req, api.RoleWorker)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if !sameJSON(before, d.store.Snapshot()) {
				t.Error("a refused join changed the state")
			}
		})
	}
}

func TestSyncNodesFollowsGossip(t *testing.T) {
	d := newFakeManager(t)
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "s", Image: "alpine", Replicas: replicas(3)}); err != nil {
		t.Fatal(err)
	}
	// node3 dies; node2 comes back on another data plane.
	m2 := member("nnode2", "node2", "192.168.33.11", gossip.StateAlive)
	meta, _ := records.DecodeMeta(m2.Meta)
	meta.DataPlane = "ipvs"
	m2.Meta, _ = records.EncodeMeta(meta)
	d.db.SetMembers(member("nnode1", "node1", "192.168.33.10", gossip.StateAlive), m2,
		member("nnode3", "node3", "192.168.33.12", gossip.StateDead))
	now := time.Now().UTC()
	d.syncNodes(now)
	st := d.store.Snapshot()
	if st.Nodes["nnode3"].Status != api.StatusDown || st.Nodes["nnode2"].DataPlane != "ipvs" {
		t.Errorf("after sync: node3 %s (want Down), node2 plane %q (want ipvs)", st.Nodes["nnode3"].Status, st.Nodes["nnode2"].DataPlane)
	}
	d.syncNodes(now.Add(11 * time.Second))
	for _, tk := range d.store.Snapshot().Tasks {
		if tk.NodeID == "nnode3" {
			t.Errorf("task %s still on node3 after 11 s down", tk.Name())
		}
	}
	view := d.Nodes()
	if len(view) != 3 || view[2].Status != api.StatusDown || !view[0].Self {
		t.Errorf("node view: got %+v", view)
	}
}

func TestUpdateAndRemoveNode(t *testing.T) {
	d := newFakeManager(t)
	n, err := d.UpdateNode(d.ctx, "node2", api.NodeUpdate{Availability: "drain"})
	if err != nil || n.Availability != api.AvailabilityDrain {
		t.Fatalf("update node2 to drain: %+v, %v", n, err)
	}
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"bad availability", func() error {
			_, err := d.UpdateNode(d.ctx, "node2", api.NodeUpdate{Availability: "sleep"})
			return err
		}, "invalid availability"},
		{"unknown node", func() error { _, err := d.UpdateNode(d.ctx, "node9", api.NodeUpdate{}); return err }, "node node9 not found"},
		{"remove the manager", func() error { return d.RemoveNode(d.ctx, "node1", true) }, "demote it before"},
		{"demote the last manager", func() error {
			_, err := d.UpdateNode(d.ctx, "node1", api.NodeUpdate{Role: api.RoleWorker})
			return err
		}, "last manager"},
		{"bad role", func() error { _, err := d.UpdateNode(d.ctx, "node2", api.NodeUpdate{Role: "boss"}); return err }, "invalid role"},
		{"remove a live node", func() error { return d.RemoveNode(d.ctx, "node2", false) }, "not down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			if err := tt.do(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if !sameJSON(before, d.store.Snapshot()) {
				t.Error("a refused request changed the state")
			}
		})
	}
	if err := d.RemoveNode(d.ctx, "node3", true); err != nil {
		t.Fatal(err)
	}
	st := d.store.Snapshot()
	if _, ok := st.Nodes["nnode3"]; ok {
		t.Error("node3 still recorded after rm --force")
	}
	if _, ok := st.Networks[ingressID(&st)].LBAddrs["nnode3"]; ok {
		t.Error("node3 kept its ingress address after rm")
	}
}

func TestRunPublishesWhatChanged(t *testing.T) {
	d := newFakeManager(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2)})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "www and its 2 tasks in the tables", func() error {
		o := records.ReadObjects(d.db)
		if _, ok := o.Services[svc.ID]; !ok || len(o.Tasks) != 2 || len(o.Nodes) != 3 {
			return fmt.Errorf("%d services, %d tasks, %d nodes", len(o.Services), len(o.Tasks), len(o.Nodes))
		}
		return nil
	})
	if err := d.RemoveService(d.ctx, "www"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "www gone from the tables", func() error {
		if o := records.ReadObjects(d.db); len(o.Services) != 0 || len(o.Tasks) != 0 {
			return fmt.Errorf("%d services, %d tasks", len(o.Services), len(o.Tasks))
		}
		return nil
	})
	var ing api.Network
	for _, e := range d.db.List(records.TableNetworks, "") {
		_ = json.Unmarshal(e.Value, &ing)
	}
	if ing.Name != api.IngressName {
		t.Errorf("published network: got %q, want ingress", ing.Name)
	}
}

func TestRoleChangesAreChecked(t *testing.T) {
	node := func(id, role string) api.Node {
		return api.Node{ID: id, Hostname: id, Role: role, APIAddr: id + ":2377"}
	}
	state := func(nodes ...api.Node) *State {
		var s State
		s.init()
		for _, n := range nodes {
			s.Nodes[n.ID] = n
			s.NodeSecrets[n.ID] = "secret"
		}
		return &s
	}
	all := map[string]bool{"m1": true, "m2": true, "m3": true, "w4": true}
	tests := []struct {
		name  string
		s     *State
		node  string
		role  string
		alive map[string]bool
		want  string // "" = allowed
	}{
		{"promote a live worker", state(node("m1", api.RoleManager), node("w4", api.RoleWorker)), "w4", api.RoleManager, all, ""},
		{"promote a dead worker", state(node("m1", api.RoleManager), node("w4", api.RoleWorker)), "w4", api.RoleManager,
			map[string]bool{"m1": true}, "is down"},
		{"demote the last manager", state(node("m1", api.RoleManager), node("w4", api.RoleWorker)), "m1", api.RoleWorker, all, "last manager"},
		{"demote one of three", state(node("m1", api.RoleManager), node("m2", api.RoleManager), node("m3", api.RoleManager)), "m3",
			api.RoleWorker, all, ""},
		{"demote one of three with another down", state(node("m1", api.RoleManager), node("m2", api.RoleManager), node("m3", api.RoleManager)),
			"m3", api.RoleWorker, map[string]bool{"m1": true, "m3": true}, "loss of quorum"},
		{"demote one of two", state(node("m1", api.RoleManager), node("m2", api.RoleManager)), "m2", api.RoleWorker, all, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRoleChange(tt.s, tt.s.Nodes[tt.node], tt.role, tt.alive)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A node without a secret (joined before secrets existed) cannot be promoted.
	s := state(node("m1", api.RoleManager), node("w4", api.RoleWorker))
	delete(s.NodeSecrets, "w4")
	if err := checkRoleChange(s, s.Nodes["w4"], api.RoleManager, all); err == nil || !strings.Contains(err.Error(), "leave and join again") {
		t.Errorf("promote a node without a secret: %v", err)
	}
}

func TestJoinTokens(t *testing.T) {
	d := newFakeManager(t)
	w, err := d.JoinToken(api.RoleWorker)
	if err != nil || w.Token != "SWMTKN-1-worker" || w.ManagerAddr != "192.168.33.10:2377" {
		t.Fatalf("worker token: %+v, %v", w, err)
	}
	if _, err := d.JoinToken("boss"); err == nil {
		t.Error("a token for an unknown role")
	}
	rotated, err := d.RotateJoinToken(d.ctx, api.RoleWorker)
	if err != nil || rotated.Token == w.Token || api.CheckToken(rotated.Token) != nil {
		t.Fatalf("rotate: %+v, %v", rotated, err)
	}
	if d.TokenRole(w.Token) != "" || d.TokenRole(rotated.Token) != api.RoleWorker || d.TokenRole("SWMTKN-1-manager") != api.RoleManager {
		t.Error("TokenRole does not follow the rotation")
	}
	if m, _ := d.JoinToken(api.RoleManager); m.Token != "SWMTKN-1-manager" {
		t.Errorf("rotating the worker token changed the manager's: %s", m.Token)
	}
}

// TestVotersFollowRoles promotes and demotes managers of an in-memory
// three-store cluster through the leader's manager and checks the raft
// configuration follows.
func TestVotersFollowRoles(t *testing.T) {
	stores := newTestCluster(t, 3)
	// All three start as voters; m2 is recorded a worker, so a sync removes it.
	db := records.NewFakeDB("m0")
	m, err := New(Config{Store: stores[0], DB: db, NodeID: "m0", APIAddr: "m0"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stores[0].Update(func(s *State) error {
		for i, role := range []string{api.RoleManager, api.RoleManager, api.RoleWorker} {
			id := fmt.Sprint("m", i)
			s.Nodes[id] = api.Node{ID: id, Hostname: id, Role: role, Status: api.StatusReady, APIAddr: id}
			s.NodeSecrets[id] = "secret"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	voters := func() string {
		servers, err := stores[0].Servers()
		if err != nil {
			return err.Error()
		}
		var ids []string
		for _, sv := range servers {
			ids = append(ids, sv.ID)
		}
		return strings.Join(ids, " ")
	}
	m.syncVoters()
	if got := voters(); got != "m0 m1" {
		t.Errorf("voters after a sync with m2 a worker: %q, want m0 m1", got)
	}
	if _, err := stores[0].Update(func(s *State) error { s.Nodes["m2"] = withRole(s.Nodes["m2"], api.RoleManager); return nil }); err != nil {
		t.Fatal(err)
	}
	m.syncVoters()
	if got := voters(); got != "m0 m1 m2" {
		t.Errorf("voters after promoting m2: %q, want m0 m1 m2", got)
	}
}
