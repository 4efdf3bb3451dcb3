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

// serviceView returns services sorted by name with their running count
// and how many of those are reachable: programmed by every ready node
// that needs them (see [expectedNodes]), as the nodes report it.
func serviceView(st records.Objects, statuses map[string]api.TaskStatus, programmed map[string]map[string][]string, ready map[string]bool) []api.Service {
	out := st.ServicesByName()
	for i, s := range out {
		s.Running, s.Reachable = 0, 0
		nodes := expectedNodes(st, s, ready)
		for _, t := range st.Tasks {
			if t.ServiceID != s.ID || !t.Current() || statuses[t.ID].State != api.TaskRunning {
				continue
			}
			s.Running++
			if programmedEverywhere(programmed[s.ID], nodes, t.ID) {
				s.Reachable++
			}
		}
		out[i] = s
	}
	return out
}

// expectedNodes are the ready nodes that send to a service's tasks: every
// node when it publishes a port through the ingress routing mesh, and
// every node that runs a task on one of its other networks (the VIP's
// balancer and the names are there).
func expectedNodes(st records.Objects, svc api.Service, ready map[string]bool) []string {
	want := map[string]bool{}
	for _, p := range svc.Endpoint.Ports {
		if p.PublishMode != api.PublishHost {
			for id := range ready {
				want[id] = true
			}
			break
		}
	}
	nets := map[string]bool{}
	for _, a := range svc.Networks {
		nets[a.Target] = true
	}
	for _, t := range st.Tasks {
		if !t.Current() {
			continue
		}
		for _, tn := range t.Networks {
			if nets[tn.NetworkID] || nets[tn.NetworkName] {
				want[t.NodeID] = true
			}
		}
	}
	var out []string
	for id := range want {
		if ready[id] {
			out = append(out, id)
		}
	}
	return out
}

func programmedEverywhere(byNode map[string][]string, nodes []string, taskID string) bool {
	for _, n := range nodes {
		if !slices.Contains(byNode[n], taskID) {
			return false
		}
	}
	return true
}

// taskView returns tasks with their reported status and node name,
// sorted by service, then slot (node, for a global service's). A task shut down keeps the status the
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
		// A global service's slot is its node: its tasks group by node.
		if a.Slot == 0 {
			if c := cmp.Or(strings.Compare(a.NodeName, b.NodeName), strings.Compare(a.NodeID, b.NodeID)); c != 0 {
				return c
			}
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
