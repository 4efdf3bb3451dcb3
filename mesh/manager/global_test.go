package manager

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// step changes the fake cluster between a service's creation and the
// check of where its tasks are.
type step func(t *testing.T, d *fakeManager)

func updateNode(node string, u api.NodeUpdate) step {
	return func(t *testing.T, d *fakeManager) {
		t.Helper()
		if _, err := d.UpdateNode(d.ctx, node, u); err != nil {
			t.Fatalf("update %s with %+v: %v", node, u, err)
		}
	}
}

func labelAdd(node, k, v string) step {
	return updateNode(node, api.NodeUpdate{LabelAdd: map[string]string{k: v}})
}

// setNode changes a node's record as gossip or a join would, then runs
// the leader's placements at now (no liveness from gossip: the fake's
// members would override the record).
func setNode(id string, now time.Time, change func(n *api.Node)) step {
	return func(t *testing.T, d *fakeManager) {
		t.Helper()
		if _, err := d.store.Update(func(st *State) error {
			n := st.Nodes[id]
			change(&n)
			st.Nodes[id] = n
			if err := rescheduleDown(st, now, 10*time.Second); err != nil {
				return err
			}
			return fillPending(st, now)
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// placed is where a service's current tasks are: hostname → count.
func placed(d *fakeManager, svcID string) map[string]int {
	st := d.store.Snapshot()
	out := map[string]int{}
	for _, tk := range current(st) {
		if tk.ServiceID == svcID {
			out[st.Nodes[tk.NodeID].Hostname]++
		}
	}
	return out
}

// TestGlobalServices: one task on every Ready, Active node that satisfies
// the constraints; a node that becomes eligible gets one, one that is
// drained, removed or stops satisfying them loses it, nothing moves, and
// Replicas follows.
func TestGlobalServices(t *testing.T) {
	now := time.Now().UTC()
	all := map[string]int{"node1": 1, "node2": 1, "node3": 1}
	tests := []struct {
		name        string
		constraints []string
		steps       []step
		want        map[string]int
	}{
		{name: "one per node", want: all},
		{name: "drain stops it there, nothing moves", steps: []step{updateNode("node2", api.NodeUpdate{Availability: "drain"})},
			want: map[string]int{"node1": 1, "node3": 1}},
		{name: "active again gets it back", steps: []step{updateNode("node2", api.NodeUpdate{Availability: "drain"}),
			updateNode("node2", api.NodeUpdate{Availability: "active"})}, want: all},
		{name: "pause keeps it", steps: []step{updateNode("node2", api.NodeUpdate{Availability: "pause"})}, want: all},
		{name: "a node that joins gets one", steps: []step{setNode("nnode4", now, func(n *api.Node) {
			*n = api.Node{ID: "nnode4", Hostname: "node4", Role: api.RoleWorker, Status: api.StatusReady, Availability: api.AvailabilityActive}
		})}, want: map[string]int{"node1": 1, "node2": 1, "node3": 1, "node4": 1}},
		{name: "down keeps it until the reschedule delay",
			steps: []step{setNode("nnode3", now, func(n *api.Node) { n.Status, n.UpdatedAt = api.StatusDown, now })}, want: all},
		{name: "down for long loses it",
			steps: []step{setNode("nnode3", now.Add(time.Minute), func(n *api.Node) { n.Status, n.UpdatedAt = api.StatusDown, now })},
			want:  map[string]int{"node1": 1, "node2": 1}},
		{name: "down, then ready again, gets it back", steps: []step{
			setNode("nnode3", now.Add(time.Minute), func(n *api.Node) { n.Status, n.UpdatedAt = api.StatusDown, now }),
			setNode("nnode3", now.Add(2*time.Minute), func(n *api.Node) { n.Status = api.StatusReady })}, want: all},
		{name: "hostname constraint", constraints: []string{"node.hostname==node2"}, want: map[string]int{"node2": 1}},
		{name: "label added makes a node eligible", constraints: []string{"node.labels.zone==a"},
			steps: []step{labelAdd("node3", "zone", "a")}, want: map[string]int{"node3": 1}},
		{name: "label changed stops it", constraints: []string{"node.labels.zone!=b"},
			steps: []step{labelAdd("node3", "zone", "b")}, want: map[string]int{"node1": 1, "node2": 1}},
		{name: "role constraint", constraints: []string{"node.role==worker"}, want: map[string]int{"node2": 1, "node3": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeManager(t)
			svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "g", Image: "whoami", Mode: api.ModeGlobal, Constraints: tt.constraints})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.steps {
				s(t, d)
			}
			got := placed(d, svc.ID)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tasks per node (-want +got):\n%s", diff)
			}
			st := d.store.Snapshot()
			n := 0
			for _, c := range got {
				n += c
			}
			if r := st.Services[svc.ID].Replicas; r != n {
				t.Errorf("replicas = %d, want %d (the tasks expected)", r, n)
			}
			for _, tk := range current(st) {
				if tk.ServiceID == svc.ID && (tk.Slot != 0 || tk.Name() != "g."+tk.NodeID) {
					t.Errorf("global task slot %d named %s, want slot 0 named g.%s", tk.Slot, tk.Name(), tk.NodeID)
				}
			}
		})
	}
}

// TestConstraintsPlaceReplicatedTasks: the spread scheduler takes only
// the nodes satisfying every constraint; slots none can take wait
// (creation succeeds, as Swarm's), and a label change places or moves
// tasks.
func TestConstraintsPlaceReplicatedTasks(t *testing.T) {
	tests := []struct {
		name        string
		constraints []string
		steps       []step
		want        map[string]int
	}{
		{name: "hostname", constraints: []string{"node.hostname==node2"}, want: map[string]int{"node2": 3}},
		{name: "hostname, any case and spaces", constraints: []string{" node.Hostname == NODE2 "}, want: map[string]int{"node2": 3}},
		{name: "not hostname", constraints: []string{"node.hostname!=node2"}, want: map[string]int{"node1": 2, "node3": 1}},
		{name: "role manager", constraints: []string{"node.role==manager"}, want: map[string]int{"node1": 3}},
		{name: "id", constraints: []string{"node.id==nnode3"}, want: map[string]int{"node3": 3}},
		{name: "all of them", constraints: []string{"node.role==worker", "node.hostname!=node3"}, want: map[string]int{"node2": 3}},
		{name: "none fits: pending", constraints: []string{"node.labels.zone==a"}, want: map[string]int{}},
		{name: "pending placed once a label fits", constraints: []string{"node.labels.zone==a"},
			steps: []step{labelAdd("node1", "zone", "a")}, want: map[string]int{"node1": 3}},
		{name: "label change moves tasks", constraints: []string{"node.labels.zone!=b"},
			steps: []step{labelAdd("node1", "zone", "b")}, want: map[string]int{"node2": 2, "node3": 1}},
		{name: "label removed moves tasks", constraints: []string{"node.labels.zone==a"},
			steps: []step{labelAdd("node1", "zone", "a"), labelAdd("node2", "zone", "a"),
				updateNode("node1", api.NodeUpdate{LabelRm: []string{"zone"}})}, want: map[string]int{"node2": 3}},
		{name: "a role change moves tasks", constraints: []string{"node.role==worker"},
			steps: []step{updateNode("node2", api.NodeUpdate{Role: api.RoleManager})}, want: map[string]int{"node3": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeManager(t)
			svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(3), Constraints: tt.constraints})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.steps {
				s(t, d)
			}
			if diff := cmp.Diff(tt.want, placed(d, svc.ID)); diff != "" {
				t.Errorf("tasks per node (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBadModesConstraintsAndLabelsChangeNothing: refusals are one line,
// in Docker's words where Docker has them, and keep nothing.
func TestBadModesConstraintsAndLabelsChangeNothing(t *testing.T) {
	d := newFakeManager(t)
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "g", Image: "whoami", Mode: api.ModeGlobal}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateNode(d.ctx, "node2", api.NodeUpdate{LabelAdd: map[string]string{"zone": "a"}}); err != nil {
		t.Fatal(err)
	}
	create := func(req api.ServiceCreate) func() error {
		return func() error {
			req.Image = "whoami"
			if req.Name == "" {
				req.Name = "s"
			}
			_, err := d.CreateService(d.ctx, req)
			return err
		}
	}
	update := func(u api.NodeUpdate) func() error {
		return func() error { _, err := d.UpdateNode(d.ctx, "node2", u); return err }
	}
	many := map[string]string{}
	for i := range api.MaxLabels {
		many["k"+strings.Repeat("x", i)] = "v"
	}
	tests := []struct {
		name    string
		do      func() error
		wantErr string
	}{
		{"replicas with global", create(api.ServiceCreate{Mode: api.ModeGlobal, Replicas: replicas(2)}), "replicas can only be used with replicated mode"},
		{"unknown mode", create(api.ServiceCreate{Mode: "spread"}), `invalid mode "spread": want replicated or global`},
		{"scale global", func() error { _, err := d.ScaleService(d.ctx, "g", 2); return err }, "g: scale can only be used with replicated mode"},
		{"no operator", create(api.ServiceCreate{Constraints: []string{"node.hostname"}}), "constraint expected one operator from ==, !="},
		{"one bad of two", create(api.ServiceCreate{Constraints: []string{"node.role==worker", "node.role>worker"}}), "constraint expected one operator from ==, !="},
		{"bad key", create(api.ServiceCreate{Constraints: []string{"1node==x"}}), "key '1node' is invalid"},
		{"empty value", create(api.ServiceCreate{Constraints: []string{"node.hostname=="}}), "value '\"\"' is invalid"},
		{"bad value", create(api.ServiceCreate{Constraints: []string{"node.hostname==a<b"}}), "value 'a<b' is invalid"},
		{"unsupported key", create(api.ServiceCreate{Constraints: []string{"engine.labels.a==b"}}), "constraint key 'engine.labels.a' is not supported"},
		{"label prefix alone", create(api.ServiceCreate{Constraints: []string{"node.labels.==b"}}), "is not supported"},
		{"too many constraints", create(api.ServiceCreate{Constraints: make([]string, api.MaxConstraints+1)}), "too many constraints"},
		{"remove a missing label", update(api.NodeUpdate{LabelRm: []string{"nope"}}), `key "nope" doesn't exist in node's labels`},
		{"empty label key", update(api.NodeUpdate{LabelAdd: map[string]string{"": "v"}}), "invalid label"},
		{"label too long", update(api.NodeUpdate{LabelAdd: map[string]string{"k": strings.Repeat("v", api.MaxLabelLen+1)}}), "invalid label value"},
		{"too many labels", update(api.NodeUpdate{LabelAdd: many}), "too many labels: 65, at most 64"},
		{"labels with a bad availability", update(api.NodeUpdate{LabelAdd: map[string]string{"x": "y"}, Availability: "gone"}), "invalid availability"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			err := tt.do()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("err %q is more than one line", err)
			}
			if !sameJSON(before, d.store.Snapshot()) {
				t.Errorf("a refused request changed the state")
			}
		})
	}
}

// TestNodeLabels: labels are added, replaced and removed in one update
// (added first, as docker does), and shown on the node.
func TestNodeLabels(t *testing.T) {
	d := newFakeManager(t)
	steps := []struct {
		u    api.NodeUpdate
		want map[string]string
	}{
		{api.NodeUpdate{LabelAdd: map[string]string{"zone": "a", "disk": "ssd"}}, map[string]string{"zone": "a", "disk": "ssd"}},
		{api.NodeUpdate{LabelAdd: map[string]string{"zone": "b"}, LabelRm: []string{"disk"}}, map[string]string{"zone": "b"}},
		{api.NodeUpdate{LabelAdd: map[string]string{"tmp": "1"}, LabelRm: []string{"tmp", "zone"}}, nil},
	}
	for i, s := range steps {
		n, err := d.UpdateNode(d.ctx, "node2", s.u)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !maps.Equal(n.Labels, s.want) {
			t.Errorf("step %d: labels %v, want %v", i, n.Labels, s.want)
		}
	}
}

// TestNextDueGlobal: a global task's slot is its node's, so another
// node's current task does not hide an ended one's restart delay.
func TestNextDueGlobal(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	st := State{}
	st.init()
	st.Services["g"] = api.Service{ID: "g", Mode: api.ModeGlobal, Replicas: 2, RestartPolicy: api.RestartPolicy{Delay: 5 * time.Second}}
	st.Tasks["a"] = api.Task{ID: "a", ServiceID: "g", NodeID: "n3", DesiredState: api.TaskRunning}
	st.Tasks["b"] = api.Task{ID: "b", ServiceID: "g", NodeID: "n4", DesiredState: api.TaskShutdown, EndedAt: now.Add(-4 * time.Second)}
	if got, want := nextDue(st, now, 5*time.Second), now.Add(time.Second); !got.Equal(want) {
		t.Errorf("n4's restart: %v, want %v", got, want)
	}
	st.Tasks["c"] = api.Task{ID: "c", ServiceID: "g", NodeID: "n4", DesiredState: api.TaskRunning, Restarts: 1}
	if got := nextDue(st, now, 5*time.Second); !got.IsZero() {
		t.Errorf("restarted already: %v, want zero", got)
	}
}

// TestGlobalTaskRestartsOnItsNode: a global task that fails is replaced
// on its node as the restart policy says, counting that node's restarts;
// the other nodes' tasks stay as they were.
func TestGlobalTaskRestartsOnItsNode(t *testing.T) {
	d := newFakeManager(t)
	svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "g", Image: "whoami", Mode: api.ModeGlobal,
		RestartPolicy: &api.RestartPolicy{Condition: api.RestartOnFailure, Delay: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	before := current(d.store.Snapshot())
	var failedID string
	for id, tk := range before {
		if tk.NodeID == "nnode2" {
			failedID = id
		}
	}
	now := time.Now().UTC()
	place := func(at time.Time, statuses map[string]api.TaskStatus) {
		t.Helper()
		if _, err := d.store.Update(func(st *State) error {
			if err := reapTasks(st, statuses, at); err != nil {
				return err
			}
			return fillPending(st, at)
		}); err != nil {
			t.Fatal(err)
		}
	}
	place(now, map[string]api.TaskStatus{failedID: {State: api.TaskFailed, Err: "exit 1", Timestamp: now}})
	if got := placed(d, svc.ID); !maps.Equal(got, map[string]int{"node1": 1, "node3": 1}) {
		t.Fatalf("before the delay: %v, want node2's task waiting", got)
	}
	place(now.Add(time.Second), nil)
	after := current(d.store.Snapshot())
	for id, tk := range before {
		if id != failedID && after[id].ID != id {
			t.Errorf("%s's task %s replaced", tk.NodeID, id)
		}
	}
	var restarted []api.Task
	for _, tk := range after {
		if tk.NodeID == "nnode2" {
			restarted = append(restarted, tk)
		}
	}
	if len(restarted) != 1 || restarted[0].ID == failedID || restarted[0].Restarts != 1 || restarted[0].Name() != "g.nnode2" {
		t.Errorf("node2's tasks after the delay: %+v, want one new g.nnode2 with 1 restart", restarted)
	}
}
