package manager

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

// newUpdateState is the state of a fake manager's cluster (three Ready
// nodes) with www: 3 replicas of nginx:1.14-alpine publishing 8888:80,
// with the update config cfg (nil: Docker's default).
func newUpdateState(t *testing.T, cfg *api.UpdateConfig) (State, string) {
	t.Helper()
	d := newFakeManager(t)
	svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "nginx:1.14-alpine", Replicas: replicas(3),
		Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}, Env: []string{"FOO=bar"}, UpdateConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return d.store.Snapshot(), svc.ID
}

// serving are the reports of nodes that run every current task and have
// programmed all of them: each new task is reachable as soon as it is
// made. except leaves tasks out: not yet programmed by node3.
func serving(s *State, except ...string) nodeReports {
	r := nodeReports{statuses: map[string]api.TaskStatus{}, programmed: map[string]map[string][]string{}}
	for id, t := range s.Tasks {
		if !t.Current() {
			continue
		}
		r.statuses[id] = api.TaskStatus{State: api.TaskRunning}
		if r.programmed[t.ServiceID] == nil {
			r.programmed[t.ServiceID] = map[string][]string{}
		}
		for node := range s.Nodes {
			if node == "nnode3" && slices.Contains(except, id) {
				continue
			}
			r.programmed[t.ServiceID][node] = append(r.programmed[t.ServiceID][node], id)
		}
	}
	return r
}

// census counts a service's current tasks by image, and its history.
func census(s *State, svcID string) (byImage map[string]int, history int) {
	byImage = map[string]int{}
	for _, t := range s.Tasks {
		switch {
		case t.ServiceID != svcID:
		case t.Current():
			byImage[t.Image]++
		default:
			history++
		}
	}
	return byImage, history
}

func mustUpdate(t *testing.T, s *State, u api.ServiceUpdate, now time.Time) {
	t.Helper()
	if _, err := updateService(s, "www", u, now); err != nil {
		t.Fatal(err)
	}
}

// TestRollingUpdateBatches: an update replaces parallelism tasks per
// step, each batch once the one before is reachable; stop-first never has
// more than 3 tasks (the old one goes first), start-first never fewer
// than 3 serving; the old tasks stay as their slots' history.
func TestRollingUpdateBatches(t *testing.T) {
	tests := []struct {
		name        string
		parallelism uint64
		order       string
		steps       int // syncs until completed
	}{
		{"one at a time, stop-first", 1, api.OrderStopFirst, 4},
		{"two at a time, stop-first", 2, api.OrderStopFirst, 3},
		{"all at once", 0, api.OrderStopFirst, 2},
		{"one at a time, start-first", 1, api.OrderStartFirst, 4},
		{"two at a time, start-first", 2, api.OrderStartFirst, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, id := newUpdateState(t, &api.UpdateConfig{Parallelism: tt.parallelism, Order: tt.order, FailureAction: api.ActionPause})
			now := time.Now().UTC()
			mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.15")}, now)
			if got := st.Services[id].UpdateStatus; got == nil || got.State != api.UpdateUpdating || got.Message != "update in progress" {
				t.Fatalf("update status %+v, want updating", got)
			}
			if imgs, _ := census(&st, id); imgs["nginx:1.15"] != 0 {
				t.Fatalf("tasks replaced by the write itself: %v", imgs)
			}
			steps := 0
			for ; st.Services[id].UpdateStatus.Rolling(); steps++ {
				if steps > 10 {
					t.Fatal("the update never completes")
				}
				// The reports of the state before this step: the tasks
				// the step starts are not reachable yet.
				r := serving(&st)
				if err := advanceUpdates(&st, r, now); err != nil {
					t.Fatal(err)
				}
				imgs, _ := census(&st, id)
				total := imgs["nginx:1.15"] + imgs["nginx:1.14-alpine"]
				p := int(tt.parallelism)
				if p == 0 {
					p = 3
				}
				switch tt.order {
				case api.OrderStopFirst:
					if total != 3 {
						t.Errorf("step %d: %d current tasks, want 3 (the old one stops as the new one starts)", steps, total)
					}
				case api.OrderStartFirst:
					if old := imgs["nginx:1.14-alpine"]; old < 3-p*steps && old < 3 {
						t.Errorf("step %d: only %d old tasks left serving", steps, old)
					}
					if total > 3+p {
						t.Errorf("step %d: %d current tasks, want at most %d", steps, total, 3+p)
					}
				}
			}
			if steps != tt.steps {
				t.Errorf("completed after %d syncs, want %d", steps, tt.steps)
			}
			imgs, history := census(&st, id)
			if diff := cmp.Diff(map[string]int{"nginx:1.15": 3}, imgs); diff != "" {
				t.Errorf("current tasks by image (-want +got):\n%s", diff)
			}
			if history != 3 {
				t.Errorf("%d tasks kept as history, want the 3 old ones", history)
			}
			for _, tk := range st.Tasks {
				if !tk.Current() && (tk.Image != "nginx:1.14-alpine" || tk.Status.Message != "shutdown for update" || len(tk.Networks) != 0) {
					t.Errorf("history task %+v: want an old one shut down for the update, its addresses released", tk)
				}
				if tk.Current() && !slices.Equal(tk.Env, []string{"FOO=bar"}) {
					t.Errorf("new task env %q, want the service's", tk.Env)
				}
			}
			us := st.Services[id].UpdateStatus
			if us.State != api.UpdateCompleted || us.Message != "update completed" || us.CompletedAt.IsZero() {
				t.Errorf("update status %+v, want completed", us)
			}
			if _, ok := st.Rollouts[id]; ok {
				t.Errorf("rollout still kept after completion")
			}
		})
	}
}

// TestUpdateWaitsForEveryNode: a batch is done only when its new task
// runs and every node has programmed it; until then no other old task
// is shut down.
func TestUpdateWaitsForEveryNode(t *testing.T) {
	st, id := newUpdateState(t, nil)
	now := time.Now().UTC()
	mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.15")}, now)
	if err := advanceUpdates(&st, serving(&st), now); err != nil {
		t.Fatal(err)
	}
	batch := st.Rollouts[id].Batch
	if len(batch) != 1 {
		t.Fatalf("batch %v, want one new task", batch)
	}
	before, _ := census(&st, id)
	for name, r := range map[string]nodeReports{
		"not reported": {},
		"starting": func() nodeReports {
			r := serving(&st)
			r.statuses[batch[0]] = api.TaskStatus{State: api.TaskStarting}
			return r
		}(),
		"not programmed on one":   serving(&st, batch[0]),
		"programmed, not running": func() nodeReports { r := serving(&st); delete(r.statuses, batch[0]); return r }(),
	} {
		if err := advanceUpdates(&st, r, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := census(&st, id); !cmp.Equal(got, before) {
			t.Errorf("%s: tasks %v, want %v: the next batch started before the new task was reachable", name, got, before)
		}
	}
	if err := advanceUpdates(&st, serving(&st), now); err != nil {
		t.Fatal(err)
	}
	if got, _ := census(&st, id); got["nginx:1.15"] != 2 {
		t.Errorf("tasks %v once reachable, want the second batch started", got)
	}
}

// TestUpdateDelay: the next batch starts update-delay after the last is
// reachable, which the sync wakes for (nextDue).
func TestUpdateDelay(t *testing.T) {
	st, id := newUpdateState(t, &api.UpdateConfig{Parallelism: 1, Delay: 10 * time.Second, Order: api.OrderStopFirst, FailureAction: api.ActionPause})
	now := time.Now().UTC()
	mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.15")}, now)
	steps := []struct {
		at      time.Duration
		updated int
	}{
		{0, 1},                  // first batch at once
		{time.Second, 1},        // reachable: the delay starts
		{5 * time.Second, 1},    // within the delay
		{11 * time.Second, 2},   // delay over: second batch
		{12 * time.Second, 2},   // reachable: delay again
		{21 * time.Second, 2},   // 9 s later: still waiting
		{22*time.Second + 1, 3}, // third batch
		{23 * time.Second, 3},   // reachable
	}
	for _, s := range steps {
		if err := advanceUpdates(&st, serving(&st), now.Add(s.at)); err != nil {
			t.Fatal(err)
		}
		if got, _ := census(&st, id); got["nginx:1.15"] != s.updated {
			t.Errorf("at +%s: %d tasks updated, want %d", s.at, got["nginx:1.15"], s.updated)
		}
	}
}

// TestUpdateDelayIsDue: the sync wakes when an update's delay ends.
func TestUpdateDelayIsDue(t *testing.T) {
	st, id := newUpdateState(t, &api.UpdateConfig{Parallelism: 1, Delay: 10 * time.Second, Order: api.OrderStopFirst, FailureAction: api.ActionPause})
	now := time.Now().UTC()
	mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.15")}, now)
	for _, at := range []time.Duration{0, time.Second} {
		if err := advanceUpdates(&st, serving(&st), now.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := st.Rollouts[id].NextBatchAt, now.Add(11*time.Second); !got.Equal(want) {
		t.Fatalf("next batch at %s, want %s", got, want)
	}
	if got, want := nextDue(st, now.Add(2*time.Second), time.Hour), now.Add(11*time.Second); !got.Equal(want) {
		t.Errorf("nextDue %s, want the delay's end %s", got, want)
	}
}

// TestUpdateFailureAction: a new task that fails pauses the update (no
// other task is replaced), rolls it back, or is passed over, as the
// failure action says.
func TestUpdateFailureAction(t *testing.T) {
	tests := []struct {
		action    string
		state     string // the update's after the failure
		image     string // the service's then
		msgPrefix string
	}{
		{api.ActionPause, api.UpdatePaused, "nginx:1.15", "update paused due to failure or early termination of task "},
		// The failed task's slot is empty and the others run the old
		// spec: nothing is left to roll back.
		{api.ActionRollback, api.UpdateRollbackCompleted, "nginx:1.14-alpine", "rollback completed"},
		{api.ActionContinue, api.UpdateUpdating, "nginx:1.15", "update in progress"},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			st, id := newUpdateState(t, &api.UpdateConfig{Parallelism: 1, Order: api.OrderStopFirst, FailureAction: tt.action})
			now := time.Now().UTC()
			mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.15")}, now)
			if err := advanceUpdates(&st, serving(&st), now); err != nil {
				t.Fatal(err)
			}
			failed := st.Rollouts[id].Batch[0]
			r := serving(&st)
			r.statuses[failed] = api.TaskStatus{State: api.TaskFailed, Err: "exit 1"}
			// As the leader's sync: the ended task is reaped first.
			if err := reapTasks(&st, r.statuses, now); err != nil {
				t.Fatal(err)
			}
			if err := advanceUpdates(&st, r, now); err != nil {
				t.Fatal(err)
			}
			svc := st.Services[id]
			if svc.UpdateStatus.State != tt.state || !strings.HasPrefix(svc.UpdateStatus.Message, tt.msgPrefix) || svc.Image != tt.image {
				t.Errorf("after the failure: status %+v, image %s; want %s (%q…), image %s", svc.UpdateStatus, svc.Image, tt.state, tt.msgPrefix, tt.image)
			}
			if tt.action == api.ActionPause {
				if imgs, _ := census(&st, id); imgs["nginx:1.14-alpine"] != 2 {
					t.Errorf("tasks %v, want the 2 old tasks not yet replaced left alone", imgs)
				}
				if err := advanceUpdates(&st, serving(&st), now.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				if imgs, _ := census(&st, id); imgs["nginx:1.14-alpine"] != 2 {
					t.Errorf("tasks %v: a paused update went on", imgs)
				}
			}
		})
	}
}

// TestUpdateMonitor: a new task that runs long enough for its batch to
// be done, then ends within the monitor period, is the update's failure
// as one of the batch under way is; one that ends after it is not; the
// update completes only once the last batch has lasted the period.
func TestUpdateMonitor(t *testing.T) {
	const monitor = 5 * time.Second
	tests := []struct {
		name    string
		endedAt time.Duration // after the first batch is done; 0: never
		state   string        // the update's once the next syncs are done
	}{
		{"ended within the period", monitor - time.Second, api.UpdatePaused},
		{"ended after it", monitor + time.Second, api.UpdateCompleted},
		{"never ended", 0, api.UpdateCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, id := newUpdateState(t, &api.UpdateConfig{Parallelism: 1, Order: api.OrderStopFirst, FailureAction: api.ActionPause, Monitor: monitor})
			start := time.Now().UTC()
			mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.15")}, start)
			if err := advanceUpdates(&st, serving(&st), start); err != nil {
				t.Fatal(err)
			}
			first := st.Rollouts[id].Batch[0]
			// The first batch is done: the second starts, the first's task
			// is watched until the period ends.
			if err := advanceUpdates(&st, serving(&st), start); err != nil {
				t.Fatal(err)
			}
			if ro := st.Rollouts[id]; !ro.Watched[first].Equal(start.Add(monitor)) || len(ro.Batch) != 1 {
				t.Fatalf("after the first batch: %+v, want %s watched until %s and the next batch started", ro, first, start.Add(monitor))
			}
			if got := nextDue(st, start, time.Hour); !got.Equal(start.Add(monitor)) {
				t.Errorf("next sync due %s, want the period's end %s", got, start.Add(monitor))
			}
			// A sync each second until 10 s on; the first task fails at endedAt.
			for at := time.Second; at <= 2*monitor && st.Services[id].UpdateStatus.Rolling(); at += time.Second {
				now := start.Add(at)
				r := serving(&st)
				if at == tt.endedAt {
					r.statuses[first] = api.TaskStatus{State: api.TaskFailed, Err: "exit 3"}
				}
				if err := reapTasks(&st, r.statuses, now); err != nil {
					t.Fatal(err)
				}
				if err := advanceUpdates(&st, r, now); err != nil {
					t.Fatal(err)
				}
				if us := st.Services[id].UpdateStatus; us.State == api.UpdateCompleted && !us.CompletedAt.After(start.Add(monitor)) {
					t.Errorf("completed at %s, before the last batch had lasted %s", us.CompletedAt.Sub(start), monitor)
				}
			}
			us := st.Services[id].UpdateStatus
			if us.State != tt.state {
				t.Errorf("the first task ended at %s: status %+v, want %s", tt.endedAt, us, tt.state)
			}
			if tt.state == api.UpdatePaused && us.Message != "update paused due to failure or early termination of task "+first {
				t.Errorf("paused with %q, want the first task named", us.Message)
			}
		})
	}
}

// TestRollback: a rollback swaps the spec and the previous spec and
// rolls the tasks back the same way; a service never updated has no
// previous spec, with Docker's error.
func TestRollback(t *testing.T) {
	st, id := newUpdateState(t, nil)
	if err := rollbackService(&st, id, msgRollbackRequested, time.Now()); err == nil || err.Error() != "service www does not have a previous spec" {
		t.Errorf("rollback without a previous spec: err %v, want Docker's", err)
	}
	now := time.Now().UTC()
	mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.15"), EnvAdd: []string{"FOO=baz"}}, now)
	// A sync each monitor period: a batch's tasks have lasted it by the
	// next one.
	roll := func() int {
		steps := 0
		for ; st.Services[id].UpdateStatus.Rolling() && steps < 10; steps++ {
			if err := advanceUpdates(&st, serving(&st), now); err != nil {
				t.Fatal(err)
			}
			now = now.Add(api.DefaultMonitor)
		}
		return steps
	}
	roll()
	version := st.Services[id].Version
	if err := rollbackService(&st, id, msgRollbackRequested, now); err != nil {
		t.Fatal(err)
	}
	svc := st.Services[id]
	if svc.Image != "nginx:1.14-alpine" || !slices.Equal(svc.Env, []string{"FOO=bar"}) || svc.PreviousSpec.Image != "nginx:1.15" || svc.Version != version+1 {
		t.Errorf("after rollback: image %s env %q previous %s version %d; want the old spec back, the update's as previous", svc.Image, svc.Env, svc.PreviousSpec.Image, svc.Version)
	}
	if us := svc.UpdateStatus; us.State != api.UpdateRollbackStarted || us.Message != "manually requested rollback" {
		t.Errorf("status %+v, want rollback_started, manually requested", us)
	}
	if steps := roll(); steps != 5 {
		t.Errorf("rolled back in %d syncs, want 5 (one task at a time, then the last one's monitor period)", steps)
	}
	if us := st.Services[id].UpdateStatus; us.State != api.UpdateRollbackCompleted || us.Message != "rollback completed" {
		t.Errorf("status %+v, want rollback_completed", us)
	}
	imgs, history := census(&st, id)
	if diff := cmp.Diff(map[string]int{"nginx:1.14-alpine": 3}, imgs); diff != "" || history != 6 {
		t.Errorf("after the rollback: %v and %d history, want 3 old-image tasks and 6 in history (-want +got):\n%s", imgs, history, diff)
	}
}

// TestUpdateThatChangesNothing: the version goes up and the previous spec
// is kept, as Docker's, but no task is replaced unless forced.
func TestUpdateThatChangesNothing(t *testing.T) {
	st, id := newUpdateState(t, nil)
	version := st.Services[id].Version
	now := time.Now().UTC()
	mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.14-alpine")}, now)
	svc := st.Services[id]
	if svc.Version != version+1 || svc.PreviousSpec == nil || svc.UpdateStatus.State != api.UpdateCompleted {
		t.Errorf("no-op update: version %d previous %v status %+v; want version+1, a previous spec, completed", svc.Version, svc.PreviousSpec, svc.UpdateStatus)
	}
	if len(st.Rollouts) != 0 {
		t.Errorf("a no-op update rolls: %v", st.Rollouts)
	}
	mustUpdate(t, &st, api.ServiceUpdate{Force: true}, now)
	if !st.Services[id].UpdateStatus.Rolling() {
		t.Fatalf("--force: status %+v, want updating", st.Services[id].UpdateStatus)
	}
	for i := range 5 {
		if err := advanceUpdates(&st, serving(&st), now.Add(time.Duration(i)*api.DefaultMonitor)); err != nil {
			t.Fatal(err)
		}
	}
	if _, history := census(&st, id); history != 3 || st.Services[id].UpdateStatus.State != api.UpdateCompleted {
		t.Errorf("--force replaced %d tasks (status %+v), want 3", history, st.Services[id].UpdateStatus)
	}
}

// TestUpdateChanges: what each flag changes in the spec.
func TestUpdateChanges(t *testing.T) {
	tests := []struct {
		name  string
		u     api.ServiceUpdate
		check func(t *testing.T, s *State, svc api.Service)
	}{
		{"replicas", api.ServiceUpdate{Replicas: replicas(5)}, func(t *testing.T, s *State, svc api.Service) {
			if imgs, _ := census(s, svc.ID); svc.Replicas != 5 || imgs["nginx:1.14-alpine"] != 5 {
				t.Errorf("replicas %d tasks %v, want 5", svc.Replicas, imgs)
			}
		}},
		{"env", api.ServiceUpdate{EnvAdd: []string{"A=1", "FOO=baz"}, EnvRm: []string{"B"}}, func(t *testing.T, s *State, svc api.Service) {
			if !slices.Equal(svc.Env, []string{"FOO=baz", "A=1"}) || !svc.UpdateStatus.Rolling() {
				t.Errorf("env %q status %+v, want FOO replaced in place, A added, rolling", svc.Env, svc.UpdateStatus)
			}
		}},
		{"env rm", api.ServiceUpdate{EnvRm: []string{"FOO"}}, func(t *testing.T, s *State, svc api.Service) {
			if svc.Env != nil {
				t.Errorf("env %q, want none", svc.Env)
			}
		}},
		{"publish", api.ServiceUpdate{PublishRm: []api.PortConfig{{PublishedPort: 8888}}, PublishAdd: []api.PortConfig{{PublishedPort: 9999, TargetPort: 80}}},
			func(t *testing.T, s *State, svc api.Service) {
				if len(svc.Endpoint.Ports) != 1 || svc.Endpoint.Ports[0].PublishedPort != 9999 || len(svc.Endpoint.VirtualIPs) != 1 {
					t.Errorf("ports %+v vips %+v, want 9999 only and the ingress VIP kept", svc.Endpoint.Ports, svc.Endpoint.VirtualIPs)
				}
			}},
		{"network add and rm", api.ServiceUpdate{NetworkAdd: []api.NetworkAttachment{{Target: "ovnet"}}}, func(t *testing.T, s *State, svc api.Service) {
			if len(svc.Networks) != 1 || len(svc.Endpoint.VirtualIPs) != 2 || !svc.UpdateStatus.Rolling() {
				t.Fatalf("networks %+v vips %+v, want ovnet attached with a VIP, rolling", svc.Networks, svc.Endpoint.VirtualIPs)
			}
			if _, err := updateService(s, "www", api.ServiceUpdate{NetworkRm: []string{"ovnet"}}, time.Now()); err != nil {
				t.Fatal(err)
			}
			if svc := s.Services[svc.ID]; len(svc.Networks) != 0 || len(svc.Endpoint.VirtualIPs) != 1 {
				t.Errorf("after rm: networks %+v vips %+v, want none and the ingress VIP", svc.Networks, svc.Endpoint.VirtualIPs)
			}
		}},
		{"update config", api.ServiceUpdate{Update: &api.UpdateConfigChange{Parallelism: ptr(uint64(2)), Order: ptr(api.OrderStartFirst)}},
			func(t *testing.T, s *State, svc api.Service) {
				want := api.UpdateConfig{Parallelism: 2, Order: api.OrderStartFirst, FailureAction: api.ActionPause, Monitor: api.DefaultMonitor}
				if svc.UpdateConfig != want || svc.UpdateStatus.Rolling() {
					t.Errorf("update config %+v status %+v, want %+v and nothing to roll", svc.UpdateConfig, svc.UpdateStatus, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeManager(t)
			if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "nginx:1.14-alpine", Replicas: replicas(3),
				Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}, Env: []string{"FOO=bar"}}); err != nil {
				t.Fatal(err)
			}
			svc, err := d.UpdateService(d.ctx, "www", tt.u)
			if err != nil {
				t.Fatal(err)
			}
			st := d.store.Snapshot()
			tt.check(t, &st, svc)
		})
	}
}

// TestBadUpdatesChangeNothing: each bad update is one line and leaves
// the state as it was.
func TestBadUpdatesChangeNothing(t *testing.T) {
	d := newFakeManager(t)
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "nginx:1.14-alpine", Replicas: replicas(3),
		Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "agent", Image: "whoami", Mode: api.ModeGlobal}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ref string
		u         api.ServiceUpdate
		want      string
	}{
		{"unknown service", "nope", api.ServiceUpdate{Image: ptr("nginx:1.15")}, "service nope not found"},
		{"order", "www", api.ServiceUpdate{Update: &api.UpdateConfigChange{Order: ptr("x")}}, `invalid update order "x": want stop-first or start-first`},
		{"parallelism", "www", api.ServiceUpdate{Update: &api.UpdateConfigChange{Parallelism: ptr(uint64(1 << 40))}}, "invalid update parallelism"},
		{"rollback action on a rollback", "www", api.ServiceUpdate{Rollback: &api.UpdateConfigChange{FailureAction: ptr("rollback")}},
			`invalid rollback failure action "rollback": want pause or continue`},
		{"replicas of a global service", "agent", api.ServiceUpdate{Replicas: replicas(2)}, "replicas can only be used with replicated mode"},
		{"unknown network", "www", api.ServiceUpdate{NetworkAdd: []api.NetworkAttachment{{Target: "nonet"}}}, "network nonet not found"},
		{"port not published", "www", api.ServiceUpdate{PublishRm: []api.PortConfig{{PublishedPort: 9999}}}, "port 9999/tcp is not published by service www"},
		{"port taken", "agent", api.ServiceUpdate{PublishAdd: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}, "port 8888/tcp is already published by service www"},
		{"unknown image", "www", api.ServiceUpdate{Image: ptr("postgres:16")}, "Unable to find image 'postgres:16' locally"},
		{"bad env", "www", api.ServiceUpdate{EnvAdd: []string{"=x"}}, `invalid environment variable "=x": want KEY=VALUE`},
		{"env rm of nothing", "www", api.ServiceUpdate{EnvRm: []string{strings.Repeat("x", api.MaxEnvBytes+1)}}, "longer than"},
	}
	before := d.store.Snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.UpdateService(d.ctx, tt.ref, tt.u)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got error %v, want one line with %q", err, tt.want)
			}
			if diff := stateDiff(before, d.store.Snapshot()); diff != "" {
				t.Errorf("state changed:\n%s", diff)
			}
		})
	}
	if _, err := d.RollbackService(d.ctx, "www"); err == nil || err.Error() != "service www does not have a previous spec" {
		t.Errorf("rollback: err %v, want Docker's", err)
	}
}

// TestUpdateSurvivesALeaderChange: the update's progress is in the
// replicated state, so the manager that leads next continues it.
func TestUpdateSurvivesALeaderChange(t *testing.T) {
	seed, id := newUpdateState(t, nil)
	stores := newTestCluster(t, 3)
	write := func(s *Store, fn func(st *State) error) {
		t.Helper()
		if _, err := s.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	write(stores[0], func(st *State) error {
		v := st.Version
		*st = seed.clone()
		st.Version = v
		_, err := updateService(st, "www", api.ServiceUpdate{Image: ptr("nginx:1.15")}, now)
		return err
	})
	// The first batch is reachable: the old leader starts the second.
	for range 2 {
		write(stores[0], func(st *State) error { return advanceUpdates(st, serving(st), now) })
	}
	mid := stores[0].Snapshot()
	if imgs, _ := census(&mid, id); imgs["nginx:1.15"] != 2 {
		t.Fatalf("before the leader change: %v, want 2 tasks updated", imgs)
	}
	if err := stores[0].Close(); err != nil {
		t.Fatal(err)
	}
	next := leaderOf(t, stores, 0)
	// The first batch's task is still watched: the new leader would act
	// on its failure as the old one would have.
	testutil.Eventually(t, 5*time.Second, "the new leader has the update", func() error {
		if ro := next.Snapshot().Rollouts[id]; len(ro.Batch) != 1 || len(ro.Watched) != 1 {
			return fmt.Errorf("rollout %+v, want a batch of one and one task watched", ro)
		}
		return nil
	})
	for i := 0; next.Snapshot().Services[id].UpdateStatus.Rolling(); i++ {
		if i > 5 {
			t.Fatal("the new leader does not finish the update")
		}
		now = now.Add(api.DefaultMonitor)
		write(next, func(st *State) error { return advanceUpdates(st, serving(st), now) })
	}
	st := next.Snapshot()
	imgs, history := census(&st, id)
	if diff := cmp.Diff(map[string]int{"nginx:1.15": 3}, imgs); diff != "" || history != 3 {
		t.Errorf("after the leader change: %v, %d history (-want +got):\n%s", imgs, history, diff)
	}
	if us := st.Services[id].UpdateStatus; us.State != api.UpdateCompleted {
		t.Errorf("status %+v, want completed", us)
	}
}

// TestUpdateSupersededMidBatch: an update made while a start-first batch
// is under way leaves no task of either older spec running.
func TestUpdateSupersededMidBatch(t *testing.T) {
	st, id := newUpdateState(t, &api.UpdateConfig{Parallelism: 1, Order: api.OrderStartFirst, FailureAction: api.ActionPause})
	now := time.Now().UTC()
	mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx:1.15")}, now)
	if err := advanceUpdates(&st, serving(&st), now); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := census(&st, id); imgs["nginx:1.15"] != 1 || imgs["nginx:1.14-alpine"] != 3 {
		t.Fatalf("first start-first batch: %v, want the new task beside the 3 old", imgs)
	}
	// The second is stop-first: the slot's two tasks both go first.
	mustUpdate(t, &st, api.ServiceUpdate{Image: ptr("nginx"), Update: &api.UpdateConfigChange{Order: ptr(api.OrderStopFirst)}}, now)
	for i := 0; st.Services[id].UpdateStatus.Rolling(); i++ {
		if i > 10 {
			t.Fatal("the second update never completes")
		}
		if err := advanceUpdates(&st, serving(&st), now); err != nil {
			t.Fatal(err)
		}
		if imgs, _ := census(&st, id); imgs["nginx"]+imgs["nginx:1.15"]+imgs["nginx:1.14-alpine"] < 3 {
			t.Errorf("step %d: %v, fewer than 3 tasks", i, imgs)
		}
	}
	if imgs, _ := census(&st, id); !cmp.Equal(imgs, map[string]int{"nginx": 3}) {
		t.Errorf("after both updates: %v, want 3 nginx and nothing older running", imgs)
	}
}

// TestGlobalServiceUpdate: a global service's tasks are replaced on
// their nodes, one node at a time, never two on a node.
func TestGlobalServiceUpdate(t *testing.T) {
	d := newFakeManager(t)
	svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "agent", Image: "whoami", Mode: api.ModeGlobal,
		UpdateConfig: &api.UpdateConfig{Parallelism: 1, Order: api.OrderStartFirst, FailureAction: api.ActionPause}})
	if err != nil {
		t.Fatal(err)
	}
	st := d.store.Snapshot()
	before := map[string]string{} // node → task
	for _, tk := range st.Tasks {
		before[tk.NodeID] = tk.ID
	}
	now := time.Now().UTC()
	if _, err := updateService(&st, "agent", api.ServiceUpdate{Image: ptr("alpine")}, now); err != nil {
		t.Fatal(err)
	}
	for i := 0; st.Services[svc.ID].UpdateStatus.Rolling(); i++ {
		if i > 10 {
			t.Fatal("the update never completes")
		}
		if err := advanceUpdates(&st, serving(&st), now); err != nil {
			t.Fatal(err)
		}
		if err := placeGlobal(&st, svc.ID, now); err != nil {
			t.Fatal(err)
		}
		perNode := map[string]int{}
		for _, tk := range st.Tasks {
			if tk.Current() {
				perNode[tk.NodeID]++
			}
		}
		for n, c := range perNode {
			if c > 1 {
				t.Errorf("step %d: %d current tasks on %s", i, c, n)
			}
		}
	}
	for _, tk := range st.Tasks {
		if tk.Current() && (tk.Image != "alpine" || before[tk.NodeID] == "") {
			t.Errorf("task %s on %s runs %s, want alpine on a node that had the old task", tk.ID, tk.NodeID, tk.Image)
		}
		if !tk.Current() && before[tk.NodeID] != tk.ID {
			t.Errorf("history task %s on %s: not the node's old task", tk.ID, tk.NodeID)
		}
	}
}
