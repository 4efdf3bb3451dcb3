package agent

import (
	"path/filepath"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/events"
)

// The agent's events (meshctl events): what it does to this node's tasks
// and their backends, and the drift it repaired. Config.Events may be nil,
// where they are dropped.

// taskEvent records a task's new state, as reported to the task_status
// table.
func (a *Agent) taskEvent(t api.Task, s api.TaskStatus) {
	attrs := map[string]string{"name": t.Name(), "state": s.State}
	if t.ServiceName != "" {
		attrs["service"] = t.ServiceName
	}
	if s.Err != "" {
		attrs["error"] = s.Err
	}
	a.cfg.Events.Add(events.Event{Type: events.TypeTask, Action: s.State, ID: t.ID, Attributes: attrs})
}

// backendEvent records a task's endpoint on one network entering
// ("added"), leaving the rotation ("drained") or leaving the endpoint
// table ("removed").
func (a *Agent) backendEvent(action string, t api.Task, networkID string) {
	attrs := map[string]string{"task": t.Name(), "network.id": networkID}
	for _, tn := range t.Networks {
		if tn.NetworkID == networkID {
			attrs["network"] = tn.NetworkName
		}
	}
	if t.ServiceName != "" {
		attrs["service"] = t.ServiceName
	}
	a.cfg.Events.Add(events.Event{Type: events.TypeBackend, Action: action, ID: t.ID, Attributes: attrs})
}

// driftEvent records a repair of kernel state that drifted: what (links,
// rules) and in which namespace.
func (a *Agent) driftEvent(what, netns string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["kind"] = what
	attrs["netns"] = "host"
	if netns != "" {
		attrs["netns"] = filepath.Base(netns) // the name ns ls shows
	}
	a.cfg.Events.Add(events.Event{Type: events.TypeDrift, Action: "repaired", ID: a.cfg.NodeID, Attributes: attrs})
}

// rebuilder is a syncer that counts its rebuilds of drifted rules.
type rebuilder interface{ Rebuilt() uint64 }

// watchRebuild runs sync and records a drift event if the syncer rebuilt
// drifted rules meanwhile. The count is the syncer's own (not the process'
// lb.RulesRebuilt, which the container engine's bridge syncers move too),
// and each syncer owns one namespace, so the namespace named is right; the
// agent syncs from its reconcile loop alone, so the rebuild is this call's.
func (a *Agent) watchRebuild(r rebuilder, netns string, attrs map[string]string, sync func()) {
	before := r.Rebuilt()
	sync()
	if r.Rebuilt() != before {
		a.driftEvent("rules", netns, attrs)
	}
}
