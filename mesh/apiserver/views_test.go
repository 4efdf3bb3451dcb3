package apiserver

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// TestTaskViewKeepsHistory: a task shut down shows the status the
// manager stored, whatever its node still reports; a current one shows
// its node's report; a slot lists its current task first, then its
// history newest first; only current tasks count as running.
func TestTaskViewKeepsHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	failed := api.TaskStatus{State: api.TaskFailed, Err: "task: non-zero exit (1)", Timestamp: t0}
	st := records.Objects{
		Services: map[string]api.Service{"s1": {ID: "s1", Name: "www", Replicas: 1}},
		Tasks: map[string]api.Task{
			"a": {ID: "a", ServiceID: "s1", ServiceName: "www", Slot: 1, DesiredState: api.TaskShutdown, Status: failed, CreatedAt: t0},
			"b": {ID: "b", ServiceID: "s1", ServiceName: "www", Slot: 1, DesiredState: api.TaskShutdown, Status: failed, Restarts: 1, CreatedAt: t0.Add(time.Second)},
			"c": {ID: "c", ServiceID: "s1", ServiceName: "www", Slot: 1, DesiredState: api.TaskRunning, Restarts: 2, CreatedAt: t0.Add(2 * time.Second)},
		},
	}
	statuses := map[string]api.TaskStatus{
		"a": {State: api.TaskRunning}, // a stale report: the stored status wins
		"c": {State: api.TaskRunning, Timestamp: t0},
	}
	var got []string
	for _, tk := range taskView(st, statuses) {
		got = append(got, tk.ID+" "+tk.DesiredState+" "+tk.Status.State)
	}
	want := []string{"c running running", "b shutdown failed", "a shutdown failed"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	if svcs := serviceView(st, statuses, nil, nil); svcs[0].Running != 1 {
		t.Errorf("running %d, want 1: history does not count", svcs[0].Running)
	}
	for ref, want := range map[string]string{"www.1": "c", "b": "b"} {
		if id, err := records.Resolve("task", st.Tasks, currentName, ref); id != want || err != nil {
			t.Errorf("task %s is %q (%v), want %s: a name is its slot's current task", ref, id, err, want)
		}
	}
}

// TestServiceReachable: a running task counts as reachable once every
// ready node that sends to it reports it programmed: every node for a
// published port, the nodes with tasks on its network for a VIP.
func TestServiceReachable(t *testing.T) {
	running := api.TaskStatus{State: api.TaskRunning}
	task := func(id, svc, node, netID string) api.Task {
		return api.Task{ID: id, ServiceID: svc, Slot: 1, NodeID: node, DesiredState: api.TaskRunning,
			Networks: []api.TaskNetwork{{NetworkID: netID, NetworkName: "ovnet"}}}
	}
	st := records.Objects{
		Services: map[string]api.Service{
			"pub": {ID: "pub", Name: "pub", Replicas: 1, Endpoint: api.Endpoint{Ports: []api.PortConfig{{PublishedPort: 80, PublishMode: api.PublishIngress}}}},
			"vip": {ID: "vip", Name: "vip", Replicas: 2, Networks: []api.NetworkAttachment{{Target: "ov"}}},
		},
		Tasks: map[string]api.Task{
			"p1": task("p1", "pub", "n1", "ingress"),
			"v1": task("v1", "vip", "n1", "ov"),
			"v2": task("v2", "vip", "n2", "ov"),
		},
	}
	statuses := map[string]api.TaskStatus{"p1": running, "v1": running, "v2": running}
	ready := map[string]bool{"n1": true, "n2": true, "n3": true}
	for _, tc := range []struct {
		name       string
		programmed map[string]map[string][]string
		pub, vip   int
	}{
		{"nothing reported", nil, 0, 0},
		{"all but n3", map[string]map[string][]string{
			"pub": {"n1": {"p1"}, "n2": {"p1"}},
			"vip": {"n1": {"v1", "v2"}, "n2": {"v1"}},
		}, 0, 1},
		{"everywhere needed", map[string]map[string][]string{
			"pub": {"n1": {"p1"}, "n2": {"p1"}, "n3": {"p1"}},
			"vip": {"n1": {"v1", "v2"}, "n2": {"v1", "v2"}}, // n3 runs nothing on ov
		}, 1, 2},
	} {
		got := map[string]int{}
		for _, s := range serviceView(st, statuses, tc.programmed, ready) {
			got[s.Name] = s.Reachable
		}
		if got["pub"] != tc.pub || got["vip"] != tc.vip {
			t.Errorf("%s: reachable pub %d vip %d, want %d and %d", tc.name, got["pub"], got["vip"], tc.pub, tc.vip)
		}
	}
}

// TestTaskViewGroupsGlobalTasksByNode: a global service's tasks (slot 0)
// are listed node by node, each node's current task before its history,
// and www.NODEID finds the node's current task.
func TestTaskViewGroupsGlobalTasksByNode(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := records.Objects{
		Nodes:    map[string]api.Node{"n1": {ID: "n1", Hostname: "node1"}, "n2": {ID: "n2", Hostname: "node2"}},
		Services: map[string]api.Service{"s1": {ID: "s1", Name: "g", Mode: api.ModeGlobal, Replicas: 2}},
		Tasks: map[string]api.Task{
			"a": {ID: "a", ServiceID: "s1", ServiceName: "g", NodeID: "n2", DesiredState: api.TaskShutdown, CreatedAt: t0},
			"b": {ID: "b", ServiceID: "s1", ServiceName: "g", NodeID: "n1", DesiredState: api.TaskRunning, CreatedAt: t0.Add(time.Second)},
			"c": {ID: "c", ServiceID: "s1", ServiceName: "g", NodeID: "n2", DesiredState: api.TaskRunning, Restarts: 1, CreatedAt: t0.Add(2 * time.Second)},
		},
	}
	var got []string
	for _, tk := range taskView(st, nil) {
		got = append(got, tk.Name()+" "+tk.ID+" "+tk.DesiredState)
	}
	want := []string{"g.n1 b running", "g.n2 c running", "g.n2 a shutdown"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	if id, err := records.Resolve("task", st.Tasks, currentName, "g.n2"); id != "c" || err != nil {
		t.Errorf("task g.n2 is %q (%v), want c", id, err)
	}
}
