package agent

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

// exitTask ends the fake process of a task with the state its end
// reports, as task.Run does when the process exits.
func (f *fakeNode) exitTask(id string, s task.State) {
	f.t.Helper()
	if err := f.runner.Exit(id, s); err != nil {
		f.t.Fatal(err)
	}
}

// shutDown publishes the manager's objects with the task's desired
// state shutdown, as the leader does once it saw the task end.
func (f *fakeNode) shutDown(id string) {
	o := f.mgr.Objects()
	tk := o.Tasks[id]
	tk.DesiredState = api.TaskShutdown
	o.Tasks[id] = tk
	f.publishObjects(o)
}

// TestExitedTaskIsNotRestarted: a task whose process exits is reported
// complete or failed with its reason, its backends leave every balancer,
// and it is not started again; once the manager shuts it down it is
// removed at once, without the drain delay (an hour here).
func TestExitedTaskIsNotRestarted(t *testing.T) {
	for _, end := range []task.State{
		{State: api.TaskFailed, Err: "task: non-zero exit (3)"},
		{State: api.TaskComplete},
	} {
		t.Run(end.State, func(t *testing.T) {
			f := newServingNode(t, 2)
			var local api.Task
			for _, tk := range f.localTasks() {
				local = tk
			}
			f.exitTask(local.ID, end)
			testutil.Eventually(t, 5*time.Second, "the end reported", func() error {
				got := records.TaskStatuses(f.db)[local.ID]
				if got.State != end.State || got.Err != end.Err {
					return fmt.Errorf("status %s %q, want %s %q", got.State, got.Err, end.State, end.Err)
				}
				return nil
			})
			for range 3 {
				f.agent.Reconcile(f.ctx)
			}
			if got := f.endpointsOf(local.ID); len(got) != 0 {
				t.Errorf("endpoints of the ended task: %v, want none", got)
			}
			if got := f.weights(local); len(got) != 0 {
				t.Errorf("the ended task is still a backend: %v", got)
			}
			if n := f.runner.Starts(local.ID); n != 1 || slices.Contains(f.runner.Running(), local.ID) {
				t.Errorf("started %d times, running %v; want once, not running", n, f.runner.Running())
			}

			f.shutDown(local.ID)
			f.agent.Reconcile(f.ctx) // the drain clock has not moved
			if f.agent.tasks[local.ID] != nil {
				t.Errorf("the task shut down is still kept")
			}
			if _, ok := records.TaskStatuses(f.db)[local.ID]; ok {
				t.Errorf("the task shut down is still reported")
			}
			nss, _ := f.kernel.ListNS(filepath.Join(f.runDir, "netns"))
			if slices.Contains(nss, local.Hostname()) {
				t.Errorf("the task's sandbox %s is left: %v", local.Hostname(), nss)
			}
		})
	}
}

// TestTaskThatFailsToStartIsNotRetried: a task whose sandbox cannot be
// built is reported failed with the reason, and later reconciles do not
// start it: the manager decides what replaces it.
func TestTaskThatFailsToStartIsNotRetried(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	f.reconcile()
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "t", Args: []string{"true"}, Replicas: replicas(2)}); err != nil {
		t.Fatal(err)
	}
	local := f.tasks("t")["node1id"]
	f.kernel.FailNext("EnsureVeth", errors.New("no veth today"))
	f.reconcile()
	f.reconcile()
	got := records.TaskStatuses(f.db)[local.ID]
	if got.State != api.TaskFailed || !strings.Contains(got.Err, "no veth today") {
		t.Errorf("status %s %q, want failed with the reason", got.State, got.Err)
	}
	if n := f.runner.Starts(local.ID); n != 0 {
		t.Errorf("started %d times after its sandbox failed, want 0", n)
	}
	f.shutDown(local.ID)
	f.agent.Reconcile(f.ctx)
	if f.agent.tasks[local.ID] != nil {
		t.Errorf("the task shut down is still kept")
	}
}
