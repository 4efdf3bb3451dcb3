package manager

import (
	"maps"
	"slices"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// Global services, as Swarm's: one task on every node that is Ready and
// Active and satisfies the service's constraints. A global task has no
// slot number (slot 0): its slot is its node, so it is named
// SERVICE.NODEID as docker service ps names it, and its restart history
// is the node's. Nothing moves for a global service: a node that leaves,
// is drained or stops satisfying the constraints loses its task, and a
// node that becomes eligible gets one at the next placement (the
// leader's sync, or the write that made it eligible); a paused node
// keeps its task and gets none. Replicas of a global service is kept at
// the number of tasks expected (eligible nodes, and those that keep
// theirs), so that ls prints n/n and a wait knows how many to expect.

// placeGlobal makes a global service's tasks match the eligible nodes.
// A task on a Down node stays until [rescheduleDown] gives it up, as a
// replicated one does: a node that blinks keeps its task.
func placeGlobal(s *State, svcID string, now time.Time) error {
	svc := s.Services[svcID]
	current := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(s.Tasks)) {
		t := s.Tasks[id]
		if t.ServiceID != svcID || !t.Current() {
			continue
		}
		n, ok := s.Nodes[t.NodeID]
		if ok && n.Availability != api.AvailabilityDrain && fits(svc, n) && !current[t.NodeID] {
			current[t.NodeID] = true
			continue
		}
		st := api.TaskStatus{State: api.TaskShutdown, Message: "node no longer eligible", Timestamp: now}
		if err := shutdownTask(s, id, st, now); err != nil {
			return err
		}
	}
	// The tasks expected: one on each eligible node, and those kept where
	// they are (a paused node's, a down node's for now).
	expected := len(current)
	for _, id := range slices.Sorted(maps.Keys(s.Nodes)) {
		if n := s.Nodes[id]; !schedulable(n) || !fits(svc, n) {
			continue
		}
		if current[id] {
			continue
		}
		expected++
		due, restarts := slotDue(s, svc, 0, id, now)
		if !due {
			continue
		}
		if _, err := addTask(s, svc, 0, id, restarts, now); err != nil {
			return err
		}
		if err := pruneHistory(s, svcID, 0, id); err != nil {
			return err
		}
	}
	if svc.Replicas != expected {
		svc.Replicas = expected
		s.Services[svcID] = svc
	}
	return ensureLBAddrs(s)
}

// rescheduleUnfit moves the tasks whose node no longer satisfies their
// service's constraints (a label removed or changed, a role changed), as
// Swarm's constraint enforcer does; a global service's task just stops.
func rescheduleUnfit(s *State, now time.Time) error {
	return moveTasks(s, now, func(t api.Task, n api.Node, ok bool) bool {
		svc, has := s.Services[t.ServiceID]
		return ok && has && len(svc.Constraints) > 0 && !fits(svc, n)
	})
}
