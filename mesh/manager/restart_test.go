package manager

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// newRestartService creates a service of the given replicas on ovnet with
// policy p, returning it and the time its tasks were made.
func newRestartService(t *testing.T, d *fakeManager, replicas int, p *api.RestartPolicy) api.Service {
	t.Helper()
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "t", Image: "whoami", Replicas: &replicas,
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}, RestartPolicy: p})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// slotOf is a slot's tasks, the current one first, then the history.
func (d *fakeManager) slotOf(svc api.Service, slot int) []api.Task {
	st := d.store.Snapshot()
	return slotTasks(&st, svc.ID, slot, "")
}

// end makes the node of the slot's current task report it ended (state,
// errText) at now, as the agent does, then runs the leader's sync at now.
func (d *fakeManager) end(t *testing.T, svc api.Service, slot int, state, errText string, now time.Time) api.Task {
	t.Helper()
	tasks := d.slotOf(svc, slot)
	if len(tasks) == 0 || !tasks[0].Current() {
		t.Fatalf("slot %d has no current task: %+v", slot, tasks)
	}
	cur := tasks[0]
	if err := records.PutTaskStatus(d.db, cur.ID, api.TaskStatus{State: state, Err: errText}, now); err != nil {
		t.Fatal(err)
	}
	d.syncNodes(now)
	return cur
}

// TestRestartPolicy: a task that ended is shut down at once, kept as its
// slot's history with its status and without addresses, and a new task
// takes the slot after the delay, not before, as the condition says.
func TestRestartPolicy(t *testing.T) {
	const exit1 = "task: non-zero exit (1)"
	tests := []struct {
		name      string
		policy    *api.RestartPolicy
		state     string // how the task ended
		errText   string
		delay     time.Duration // the restart delay in force
		restarted bool
	}{
		{name: "default: failed, restarted after 5 s", state: api.TaskFailed, errText: exit1, delay: 5 * time.Second, restarted: true},
		{name: "any: complete restarted", policy: &api.RestartPolicy{Condition: "any", Delay: time.Second},
			state: api.TaskComplete, delay: time.Second, restarted: true},
		{name: "on-failure: failed restarted", policy: &api.RestartPolicy{Condition: "on-failure", Delay: 2 * time.Second},
			state: api.TaskFailed, errText: exit1, delay: 2 * time.Second, restarted: true},
		{name: "on-failure: complete stays", policy: &api.RestartPolicy{Condition: "on-failure"},
			state: api.TaskComplete},
		{name: "none: failed stays", policy: &api.RestartPolicy{Condition: "none"}, state: api.TaskFailed, errText: exit1},
		{name: "delay zero: at once", policy: &api.RestartPolicy{Condition: "any"}, state: api.TaskFailed, errText: exit1, restarted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeManager(t)
			svc := newRestartService(t, d, 1, tt.policy)
			now := time.Now().UTC().Add(time.Minute)
			old := d.end(t, svc, 1, tt.state, tt.errText, now)

			tasks := d.slotOf(svc, 1)
			if tt.delay > 0 || !tt.restarted {
				if len(tasks) != 1 {
					t.Fatalf("right after the end: %d tasks in the slot, want the one shut down", len(tasks))
				}
			}
			gone := tasks[len(tasks)-1]
			if gone.ID != old.ID || gone.DesiredState != api.TaskShutdown || gone.Status.State != tt.state ||
				gone.Status.Err != tt.errText || gone.Networks != nil || !gone.EndedAt.Equal(now) {
				t.Errorf("ended task: %+v; want desired shutdown, status %s %q, no networks, ended at %s", gone, tt.state, tt.errText, now)
			}
			st := d.store.Snapshot()
			addr := netip.MustParsePrefix(old.Networks[0].Addr).Addr()
			if _, err := st.IPAM.Clone().Allocate(old.Networks[0].NetworkID, addr); err != nil {
				t.Errorf("address %s of the ended task not released: %v", addr, err)
			}
			if tt.delay > 0 {
				d.syncNodes(now.Add(tt.delay - time.Millisecond))
				if n := len(d.slotOf(svc, 1)); n != 1 {
					t.Errorf("before the delay: %d tasks in the slot, want 1", n)
				}
			}
			d.syncNodes(now.Add(tt.delay))
			// On time: the sync before the delay changed nothing, and
			// the next must not be skipped for it (see quietSync).
			if n := len(d.slotOf(svc, 1)); tt.restarted && n != 2 {
				t.Errorf("at the delay: %d tasks in the slot, want the restarted one too", n)
			}
			d.syncNodes(now.Add(tt.delay + time.Hour))
			tasks = d.slotOf(svc, 1)
			if !tt.restarted {
				if len(tasks) != 1 || tasks[0].Current() {
					t.Errorf("not restarted: got %d tasks, the first current=%v; want the ended one only", len(tasks), tasks[0].Current())
				}
				return
			}
			if len(tasks) != 2 || !tasks[0].Current() || tasks[0].ID == old.ID || tasks[0].Restarts != 1 || len(tasks[0].Networks) != 1 {
				t.Fatalf("after the delay: %+v; want a new current task (restart 1, with an address) and the old one", tasks)
			}
		})
	}
}

// TestRestartMaxAttempts: a slot is restarted MaxAttempts times, then
// its last failure stays and no task is made however long one waits.
func TestRestartMaxAttempts(t *testing.T) {
	d := newFakeManager(t)
	svc := newRestartService(t, d, 1, &api.RestartPolicy{Condition: "any", Delay: time.Second, MaxAttempts: 2})
	now := time.Now().UTC().Add(time.Minute)
	for i := range 3 {
		d.end(t, svc, 1, api.TaskFailed, "task: non-zero exit (3)", now)
		now = now.Add(time.Second)
		d.syncNodes(now)
		if got, want := len(d.slotOf(svc, 1)), i+2; i < 2 && got != want {
			t.Fatalf("after failure %d: %d tasks, want %d", i+1, got, want)
		}
	}
	for range 3 {
		now = now.Add(time.Hour)
		d.syncNodes(now)
	}
	var got []string
	for _, tk := range d.slotOf(svc, 1) {
		got = append(got, tk.DesiredState+" "+tk.Status.State+" "+tk.Status.Err)
	}
	want := []string{"shutdown failed task: non-zero exit (3)", "shutdown failed task: non-zero exit (3)", "shutdown failed task: non-zero exit (3)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slot 1 after 2 restarts (-want +got):\n%s", diff)
	}
	if n := len(current(d.store.Snapshot())); n != 0 {
		t.Errorf("%d current tasks, want none", n)
	}
}

// TestRestartWindow: only the restarts within the window count against
// MaxAttempts.
func TestRestartWindow(t *testing.T) {
	d := newFakeManager(t)
	svc := newRestartService(t, d, 1, &api.RestartPolicy{Condition: "any", MaxAttempts: 1, Window: time.Minute})
	now := time.Now().UTC().Add(time.Minute)
	d.end(t, svc, 1, api.TaskFailed, "x", now) // restart 1, made now
	d.end(t, svc, 1, api.TaskFailed, "x", now.Add(time.Second))
	if tasks := d.slotOf(svc, 1); tasks[0].Current() {
		t.Fatalf("a second restart within the window was made")
	}
	// The first restart leaves the window a minute after it was made: the
	// leader's sync is due then (and is not skipped as quiet).
	first := d.slotOf(svc, 1)[0] // restart 1, ended
	if got, want := nextDue(d.store.Snapshot(), now.Add(2*time.Second), d.cfg.RescheduleAfter), first.CreatedAt.Add(time.Minute); !got.Equal(want) {
		t.Errorf("next due %v, want %v: when the first restart leaves the window", got, want)
	}
	d.syncNodes(now.Add(2 * time.Minute))
	if tasks := d.slotOf(svc, 1); !tasks[0].Current() {
		t.Errorf("no restart once the first left the window")
	}
}

// TestHistoryIsBounded: a task that fails in a loop keeps at most 5
// tasks in its slot, the newest, and counts every restart.
func TestHistoryIsBounded(t *testing.T) {
	d := newFakeManager(t)
	svc := newRestartService(t, d, 1, &api.RestartPolicy{Condition: "any"})
	now := time.Now().UTC().Add(time.Minute)
	var ended []string
	for i := range 12 {
		ended = append(ended, d.end(t, svc, 1, api.TaskFailed, "x", now.Add(time.Duration(i)*time.Second)).ID)
	}
	tasks := d.slotOf(svc, 1)
	if len(tasks) != historyLimit || !tasks[0].Current() || tasks[0].Restarts != 12 {
		t.Fatalf("slot after 12 failures: %d tasks (want %d), current %v with %d restarts (want 12)",
			len(tasks), historyLimit, tasks[0].Current(), tasks[0].Restarts)
	}
	var got []string
	for _, tk := range tasks[1:] {
		got = append(got, tk.ID)
	}
	want := []string{ended[11], ended[10], ended[9], ended[8]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history kept, newest first (-want +got):\n%s", diff)
	}
	if n := len(d.store.Snapshot().Tasks); n != historyLimit {
		t.Errorf("%d tasks in the state, want %d", n, historyLimit)
	}
}

// TestHistoryGoesWithScaleDownAndRm: scale down removes the slots'
// history with them, rm every task of the service.
func TestHistoryGoesWithScaleDownAndRm(t *testing.T) {
	d := newFakeManager(t)
	svc := newRestartService(t, d, 2, &api.RestartPolicy{Condition: "any"})
	now := time.Now().UTC().Add(time.Minute)
	for slot := 1; slot <= 2; slot++ {
		d.end(t, svc, slot, api.TaskFailed, "x", now)
		d.end(t, svc, slot, api.TaskFailed, "x", now.Add(time.Second))
	}
	if n := len(d.store.Snapshot().Tasks); n != 6 {
		t.Fatalf("%d tasks, want 2 slots of 3", n)
	}
	if _, err := d.ScaleService(d.ctx, "t", 1); err != nil {
		t.Fatal(err)
	}
	for _, tk := range d.store.Snapshot().Tasks {
		if tk.Slot != 1 {
			t.Errorf("task %s of slot %d left after scale to 1", tk.ID, tk.Slot)
		}
	}
	if n := len(d.slotOf(svc, 1)); n != 3 {
		t.Errorf("slot 1 has %d tasks after scale down, want its 3", n)
	}
	if err := d.RemoveService(d.ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if n := len(d.store.Snapshot().Tasks); n != 0 {
		t.Errorf("%d tasks after rm, want none", n)
	}
	if err := d.RemoveNetwork(d.ctx, "ovnet"); err != nil {
		t.Errorf("network rm after its service went (an address leaked?): %v", err)
	}
}

// TestMovedTaskIsNoRestart: a task moved off a drained node leaves
// history but counts no restart and waits for no delay, even when the
// slot has used up its attempts.
func TestMovedTaskIsNoRestart(t *testing.T) {
	d := newFakeManager(t)
	svc := newRestartService(t, d, 1, &api.RestartPolicy{Condition: "any", Delay: time.Hour, MaxAttempts: 1})
	now := time.Now().UTC().Add(time.Minute)
	d.end(t, svc, 1, api.TaskFailed, "x", now)
	d.syncNodes(now.Add(time.Hour))
	cur := d.slotOf(svc, 1)[0]
	if !cur.Current() || cur.Restarts != 1 {
		t.Fatalf("no restart: %+v", cur)
	}
	if _, err := d.UpdateNode(d.ctx, cur.NodeID, api.NodeUpdate{Availability: "drain"}); err != nil {
		t.Fatal(err)
	}
	tasks := d.slotOf(svc, 1)
	if len(tasks) != 3 || !tasks[0].Current() || tasks[0].NodeID == cur.NodeID || tasks[0].Restarts != 1 {
		t.Fatalf("after drain: %+v; want a new current task elsewhere, still 1 restart", tasks)
	}
	if tasks[1].ID != cur.ID || tasks[1].Status.State != api.TaskShutdown {
		t.Errorf("moved task kept as %+v, want shut down", tasks[1])
	}
}

// TestBadRestartPoliciesChangeNothing: a policy out of range is refused
// with a 400 and nothing is created.
func TestBadRestartPoliciesChangeNothing(t *testing.T) {
	for _, tt := range []struct {
		name   string
		policy api.RestartPolicy
		want   string
	}{
		{"condition", api.RestartPolicy{Condition: "always"}, `invalid restart condition "always"`},
		{"delay", api.RestartPolicy{Delay: -time.Second}, "invalid restart delay -1s"},
		{"attempts", api.RestartPolicy{MaxAttempts: -1}, "invalid restart max attempts -1"},
		{"window", api.RestartPolicy{Window: 48 * time.Hour}, "invalid restart window 48h0m0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeManager(t)
			before := d.store.Version()
			_, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "t", Image: "whoami", RestartPolicy: &tt.policy})
			if err == nil || api.StatusCode(err) != 400 || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want a 400 with %q", err, tt.want)
			}
			if d.store.Version() != before {
				t.Errorf("state changed by a refused create")
			}
		})
	}
}
