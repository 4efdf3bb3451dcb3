package records

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/meshd/meshd/mesh/api"
)

// NodeView is node ls as this node sees it: the manager's records joined
// with this node's gossip view of who is alive. Members without a record
// (the manager is away, or has not recorded them yet) are shown from their
// metadata.
func NodeView(db DB, recs map[string]api.Node, self, leader string) []api.Node {
	recs = maps.Clone(recs)
	if recs == nil {
		recs = map[string]api.Node{}
	}
	alive := map[string]bool{}
	for _, m := range db.Members() {
		alive[m.Name] = Reachable(m.State)
		if _, ok := recs[m.Name]; ok {
			continue
		}
		if meta, ok := DecodeMeta(m.Meta); ok {
			recs[m.Name] = api.Node{ID: m.Name, Hostname: meta.Name, Role: meta.Role,
				Availability: api.AvailabilityActive, Addr: meta.Addr.String(), DataPlane: meta.DataPlane, Version: meta.Version}
		}
	}
	return BuildView(recs, alive, self, leader)
}

// BuildView sets status, manager status and self on each record and sorts
// them by hostname, then ID. leader is the raft leader's node ID, empty
// when there is none.
func BuildView(recs map[string]api.Node, alive map[string]bool, self, leader string) []api.Node {
	out := make([]api.Node, 0, len(recs))
	for id, n := range recs {
		n.Status = api.StatusDown
		if alive[id] || id == self {
			n.Status = api.StatusReady
		}
		n.ManagerStatus = ""
		if n.Role == api.RoleManager {
			switch {
			case n.Status != api.StatusReady:
				n.ManagerStatus = api.ManagerUnreachable
			case id == leader:
				n.ManagerStatus = api.ManagerLeader
			default:
				n.ManagerStatus = api.ManagerReachable
			}
		}
		n.Self = id == self
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b api.Node) int {
		if c := strings.Compare(a.Hostname, b.Hostname); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// FindNode resolves a node reference: an ID, "self", a unique hostname,
// or a unique ID prefix.
func FindNode(nodes []api.Node, ref string) (api.Node, error) {
	if ref == "" {
		return api.Node{}, api.Invalid("empty node reference")
	}
	byID := map[string]api.Node{}
	for _, n := range nodes {
		if n.ID == ref || (ref == "self" && n.Self) {
			return n, nil
		}
		byID[n.ID] = n
	}
	id, err := resolve("node", byID, func(n api.Node) string { return n.Hostname }, ref, 1, "nodes match")
	if err != nil {
		return api.Node{}, err
	}
	return byID[id], nil
}

// Resolve finds an object by ID, unique name, or unique ID prefix of at
// least three characters.
func Resolve[T any](kind string, objs map[string]T, name func(T) string, ref string) (string, error) {
	return resolve(kind, objs, name, ref, 3, "match")
}

func resolve[T any](kind string, objs map[string]T, name func(T) string, ref string, minPrefix int, matching string) (string, error) {
	if ref == "" {
		return "", api.Invalid("empty %s reference", kind)
	}
	if _, ok := objs[ref]; ok {
		return ref, nil
	}
	var byName, byPrefix []string
	for id, o := range objs {
		if name(o) == ref {
			byName = append(byName, id)
		}
		if len(ref) >= minPrefix && len(id) >= len(ref) && strings.HasPrefix(id, ref) {
			byPrefix = append(byPrefix, id)
		}
	}
	for _, c := range [][]string{byName, byPrefix} {
		switch len(c) {
		case 0:
			continue
		case 1:
			return c[0], nil
		default:
			return "", api.Conflict("%s %s is ambiguous: %d %s", kind, api.Quote(ref), len(c), matching)
		}
	}
	return "", api.NotFound("%s %s not found", kind, api.Clip(ref))
}

// NetworkID resolves a network reference: an ID, a name or a unique ID
// prefix.
func (o Objects) NetworkID(ref string) (string, error) {
	return Resolve("network", o.Networks, func(n api.Network) string { return n.Name }, ref)
}

// ServiceID resolves a service reference: an ID, a name or a unique ID
// prefix.
func (o Objects) ServiceID(ref string) (string, error) {
	return Resolve("service", o.Services, func(s api.Service) string { return s.Name }, ref)
}

// NetworksByName returns the networks sorted by name.
func (o Objects) NetworksByName() []api.Network {
	return slices.SortedFunc(maps.Values(o.Networks), func(a, b api.Network) int { return strings.Compare(a.Name, b.Name) })
}

// ServicesByName returns the services sorted by name. It sorts their
// names and IDs, then copies each service once: sorting the services
// themselves moves large structs, which at 1000 services showed in every
// reconcile.
func (o Objects) ServicesByName() []api.Service {
	type named struct{ name, id string }
	keys := make([]named, 0, len(o.Services))
	for id, svc := range o.Services {
		keys = append(keys, named{svc.Name, id})
	}
	slices.SortFunc(keys, func(a, b named) int { return cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.id, b.id)) })
	out := make([]api.Service, len(keys))
	for i, k := range keys {
		out[i] = o.Services[k.id]
	}
	return out
}
