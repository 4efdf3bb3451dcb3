package agent

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// reportProgrammed tells the managers, per service, which tasks this
// node's balancers and resolvers send to: the live endpoints on the
// networks whose sandbox is in step here (eps holds only those whose peer
// is programmed too). service create and scale report "converged" once
// every node that needs a task has it. Only changes are written.
func (a *Agent) reportProgrammed(eps []records.EndpointEntry, synced map[string]bool) {
	now, names := map[string][]string{}, map[string]string{}
	for _, e := range eps {
		if synced[e.Network] && !e.Draining && e.ServiceID != "" {
			now[e.ServiceID] = append(now[e.ServiceID], e.TaskID)
			names[e.ServiceID] = e.Service
		}
	}
	a.timeProgramming(eps, now)
	backends := map[string]int{}
	for _, svc := range slices.Sorted(maps.Keys(now)) {
		ids := now[svc]
		slices.Sort(ids)
		ids = slices.Compact(ids)
		backends[names[svc]] = len(ids)
		key := strings.Join(ids, ",")
		if a.programmed[svc] == key {
			continue
		}
		if err := records.PutProgrammed(a.cfg.DB, svc, ids); err != nil {
			a.log.Warn("report programmed tasks", "service_id", svc, "err", err)
			continue
		}
		a.programmed[svc] = key
	}
	for svc := range a.programmed {
		if _, ok := now[svc]; !ok {
			if err := records.DeleteProgrammed(a.cfg.DB, svc); err != nil {
				a.log.Warn("withdraw programmed tasks", "service_id", svc, "err", err)
				continue
			}
			delete(a.programmed, svc)
		}
	}
	a.cfg.Metrics.SetServiceBackends(backends)
}

// timeProgramming measures, once per task, how long a task newly among
// the programmed ones took from its Running status (stamped by the node
// that runs it) to being programmed here. Tasks that were running before
// this agent started are not measured, as kube-proxy leaves out changes
// older than itself: their time would be this node's start-up, not
// programming. A task is remembered while its endpoint is in the table,
// so a drain cancelled does not measure it again. Metrics aside, this
// costs a status read per task newly programmed.
func (a *Agent) timeProgramming(eps []records.EndpointEntry, programmed map[string][]string) {
	live := map[string]bool{}
	for _, e := range eps {
		live[e.TaskID] = true
	}
	maps.DeleteFunc(a.timed, func(id string, _ bool) bool { return !live[id] })
	now := time.Now() // the clock a.report stamps statuses with
	for _, ids := range programmed {
		for _, id := range ids {
			if a.timed[id] {
				continue
			}
			// Gossip may bring the endpoint before the status: look again
			// at the next pass.
			s, ok := records.TaskStatus(a.cfg.DB, id)
			if !ok || s.State != api.TaskRunning {
				continue
			}
			a.timed[id] = true
			if !s.Timestamp.Before(a.started) {
				a.cfg.Metrics.ObserveProgramming(now.Sub(s.Timestamp))
			}
		}
	}
}

// timeConvergence measures gossip's convergence as task statuses show it:
// for each status another node wrote (and stamped) after this agent
// started, the time from its stamp to its arrival here. Statuses are
// written at every state change of every task, so they sample gossip all
// the time; across nodes the figure depends on their clocks agreeing.
func (a *Agent) timeConvergence(events <-chan gossip.Event) {
	for ev := range events {
		if ev.Type == gossip.Delete || ev.Entry.Owner == a.cfg.DB.LocalName() {
			continue
		}
		var s api.TaskStatus
		if json.Unmarshal(ev.Entry.Value, &s) != nil || s.Timestamp.Before(a.started) {
			continue
		}
		a.cfg.Metrics.ObserveGossipConvergence(time.Since(s.Timestamp))
	}
}
