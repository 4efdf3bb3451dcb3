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
	if svcs := serviceView(st, statuses); svcs[0].Running != 1 {
		t.Errorf("running %d, want 1: history does not count", svcs[0].Running)
	}
	for ref, want := range map[string]string{"www.1": "c", "b": "b"} {
		if id, err := records.Resolve("task", st.Tasks, currentName, ref); id != want || err != nil {
			t.Errorf("task %s is %q (%v), want %s: a name is its slot's current task", ref, id, err, want)
		}
	}
}
