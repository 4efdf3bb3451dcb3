package mesh

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/api"
)

// tableNodes holds the manager's node records, keyed by node ID, cluster
// scope. Workers read it for node ls; status comes from their own gossip
// view, so every node says Down for a node it cannot hear.
const tableNodes = "nodes"

// nodeSyncInterval is how often the manager folds gossip membership into
// its records. Joins are recorded at once by the join call; this catches
// metadata changes (a node restarted with another data plane).
const nodeSyncInterval = time.Second

func (d *Daemon) selfRecord(now time.Time) api.Node {
	m := d.meta()
	return api.Node{ID: d.id.ID, Hostname: m.Name, Role: m.Role, Availability: api.AvailabilityActive,
		Status: api.StatusReady, Addr: m.Addr, AddrPrefix: m.Prefix, DataPlane: m.DataPlane, Version: m.Version,
		CreatedAt: now, UpdatedAt: now}
}

// updateStore changes the manager's state and wakes the publisher.
func (d *Daemon) updateStore(fn func(*State) error) error {
	changed, err := d.store.Update(fn)
	if err != nil || !changed {
		return err
	}
	select {
	case d.storeChanged <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// recordNode creates or refreshes the manager's record of a node.
func (d *Daemon) recordNode(id string, m nodeMeta) error {
	return d.updateStore(func(s *State) error {
		now := time.Now().UTC()
		n, ok := s.Nodes[id]
		if !ok {
			n = api.Node{ID: id, Availability: api.AvailabilityActive, CreatedAt: now}
		}
		next := n
		next.Hostname, next.Role, next.Addr, next.DataPlane, next.Version = m.Name, m.Role, m.Addr, m.DataPlane, m.Version
		next.AddrPrefix = m.Prefix
		if ok && next == n {
			return nil
		}
		next.UpdatedAt = now
		s.Nodes[id] = next
		if !ok {
			return ensureLBAddrs(s) // its ingress sandbox address
		}
		return nil
	})
}

// manageNodes keeps the manager's records in step with gossip (metadata
// and liveness, which the scheduler reads) and publishes the manager's
// objects, until ctx ends.
func (d *Daemon) manageNodes(ctx context.Context) {
	pub := newPublisher()
	t := time.NewTicker(nodeSyncInterval)
	defer t.Stop()
	for {
		d.syncNodes()
		d.publishObjects(pub)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.storeChanged:
		}
	}
}

// rescheduleAfter is how long a node may be Down before the manager moves
// its tasks to other nodes (Swarm waits for its heartbeat period, too): a
// node that only restarts keeps its tasks.
const rescheduleAfter = 10 * time.Second

func (d *Daemon) syncNodes() {
	alive := map[string]bool{d.id.ID: true}
	for _, m := range d.db.Members() {
		alive[m.Name] = alive[m.Name] || reachable(m.State)
		meta, ok := decodeMeta(m.Meta)
		if !ok || !reachable(m.State) {
			continue
		}
		if err := d.recordNode(m.Name, meta); err != nil {
			d.log.Error("record node", "peer", meta.Name, "err", err)
		}
	}
	err := d.updateStore(func(s *State) error {
		now := time.Now().UTC()
		for id, n := range s.Nodes {
			status := api.StatusDown
			if alive[id] {
				status = api.StatusReady
			}
			if n.Status != status {
				n.Status, n.UpdatedAt = status, now
				s.Nodes[id] = n
			}
		}
		return rescheduleDown(s, now)
	})
	if err != nil {
		d.log.Error("record node status", "err", err)
	}
}

func decodeMeta(b []byte) (nodeMeta, bool) {
	var m nodeMeta
	if err := json.Unmarshal(b, &m); err != nil || m.Name == "" {
		return m, false
	}
	return m, true
}

// nodeView is node ls as this node sees it: the manager's records (its
// store on the manager, the gossiped table elsewhere) joined with this
// node's gossip view of who is alive. Members without a record (the
// manager is away, or has not recorded them yet) are shown from their
// metadata.
func (d *Daemon) nodeView() []api.Node {
	records := map[string]api.Node{}
	if d.isManager() {
		records = d.store.Snapshot().Nodes
	} else {
		for _, e := range d.db.List(tableNodes, "") {
			var n api.Node
			if json.Unmarshal(e.Value, &n) == nil && n.ID == e.Key {
				records[n.ID] = n
			}
		}
	}
	alive := map[string]bool{}
	for _, m := range d.db.Members() {
		alive[m.Name] = reachable(m.State)
		if _, ok := records[m.Name]; ok {
			continue
		}
		if meta, ok := decodeMeta(m.Meta); ok {
			records[m.Name] = api.Node{ID: m.Name, Hostname: meta.Name, Role: meta.Role,
				Availability: api.AvailabilityActive, Addr: meta.Addr, DataPlane: meta.DataPlane, Version: meta.Version}
		}
	}
	return buildView(records, alive, d.id.ID)
}

// buildView sets status, manager status and self on each record and sorts
// them by hostname, then ID.
func buildView(records map[string]api.Node, alive map[string]bool, self string) []api.Node {
	out := make([]api.Node, 0, len(records))
	for id, n := range records {
		n.Status = api.StatusDown
		if alive[id] || id == self {
			n.Status = api.StatusReady
		}
		n.ManagerStatus = ""
		if n.Role == api.RoleManager {
			n.ManagerStatus = api.ManagerLeader
			if n.Status != api.StatusReady {
				n.ManagerStatus = "Unreachable"
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

// findNode resolves a node reference: an ID, "self", a unique hostname,
// or a unique ID prefix.
func findNode(nodes []api.Node, ref string) (api.Node, error) {
	if ref == "" {
		return api.Node{}, invalid("empty node reference")
	}
	var byName, byPrefix []api.Node
	for _, n := range nodes {
		if n.ID == ref || (ref == "self" && n.Self) {
			return n, nil
		}
		if n.Hostname == ref {
			byName = append(byName, n)
		}
		if strings.HasPrefix(n.ID, ref) {
			byPrefix = append(byPrefix, n)
		}
	}
	for _, c := range [][]api.Node{byName, byPrefix} {
		switch len(c) {
		case 0:
			continue
		case 1:
			return c[0], nil
		default:
			return api.Node{}, conflict("node %q is ambiguous: %d nodes match", ref, len(c))
		}
	}
	return api.Node{}, notFound("node %s not found", ref)
}

// updateNode applies a node update on the manager.
func (d *Daemon) updateNode(ref string, u api.NodeUpdate) (api.Node, error) {
	avail := ""
	if u.Availability != "" {
		for _, a := range []string{api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain} {
			if strings.EqualFold(u.Availability, a) {
				avail = a
			}
		}
		if avail == "" {
			return api.Node{}, invalid("invalid availability %q: want active, pause or drain", u.Availability)
		}
	}
	n, err := findNode(d.nodeView(), ref)
	if err != nil {
		return api.Node{}, err
	}
	err = d.updateStore(func(s *State) error {
		rec, ok := s.Nodes[n.ID]
		if !ok {
			return notFound("node %s not found", ref)
		}
		if avail != "" && rec.Availability != avail {
			rec.Availability, rec.UpdatedAt = avail, time.Now().UTC()
			s.Nodes[n.ID] = rec
		}
		return nil
	})
	if err != nil {
		return api.Node{}, err
	}
	return findNode(d.nodeView(), n.ID)
}

// removeNode forgets a node, which must be down unless forced; the
// manager cannot remove itself.
func (d *Daemon) removeNode(ref string, force bool) error {
	n, err := findNode(d.nodeView(), ref)
	if err != nil {
		return err
	}
	if n.ID == d.id.ID {
		return conflict("node %s is the manager and cannot be removed", n.Hostname)
	}
	if n.Status != api.StatusDown && !force {
		return conflict("node %s is not down and can't be removed (use --force)", n.Hostname)
	}
	return d.updateStore(func(s *State) error {
		delete(s.Nodes, n.ID)
		return ensureLBAddrs(s)
	})
}

// reachable says whether a member counts as Ready: a suspect is still
// Ready until memberlist declares it dead, as docker shows it.
func reachable(s gossip.MemberState) bool {
	return s == gossip.StateAlive || s == gossip.StateSuspect
}
