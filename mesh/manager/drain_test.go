package manager

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// TestDrainMovesTasks: draining a node moves its tasks to the other Ready,
// Active nodes in the write that drains it (or in the leader's next sync
// if that write raced), keeping the replica count and leaving the other
// tasks, their addresses and the service's VIPs as they were. Pause moves
// nothing, making a node active again brings nothing back (Swarm does not
// rebalance), and slots no node can take wait until one can.
func TestDrainMovesTasks(t *testing.T) {
	type step func(t *testing.T, d *fakeManager)
	update := func(node, avail string) step {
		return func(t *testing.T, d *fakeManager) {
			t.Helper()
			if _, err := d.UpdateNode(d.ctx, node, api.NodeUpdate{Availability: avail}); err != nil {
				t.Fatalf("update %s to %s: %v", node, avail, err)
			}
		}
	}
	// raced drains node2 by a write that moves nothing, as a write racing
	// a placement would leave it, then lets the leader's sync run.
	raced := func(t *testing.T, d *fakeManager) {
		t.Helper()
		if _, err := d.store.Update(func(st *State) error {
			n := st.Nodes["nnode2"]
			n.Availability = api.AvailabilityDrain
			st.Nodes["nnode2"] = n
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		d.syncNodes(time.Now().UTC())
	}
	tests := []struct {
		name   string
		steps  []step
		wantOn map[string]int // hostname → tasks of the service
		// moved are the nodes whose tasks (before the steps) may be gone;
		// every other task must be there unchanged.
		moved []string
	}{
		{name: "drain", steps: []step{update("node2", "drain")},
			wantOn: map[string]int{"node1": 2, "node3": 1}, moved: []string{"nnode2"}},
		{name: "drain, any case", steps: []step{update("node2", "DRAIN")},
			wantOn: map[string]int{"node1": 2, "node3": 1}, moved: []string{"nnode2"}},
		{name: "pause keeps the tasks", steps: []step{update("node2", "pause")},
			wantOn: map[string]int{"node1": 1, "node2": 1, "node3": 1}},
		{name: "active again brings nothing back", steps: []step{update("node2", "drain"), update("node2", "active")},
			wantOn: map[string]int{"node1": 2, "node3": 1}, moved: []string{"nnode2"}},
		{name: "drained by a racing write, moved by the sync", steps: []step{raced},
			wantOn: map[string]int{"node1": 2, "node3": 1}, moved: []string{"nnode2"}},
		{name: "no node left: pending, not refused",
			steps:  []step{update("node3", "pause"), update("node1", "drain"), update("node2", "drain")},
			wantOn: map[string]int{"node3": 1}, moved: []string{"nnode1", "nnode2"}},
		{name: "pending slots placed when a node can take them",
			steps:  []step{update("node1", "drain"), update("node2", "drain"), update("node3", "drain"), update("node2", "active")},
			wantOn: map[string]int{"node2": 3}, moved: []string{"nnode1", "nnode2", "nnode3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeManager(t)
			if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
				t.Fatal(err)
			}
			svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(3),
				Networks: []api.NetworkAttachment{{Target: "ovnet"}},
				Ports:    []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}})
			if err != nil {
				t.Fatal(err)
			}
			before := d.store.Snapshot()
			for _, s := range tt.steps {
				s(t, d)
			}
			after := d.store.Snapshot()

			on := map[string]int{}
			for _, tk := range current(after) {
				on[after.Nodes[tk.NodeID].Hostname]++
			}
			if diff := cmp.Diff(tt.wantOn, on); diff != "" {
				t.Errorf("tasks per node (-want +got):\n%s", diff)
			}
			for id, tk := range before.Tasks {
				if slices.Contains(tt.moved, tk.NodeID) {
					continue
				}
				if diff := cmp.Diff(tk, after.Tasks[id]); diff != "" {
					t.Errorf("task %s on %s, kept in place, changed (-before +after):\n%s", tk.Name(), tk.NodeID, diff)
				}
			}
			if diff := cmp.Diff(svc.Endpoint.VirtualIPs, after.Services[svc.ID].Endpoint.VirtualIPs); diff != "" {
				t.Errorf("VIPs (-before +after):\n%s", diff)
			}
			if after.Services[svc.ID].Replicas != 3 {
				t.Errorf("replicas %d, want 3", after.Services[svc.ID].Replicas)
			}
		})
	}
}
