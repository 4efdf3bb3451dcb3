package manager

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/records"
)

func TestJoinRecordsTheNodeAndSignsItsCertificate(t *testing.T) {
	d := newFakeManager(t)
	st := d.store.Snapshot()
	_, csr, err := ca.NewKey("nnode4")
	if err != nil {
		t.Fatal(err)
	}
	req := api.JoinRequest{Token: st.WorkerToken, ID: "nnode4", Hostname: "node4", Addr: "192.168.33.13", AddrPrefix: "192.168.33.13/24",
		GossipPort: 7946, APIAddr: "192.168.33.13:2377", DataPlane: "iptables", Version: "test", CSR: csr}
	resp, err := d.Join(d.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ManagerID != "nnode1" || resp.ManagerAddr != "192.168.33.10:2377" || len(resp.GossipAddrs) != 3 ||
		resp.Role != api.RoleWorker || strings.Join(resp.Managers, ",") != "192.168.33.10:2377" || len(resp.GossipKeys) != 1 {
		t.Errorf("join answer: got %+v", resp)
	}
	cert, err := x509.ParseCertificate(resp.Cert)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ca.PeerOf(cert)
	if err != nil || peer != (ca.Peer{NodeID: "nnode4", Role: api.RoleWorker, ClusterID: "c1", NotAfter: cert.NotAfter}) {
		t.Errorf("certificate says %+v, %v", peer, err)
	}
	if _, err := ca.NewIdentity(resp.Cert, mustKey(t), resp.CACerts); err == nil {
		t.Error("a certificate accepted with another node's key")
	}
	st = d.store.Snapshot()
	n := st.Nodes["nnode4"]
	if n.Hostname != "node4" || n.Role != api.RoleWorker || n.AddrPrefix != "192.168.33.13/24" || n.Availability != api.AvailabilityActive {
		t.Errorf("node4 record: got %+v", n)
	}
	if _, ok := st.Networks[ingressID(&st)].LBAddrs["nnode4"]; !ok {
		t.Error("a joined node got no ingress sandbox address")
	}
	if st.Trusted["nnode4"] != st.Trust() {
		t.Error("the join is not recorded as holding the current trust")
	}
	// The manager token gives a manager's certificate.
	req.ID, req.Hostname, req.Token = "nnode5", "node5", st.ManagerToken
	if resp, err := d.Join(d.ctx, req); err != nil || resp.Role != api.RoleManager {
		t.Errorf("join with the manager token: %+v, %v", resp.Role, err)
	}
	good := req
	for _, tt := range []struct {
		name string
		req  func(r *api.JoinRequest)
		want string
	}{
		{"no address", func(r *api.JoinRequest) { r.Addr = "" }, "join request needs"},
		{"bad port", func(r *api.JoinRequest) { r.GossipPort = 70000 }, "join request needs"},
		{"no api address", func(r *api.JoinRequest) { r.APIAddr = "" }, "needs APIAddr"},
		{"no csr", func(r *api.JoinRequest) { r.CSR = nil }, "certificate request"},
		{"bad csr", func(r *api.JoinRequest) { r.CSR = []byte("nope") }, "certificate request"},
		{"the manager's own ID", func(r *api.JoinRequest) { r.ID = "nnode1" }, "manager's own"},
		{"wrong token", func(r *api.JoinRequest) { r.Token = api.NewJoinToken(strings.Repeat("0", 50)) }, "invalid join token"},
		{"no token", func(r *api.JoinRequest) { r.Token = "" }, "invalid join token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := good
			req.ID, req.Hostname = "nnode6", "node6"
			tt.req(&req)
			before := d.store.Snapshot()
			_, err := d.Join(d.ctx, req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if !sameJSON(before, d.store.Snapshot()) {
				t.Error("a refused join changed the state")
			}
		})
	}
}

func mustKey(t *testing.T) []byte {
	t.Helper()
	key, _, err := ca.NewKey("other")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestRenewFollowsTheRole(t *testing.T) {
	d := newFakeManager(t)
	_, csr, err := ca.NewKey("nnode2")
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{api.RoleWorker, api.RoleManager} {
		if role == api.RoleManager {
			if _, err := d.UpdateNode(d.ctx, "node2", api.NodeUpdate{Role: api.RoleManager}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := d.Renew(d.ctx, "nnode2", api.RenewRequest{CSR: csr})
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(resp.Cert)
		if peer, err := ca.PeerOf(cert); err != nil || peer.Role != role || resp.Role != role {
			t.Errorf("renewal for a %s: certificate %+v (%v), answer %s", role, peer, err, resp.Role)
		}
	}
	if _, err := d.Renew(d.ctx, "gone", api.RenewRequest{CSR: csr}); err == nil || !strings.Contains(err.Error(), "not part of this swarm") {
		t.Errorf("renewal for a removed node: %v", err)
	}
}

func TestRotations(t *testing.T) {
	d := newFakeManager(t)
	before := d.store.Snapshot()
	if _, err := d.RotateCA(d.ctx); err != nil {
		t.Fatal(err)
	}
	st := d.store.Snapshot()
	if len(st.CACerts) != 3 || st.WorkerToken == before.WorkerToken || st.Trust() == before.Trust() {
		t.Fatalf("after ca rotate: %d roots, tokens changed %v", len(st.CACerts), st.WorkerToken != before.WorkerToken)
	}
	root, _ := st.Root()
	if digest, _, _ := api.ParseJoinToken(st.WorkerToken); digest != root.Digest() {
		t.Error("the worker token does not name the new root")
	}
	// Nodes renew; once all Ready ones hold the new trust, the old root goes.
	advance := func() {
		t.Helper()
		if _, err := d.store.Update(func(s *State) error { advanceTrust(s); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	advance()
	if got := len(d.store.Snapshot().CACerts); got != 3 {
		t.Fatalf("old root dropped before the nodes renewed: %d roots", got)
	}
	holdAll := func() {
		t.Helper()
		_, err := d.store.Update(func(s *State) error {
			for id := range s.Nodes {
				s.Trusted[id] = s.Trust()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	holdAll()
	advance()
	if got := len(d.store.Snapshot().CACerts); got != 1 {
		t.Fatalf("old root kept after every node renewed: %d roots", got)
	}
	// Gossip key: added as secondary, then primary, then the old one goes.
	oldKey := d.store.Snapshot().GossipKeys[0]
	if err := d.RotateGossipKey(d.ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.RotateGossipKey(d.ctx); err == nil {
		t.Error("a second rotation started during the first")
	}
	var steps []string
	for range 3 {
		holdAll()
		advance()
		st := d.store.Snapshot()
		steps = append(steps, fmt.Sprintf("%d keys, old primary %v", len(st.GossipKeys), bytes.Equal(st.GossipKeys[0], oldKey)))
	}
	want := []string{"2 keys, old primary false", "1 keys, old primary false", "1 keys, old primary false"}
	if strings.Join(steps, "; ") != strings.Join(want, "; ") {
		t.Errorf("gossip key rotation steps: %v, want %v", steps, want)
	}
	// A join token rotation keeps the root.
	jt, err := d.RotateJoinToken(d.ctx, api.RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	if digest, _, _ := api.ParseJoinToken(jt.Token); digest != ca.Digest(d.store.Snapshot().CACerts[0]) {
		t.Error("the rotated token names another root")
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
	for _, tk := range current(d.store.Snapshot()) {
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
			s.Trusted[n.ID] = "trust"
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
	delete(s.Trusted, "w4")
	if err := checkRoleChange(s, s.Nodes["w4"], api.RoleManager, all); err == nil || !strings.Contains(err.Error(), "leave and join again") {
		t.Errorf("promote a node without a secret: %v", err)
	}
}

func TestJoinTokens(t *testing.T) {
	d := newFakeManager(t)
	st := d.store.Snapshot()
	w, err := d.JoinToken(api.RoleWorker)
	if err != nil || w.Token != st.WorkerToken || w.ManagerAddr != "192.168.33.10:2377" {
		t.Fatalf("worker token: %+v, %v", w, err)
	}
	if _, err := d.JoinToken("boss"); err == nil {
		t.Error("a token for an unknown role")
	}
	rotated, err := d.RotateJoinToken(d.ctx, api.RoleWorker)
	if err != nil || rotated.Token == w.Token || api.CheckToken(rotated.Token) != nil {
		t.Fatalf("rotate: %+v, %v", rotated, err)
	}
	st = d.store.Snapshot()
	if roleOfToken(&st, w.Token) != "" || roleOfToken(&st, rotated.Token) != api.RoleWorker || roleOfToken(&st, st.ManagerToken) != api.RoleManager {
		t.Error("the tokens' roles do not follow the rotation")
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
			s.Trusted[id] = "trust"
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

// TestNextDue: the next sync with work no event announces is the earliest
// of a down node's reschedule time (if it has tasks) and a slot's restart
// delay end; nothing due is zero.
func TestNextDue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	st := State{}
	st.init()
	if got := nextDue(st, now, 5*time.Second); !got.IsZero() {
		t.Fatalf("empty state: %v, want zero", got)
	}
	st.Nodes["n1"] = api.Node{ID: "n1", Status: api.StatusDown, UpdatedAt: now.Add(-2 * time.Second)}
	st.Nodes["n2"] = api.Node{ID: "n2", Status: api.StatusDown, UpdatedAt: now.Add(-4 * time.Second)} // no tasks
	st.Services["s"] = api.Service{ID: "s", Replicas: 2, RestartPolicy: api.RestartPolicy{Delay: 5 * time.Second}}
	st.Tasks["a"] = api.Task{ID: "a", ServiceID: "s", Slot: 1, NodeID: "n1", DesiredState: api.TaskRunning}
	if got, want := nextDue(st, now, 5*time.Second), now.Add(3*time.Second); !got.Equal(want) {
		t.Errorf("down node with a task: %v, want %v", got, want)
	}
	st.Tasks["b"] = api.Task{ID: "b", ServiceID: "s", Slot: 2, DesiredState: api.TaskShutdown, EndedAt: now.Add(-4 * time.Second)}
	if got, want := nextDue(st, now, 5*time.Second), now.Add(time.Second); !got.Equal(want) {
		t.Errorf("a restart due sooner: %v, want %v", got, want)
	}
}

// TestQuietSync: after a sync that changed nothing, the next ones are
// skipped while their inputs stay, nothing is due and quietFor has not
// passed; any input moving ends it.
func TestQuietSync(t *testing.T) {
	d := newFakeManager(t)
	db := d.cfg.DB.(*records.FakeDB)
	now := time.Now().UTC()
	d.syncNodes(now)
	d.syncNodes(now) // nothing left to change: quiet
	q := d.quiet
	if q.at.IsZero() || !q.until.After(now) {
		t.Fatalf("no quiet sync recorded: %+v", q)
	}
	alive := aliveOf(q.inputs)
	for _, tt := range []struct {
		what   string
		change func(alive map[string]bool)
		at     time.Time
	}{
		{"quietFor passed", func(map[string]bool) {}, now.Add(quietFor)},
		{"the clock went back", func(map[string]bool) {}, now.Add(-time.Second)},
		{"a write", func(map[string]bool) {
			if _, err := d.store.Update(func(s *State) error { s.Trusted["nnode2"] += "x"; return nil }); err != nil {
				t.Fatal(err)
			}
		}, now.Add(time.Second)},
		{"a task report", func(map[string]bool) {
			if err := db.PutAs("nnode2", records.TableTaskStatus, "", "t1", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}, now.Add(time.Second)},
		{"a programmed report", func(map[string]bool) {
			if err := db.PutAs("nnode2", records.TableProgrammed, "", "s1", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}, now.Add(time.Second)},
		{"a member went", func(alive map[string]bool) { delete(alive, "nnode1") }, now.Add(time.Second)},
	} {
		cur := d.inputsOf(alive)
		d.quietUntil(cur, now)
		if !d.stillQuiet(cur, now.Add(time.Second)) {
			t.Fatalf("%s: not quiet a second after a quiet sync", tt.what)
		}
		changed := maps.Clone(alive)
		tt.change(changed)
		if d.stillQuiet(d.inputsOf(changed), tt.at) {
			t.Errorf("%s: still quiet", tt.what)
		}
	}
}

// TestQuietSyncWakesForTheKeyRotation: a quiet sync ends when the next
// gossip key rotation is due, not up to quietFor later.
func TestQuietSyncWakesForTheKeyRotation(t *testing.T) {
	d := newFakeManager(t)
	now := time.Now().UTC()
	if _, err := d.store.Update(func(s *State) error {
		s.GossipRotation, s.GossipRotatedAt = 0, now.Add(-time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d.cfg.GossipKeyRotation = 3 * time.Second
	d.quietUntil(syncInputs{}, now)
	if want := now.Add(2 * time.Second); !d.quiet.until.Equal(want) {
		t.Errorf("quiet until %s, want the rotation's due time %s", d.quiet.until, want)
	}
}

// aliveOf turns syncInputs.alive back into the map it was made from.
func aliveOf(in syncInputs) map[string]bool {
	alive := map[string]bool{}
	for _, id := range strings.Split(in.alive, ",") {
		alive[id] = true
	}
	return alive
}
