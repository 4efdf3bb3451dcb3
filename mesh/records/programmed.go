package records

import (
	"encoding/json"
	"slices"
)

// maxProgrammed bounds the task IDs one report holds: more than any
// service's replicas.
const maxProgrammed = 2000

// PutProgrammed reports that this node's balancers and DNS send to
// exactly these tasks of a service (sorted here). service create waits for
// these reports: a task is reachable from everywhere only once every node
// that balances to it has programmed it.
func PutProgrammed(db DB, serviceID string, taskIDs []string) error {
	ids := slices.Clone(taskIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > maxProgrammed {
		ids = ids[:maxProgrammed]
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return tableErr("encode", TableProgrammed, serviceID, err)
	}
	return db.Put(TableProgrammed, serviceID, db.LocalName(), b)
}

// DeleteProgrammed withdraws this node's report for a service; absent is
// fine.
func DeleteProgrammed(db DB, serviceID string) error {
	return db.Delete(TableProgrammed, serviceID, db.LocalName())
}

// Programmed returns every node's reports: by service ID, then node, the
// tasks programmed. Entries that do not decode are skipped.
func Programmed(db DB) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, e := range db.List(TableProgrammed, AllNetworks) {
		var ids []string
		if json.Unmarshal(e.Value, &ids) != nil {
			continue
		}
		if out[e.Scope] == nil {
			out[e.Scope] = map[string][]string{}
		}
		out[e.Scope][e.Owner] = ids
	}
	return out
}
