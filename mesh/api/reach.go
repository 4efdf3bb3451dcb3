package api

import (
	"maps"
	"slices"
)

// PublishesIngress says whether the service publishes a port through the
// routing mesh, which every node then balances.
func (s Service) PublishesIngress() bool {
	return slices.ContainsFunc(s.Endpoint.Ports, func(p PortConfig) bool { return p.PublishMode == PublishIngress })
}

// SendingNodes are the ready nodes that send to the service's tasks, sorted:
// every one when it publishes through the routing mesh, and each that runs
// a current task on one of the service's networks (the VIP's balancer and
// the names are there). A task is reachable once all of them have
// programmed it (see ProgrammedBy): service ls counts those, and a
// rolling update waits for them.
func (s Service) SendingNodes(tasks map[string]Task, ready map[string]bool) []string {
	want := map[string]bool{}
	if s.PublishesIngress() {
		maps.Copy(want, ready)
	}
	nets := map[string]bool{}
	for _, a := range s.Networks {
		nets[a.Target] = true
	}
	for _, t := range tasks {
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
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if ready[id] {
			out = append(out, id)
		}
	}
	return out
}

// ProgrammedBy says whether every one of nodes reports taskID among the
// tasks it sends to; byNode is one service's reports, by node ID.
func ProgrammedBy(byNode map[string][]string, nodes []string, taskID string) bool {
	for _, n := range nodes {
		if !slices.Contains(byNode[n], taskID) {
			return false
		}
	}
	return true
}
