package agent

import (
	"maps"
	"slices"
	"strings"

	"github.com/meshd/meshd/mesh/records"
)

// reportProgrammed tells the managers, per service, which tasks this
// node's balancers and resolvers send to: the live endpoints on the
// networks whose sandbox is in step here (eps holds only those whose peer
// is programmed too). service create and scale report "converged" once
// every node that needs a task has it. Only changes are written.
func (a *Agent) reportProgrammed(eps []records.EndpointEntry, synced map[string]bool) {
	now := map[string][]string{}
	for _, e := range eps {
		if synced[e.Network] && !e.Draining && e.ServiceID != "" {
			now[e.ServiceID] = append(now[e.ServiceID], e.TaskID)
		}
	}
	for _, svc := range slices.Sorted(maps.Keys(now)) {
		ids := now[svc]
		slices.Sort(ids)
		ids = slices.Compact(ids)
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
}
