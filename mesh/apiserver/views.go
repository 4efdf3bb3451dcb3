package apiserver

import (
	"cmp"
	"slices"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// The read views: pure functions of the objects and the task reports.

// networkEndpoints lists the tasks attached to a network, by name.
func networkEndpoints(st records.Objects, netID string) []api.NetworkEndpoint {
	var eps []api.NetworkEndpoint
	for _, t := range st.Tasks {
		for _, tn := range t.Networks {
			if tn.NetworkID != netID {
				continue
			}
			eps = append(eps, api.NetworkEndpoint{Name: t.Name(), TaskID: t.ID,
				Node: st.Nodes[t.NodeID].Hostname, Addr: tn.Addr, MAC: tn.MAC})
		}
	}
	slices.SortFunc(eps, func(a, b api.NetworkEndpoint) int { return strings.Compare(a.Name, b.Name) })
	return eps
}

// serviceView returns services sorted by name with their running count.
func serviceView(st records.Objects, statuses map[string]api.TaskStatus) []api.Service {
	out := st.ServicesByName()
	for i, s := range out {
		s.Running = 0
		for _, t := range st.Tasks {
			if t.ServiceID == s.ID && t.Current() && statuses[t.ID].State == api.TaskRunning {
				s.Running++
			}
		}
		out[i] = s
	}
	return out
}

// taskView returns tasks with their reported status and node name,
// sorted by service, then slot. A task shut down keeps the status the
// manager stored: its node forgets the task once it stopped it.
func taskView(st records.Objects, statuses map[string]api.TaskStatus) []api.Task {
	out := make([]api.Task, 0, len(st.Tasks))
	for _, t := range st.Tasks {
		if t.Current() || t.Status.State == "" {
			t.Status = statuses[t.ID]
		}
		if t.Status.State == "" {
			t.Status.State = api.TaskAssigned
		}
		t.NodeName = st.Nodes[t.NodeID].Hostname
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b api.Task) int {
		if c := strings.Compare(a.ServiceName, b.ServiceName); c != 0 {
			return c
		}
		if a.Slot != b.Slot {
			return a.Slot - b.Slot
		}
		return historyOrder(a, b)
	})
	return out
}

// currentName is the name a task is found by: www.1 names the slot's
// current task; its history is found by ID only.
func currentName(t api.Task) string {
	if t.Current() {
		return t.Name()
	}
	return ""
}

// historyOrder puts a slot's current task first, then its history, the
// newest first (the manager's order: a slot's restart count never goes
// down).
func historyOrder(a, b api.Task) int {
	if a.Current() != b.Current() {
		if a.Current() {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(b.Restarts, a.Restarts), b.CreatedAt.Compare(a.CreatedAt), strings.Compare(a.ID, b.ID))
}

// describeNamespace tells what a namespace file name stands for: its kind
// and the object that owns it.
func describeNamespace(st records.Objects, name string) (kind, owner string) {
	switch {
	case name == "ingress_sbox":
		return "ingress", api.IngressName
	case strings.HasPrefix(name, "1-"):
		return "overlay", networkByIDPrefix(st, name[2:])
	case strings.HasPrefix(name, "lb_"):
		return "lb", networkByIDPrefix(st, name[3:])
	}
	for _, t := range st.Tasks {
		if t.Hostname() == name {
			return "task", t.Name()
		}
	}
	return "", ""
}

func networkByIDPrefix(st records.Objects, prefix string) string {
	for id, n := range st.Networks {
		if strings.HasPrefix(id, prefix) {
			return n.Name
		}
	}
	return ""
}
