package manager

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// recordNode creates or refreshes the manager's record of a node.
func (m *Manager) recordNode(id string, meta records.NodeMeta, now time.Time) error {
	return m.update(func(s *State) error {
		n, ok := s.Nodes[id]
		if !ok {
			n = api.Node{ID: id, Availability: api.AvailabilityActive, CreatedAt: now}
		}
		next := n
		next.Hostname, next.Role, next.DataPlane, next.Version = meta.Name, meta.Role, meta.DataPlane, meta.Version
		next.Addr, next.AddrPrefix = addrString(meta.Addr), prefixString(meta.Prefix)
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

// syncNodes folds gossip membership into the records: metadata of
// reachable members, Ready or Down for every record, and the tasks of
// nodes Down too long moved elsewhere.
func (m *Manager) syncNodes(now time.Time) {
	alive := map[string]bool{m.cfg.NodeID: true}
	for _, mb := range m.cfg.DB.Members() {
		alive[mb.Name] = alive[mb.Name] || records.Reachable(mb.State)
		meta, ok := records.DecodeMeta(mb.Meta)
		if !ok || !records.Reachable(mb.State) {
			continue
		}
		if err := m.recordNode(mb.Name, meta, now); err != nil {
			m.log.Error("record node", "peer", meta.Name, "err", err)
		}
	}
	err := m.update(func(s *State) error {
		markLiveness(s, alive, now)
		return rescheduleDown(s, now, m.cfg.RescheduleAfter)
	})
	if err != nil {
		m.log.Error("record node status", "err", err)
	}
}

// markLiveness sets each record Ready or Down, stamping changes.
func markLiveness(s *State, alive map[string]bool, now time.Time) {
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
}

// UpdateNode applies a node update (availability).
func (m *Manager) UpdateNode(_ context.Context, ref string, u api.NodeUpdate) (api.Node, error) {
	avail := ""
	if u.Availability != "" {
		for _, a := range []string{api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain} {
			if strings.EqualFold(u.Availability, a) {
				avail = a
			}
		}
		if avail == "" {
			return api.Node{}, api.Invalid("invalid availability %q: want active, pause or drain", u.Availability)
		}
	}
	n, err := records.FindNode(m.Nodes(), ref)
	if err != nil {
		return api.Node{}, err
	}
	err = m.update(func(s *State) error {
		rec, ok := s.Nodes[n.ID]
		if !ok {
			return api.NotFound("node %s not found", ref)
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
	return records.FindNode(m.Nodes(), n.ID)
}

// RemoveNode forgets a node, which must be down unless forced; the
// manager cannot remove itself.
func (m *Manager) RemoveNode(_ context.Context, ref string, force bool) error {
	n, err := records.FindNode(m.Nodes(), ref)
	if err != nil {
		return err
	}
	if n.ID == m.cfg.NodeID {
		return api.Conflict("node %s is the manager and cannot be removed", n.Hostname)
	}
	if n.Status != api.StatusDown && !force {
		return api.Conflict("node %s is not down and can't be removed (use --force)", n.Hostname)
	}
	return m.update(func(s *State) error {
		delete(s.Nodes, n.ID)
		return ensureLBAddrs(s)
	})
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
