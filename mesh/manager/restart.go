package manager

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// Task history and restarts, as Swarm keeps them. A task's process runs
// once; when its node reports it complete or failed, the leader shuts the
// task down (DesiredState shutdown, its last report and end kept in the
// state, its addresses released) and, as the service's restart policy
// says, a new task takes the slot after the delay. The tasks shut down
// stay as the slot's history, at most historyLimit tasks a slot, so that a
// task that crashes in a loop grows the state by nothing.

// historyLimit is the most tasks a slot keeps, the current one included:
// Docker's task-history-limit default.
const historyLimit = 5

// maxStatusErr bounds a report's error kept in the state: a node's text
// must not grow the replicated state.
const maxStatusErr = 512

// restartPolicy checks a create request's policy and fills Docker's
// defaults: nil is any, 5 s, no bound; an empty condition is any.
func restartPolicy(p *api.RestartPolicy) (api.RestartPolicy, error) {
	if p == nil {
		return api.RestartPolicy{Condition: api.RestartAny, Delay: api.DefaultRestartDelay}, nil
	}
	out := *p
	if out.Condition == "" {
		out.Condition = api.RestartAny
	}
	switch {
	case out.Condition != api.RestartNone && out.Condition != api.RestartOnFailure && out.Condition != api.RestartAny:
		return out, api.Invalid("invalid restart condition %s: want none, on-failure or any", api.Quote(out.Condition))
	case out.Delay < 0 || out.Delay > 24*time.Hour:
		return out, api.Invalid("invalid restart delay %s: want 0 to 24h", out.Delay)
	case out.MaxAttempts < 0 || out.MaxAttempts > 1000:
		return out, api.Invalid("invalid restart max attempts %d: want 0 (no limit) to 1000", out.MaxAttempts)
	case out.Window < 0 || out.Window > 24*time.Hour:
		return out, api.Invalid("invalid restart window %s: want 0 to 24h", out.Window)
	}
	return out, nil
}

// reapTasks shuts down the current tasks whose node reports them ended
// (see [shutdownTask]). statuses are the nodes' reports by task ID.
func reapTasks(s *State, statuses map[string]api.TaskStatus, now time.Time) error {
	for _, id := range slices.Sorted(maps.Keys(s.Tasks)) {
		t := s.Tasks[id]
		st, ok := statuses[id]
		if !t.Current() || !ok || !api.Terminal(st.State) {
			continue
		}
		if t.Standalone != nil {
			if err := reapContainer(s, id, st, now); err != nil {
				return err
			}
			continue
		}
		if err := shutdownTask(s, id, st, now); err != nil {
			return err
		}
	}
	return nil
}

// shutdownTask makes a current task history: desired shutdown, with its
// last status and end kept, and its addresses released (its node stops
// it once it sees the change).
func shutdownTask(s *State, id string, st api.TaskStatus, now time.Time) error {
	t := s.Tasks[id]
	for _, tn := range t.Networks {
		if err := release(s, tn.NetworkID, tn.Addr); err != nil {
			return err
		}
	}
	st.Err = api.Cut(st.Err, maxStatusErr)
	st.Message = api.Cut(st.Message, maxStatusErr)
	st.PID, st.Sandbox = 0, ""
	if st.Timestamp.IsZero() {
		st.Timestamp = now
	}
	t.Networks, t.DesiredState, t.Status, t.EndedAt = nil, api.TaskShutdown, st, now
	s.Tasks[id] = t
	return pruneHistory(s, t.ServiceID, t.Slot, t.NodeID)
}

// slotTasks are a slot's tasks, the newest first: the current one, then
// the history. A slot's tasks form a chain whose restart count never goes
// down, so it orders them before the time they were made: that survives
// clocks that differ between managers. A global service's slot is its
// node's: slot 0 and the node's ID (node is ignored for other slots).
func slotTasks(s *State, svcID string, slot int, node string) []api.Task {
	var out []api.Task
	for _, t := range s.Tasks {
		if t.ServiceID == svcID && t.Slot == slot && (slot != 0 || t.NodeID == node) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b api.Task) int {
		if a.Current() != b.Current() {
			if a.Current() {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Restarts, a.Restarts), b.CreatedAt.Compare(a.CreatedAt), b.EndedAt.Compare(a.EndedAt),
			cmp.Compare(a.ID, b.ID))
	})
	return out
}

// pruneHistory keeps a slot's newest historyLimit tasks.
func pruneHistory(s *State, svcID string, slot int, node string) error {
	tasks := slotTasks(s, svcID, slot, node)
	for _, t := range tasks[min(len(tasks), historyLimit):] {
		if err := removeTask(s, t.ID); err != nil {
			return err
		}
	}
	return nil
}

// slotDue says whether a slot without a current task gets one now, and
// how many restarts of the slot it counts. A slot that never had a task,
// or whose last task was stopped by the cluster (moved off a node), gets
// one at once and it is no restart; one whose last task exited gets one
// only as the restart policy says, after the delay.
func slotDue(s *State, svc api.Service, slot int, node string, now time.Time) (bool, int) {
	tasks := slotTasks(s, svc.ID, slot, node)
	if len(tasks) == 0 {
		return true, 0
	}
	last := tasks[0]
	state := last.Status.State
	if !api.Terminal(state) {
		return true, last.Restarts
	}
	p := svc.RestartPolicy
	if p.Condition == api.RestartNone || (p.Condition == api.RestartOnFailure && state == api.TaskComplete) {
		return false, 0
	}
	if p.MaxAttempts > 0 && recentRestarts(tasks, p.Window, now) >= p.MaxAttempts {
		return false, 0
	}
	if now.Before(last.EndedAt.Add(p.Delay)) {
		return false, 0
	}
	return true, last.Restarts + 1
}

// recentRestarts counts a slot's restarts: all of them, or with a window
// those whose task was made within it (the history kept bounds that
// count, so a window longer than historyLimit restarts counts fewer).
func recentRestarts(tasks []api.Task, window time.Duration, now time.Time) int {
	if window <= 0 {
		return tasks[0].Restarts
	}
	seen := map[int]bool{} // a task moved and its replacement are one restart
	for _, t := range tasks {
		if t.Restarts > 0 && now.Sub(t.CreatedAt) < window {
			seen[t.Restarts] = true
		}
	}
	return len(seen)
}
