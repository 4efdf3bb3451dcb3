package manager

import (
	"context"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// recordNode refreshes the record of a node that joined from what it
// gossips of itself (a restart with another data plane, gossip or data
// path port). Its role is the state's, never its own say: promote and
// demote change it. A name no join would have accepted is not taken.
func (m *Manager) recordNode(mb gossip.Member, meta records.NodeMeta, now time.Time) error {
	// Read first: members say the same thing every second, and a write
	// that changes nothing still copies the whole state.
	if n, ok := m.cfg.Store.Read().Nodes[mb.Name]; !ok || reflect.DeepEqual(nodeRecord(n, mb, meta), n) {
		return nil
	}
	return m.update(func(s *State) error {
		n, ok := s.Nodes[mb.Name]
		if !ok {
			return nil // not admitted (or removed): gossip alone admits no one
		}
		next := nodeRecord(n, mb, meta)
		if reflect.DeepEqual(next, n) {
			return nil
		}
		next.UpdatedAt = now
		s.Nodes[mb.Name] = next
		return nil
	})
}

// nodeRecord is n updated with what the member gossips of itself.
func nodeRecord(n api.Node, mb gossip.Member, meta records.NodeMeta) api.Node {
	next := n
	if objectName.MatchString(meta.Name) {
		next.Hostname = meta.Name
	}
	next.DataPlane, next.Version = api.Cut(meta.DataPlane, api.MaxRefLen), api.Cut(meta.Version, api.MaxRefLen)
	next.Addr, next.AddrPrefix = addrString(meta.Addr), prefixString(meta.Prefix)
	next.GossipPort = mb.Port
	if meta.DataPathPort > 0 { // a node that does not say keeps what it said
		next.DataPathPort = meta.DataPathPort
	}
	return next
}

// syncNodes folds gossip membership into the records: metadata of
// reachable members, Ready or Down for every record, the tasks that ended
// shut down, the tasks of nodes Down too long or drained moved elsewhere,
// and pending slots placed (restarts due included).
func (m *Manager) syncNodes(now time.Time) {
	alive := map[string]bool{m.cfg.NodeID: true}
	for _, mb := range m.cfg.DB.Members() {
		alive[mb.Name] = alive[mb.Name] || records.Reachable(mb.State)
		meta, ok := records.DecodeMeta(mb.Meta)
		if !ok || !records.Reachable(mb.State) {
			continue
		}
		if err := m.recordNode(mb, meta, now); err != nil {
			m.log.Error("record node", "peer", meta.Name, "err", err)
		}
	}
	inputs := m.inputsOf(alive)
	if m.stillQuiet(inputs, now) {
		return
	}
	var before, after string
	statuses := records.TaskStatuses(m.cfg.DB)
	r := nodeReports{statuses: statuses, programmed: records.Programmed(m.cfg.DB)}
	changed, err := m.cfg.Store.Update(func(s *State) error {
		markLiveness(s, alive, now)
		before = s.Trust()
		advanceTrust(s)
		if due := gossipRotationDue(s, m.cfg.GossipKeyRotation); !due.IsZero() && !now.Before(due) {
			s.GossipKeys = append(s.GossipKeys[:1:1], newGossipKey())
			s.GossipRotation, s.GossipRotatedAt = gossipKeyAdded, now
		}
		after = s.Trust()
		// Tasks that ended become history first: their slots are then
		// restarted as the policy says, with the pending ones.
		if err := reapTasks(s, statuses, now); err != nil {
			return err
		}
		if err := rescheduleDown(s, now, m.cfg.RescheduleAfter); err != nil {
			return err
		}
		// UpdateNode moves a drained node's tasks in its own write; this
		// converges if a placement raced it, and places the slots left
		// pending once a node can take them.
		if err := rescheduleDrained(s, now); err != nil {
			return err
		}
		if err := rescheduleUnfit(s, now); err != nil {
			return err
		}
		// Updates move on before the pending slots are placed: a new task
		// that failed pauses its update rather than restart at once.
		if err := advanceUpdates(s, r, now); err != nil {
			return err
		}
		return fillPending(s, now)
	})
	if err == nil && !changed {
		m.quietUntil(inputs, now)
	}
	if err != nil {
		m.log.Error("record node status", "err", err)
	} else if before != after {
		st := m.cfg.Store.Read()
		m.log.Info("trust changed: nodes renew their certificates", "trust", after, "roots", len(st.CACerts),
			"gossip_keys", len(st.GossipKeys), "gossip_rotation_step", st.GossipRotation)
	}
}

// quietSync is what a sync that changed nothing was computed from: while
// none of it moves and nothing falls due, the next sync would change
// nothing either, and at 1000 services each costs the leader 10-14 ms (a
// copy of the state, the checks, its encoding: BenchmarkIdleSync), once a
// second. Only syncNodes touches it, and only Run's goroutine calls that.
type quietSync struct {
	inputs syncInputs
	at     time.Time // when it ran
	until  time.Time // when something falls due (nextDue), at most quietFor after at; zero: no quiet sync
}

// syncInputs is what syncNodes reads besides the clock: the state's
// version, the generations of the task reports it acts on, and the
// reachable members.
type syncInputs struct {
	version                  uint64
	statusGen, programmedGen uint64
	alive                    string
}

// quietFor bounds how long syncs are skipped on the strength of nextDue
// alone: a time-driven change it did not foresee comes at most this late.
const quietFor = 5 * time.Second

// inputsOf returns the sync's inputs now, alive being the reachable
// members.
func (m *Manager) inputsOf(alive map[string]bool) syncInputs {
	var names []string
	for id, ok := range alive {
		if ok {
			names = append(names, id)
		}
	}
	slices.Sort(names)
	return syncInputs{version: m.cfg.Store.Version(), statusGen: m.cfg.DB.Generation(records.TableTaskStatus),
		programmedGen: m.cfg.DB.Generation(records.TableProgrammed), alive: strings.Join(names, ",")}
}

// stillQuiet says whether the last sync changed nothing, was computed
// from the same inputs, and nothing has fallen due since.
func (m *Manager) stillQuiet(in syncInputs, now time.Time) bool {
	q := m.quiet
	return q.inputs == in && !now.Before(q.at) && now.Before(q.until)
}

// quietUntil records a sync that changed nothing.
func (m *Manager) quietUntil(in syncInputs, now time.Time) {
	until := now.Add(quietFor)
	st := m.cfg.Store.Read()
	if due := nextDue(st, now, m.cfg.RescheduleAfter); !due.IsZero() && due.Before(until) {
		until = due
	}
	if due := gossipRotationDue(&st, m.cfg.GossipKeyRotation); !due.IsZero() && due.Before(until) {
		until = due
	}
	m.quiet = quietSync{inputs: in, at: now, until: until}
}

// gossipRotationDue is when the next gossip key rotation is to start,
// every after the last one; zero when none is (rotation off, no keys yet,
// or one under way).
func gossipRotationDue(s *State, every time.Duration) time.Time {
	if every <= 0 || len(s.GossipKeys) == 0 || s.GossipRotation != 0 {
		return time.Time{}
	}
	return s.GossipRotatedAt.Add(every)
}

// nextDue is the earliest time after now at which a sync has something to
// do that no event announces: a down node's tasks to move (after
// RescheduleAfter), a slot's restart delay ending or a restart leaving its
// window, or an update's delay between batches or monitor period ending.
// Zero if none.
func nextDue(s State, now time.Time, after time.Duration) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	type slot struct {
		svc  string
		n    int
		node string // a global task's slot is its node's
	}
	key := func(t api.Task) slot {
		if t.Slot == 0 {
			return slot{t.ServiceID, 0, t.NodeID}
		}
		return slot{t.ServiceID, t.Slot, ""}
	}
	current := map[slot]bool{}
	downWithTasks := map[string]bool{}
	for _, t := range s.Tasks {
		if t.Current() && t.Standalone == nil { // a container never moves
			current[key(t)] = true
			if n, ok := s.Nodes[t.NodeID]; ok && n.Status == api.StatusDown {
				downWithTasks[t.NodeID] = true
			}
		}
	}
	for id := range downWithTasks {
		consider(s.Nodes[id].UpdatedAt.Add(after))
	}
	for _, t := range s.Tasks {
		if !t.Current() && !t.EndedAt.IsZero() && !current[key(t)] {
			if svc, ok := s.Services[t.ServiceID]; ok && t.Slot <= svc.Replicas {
				p := svc.RestartPolicy
				consider(t.EndedAt.Add(p.Delay))
				// A slot that used its attempts within the window may
				// restart once a restart leaves it (recentRestarts).
				if p.MaxAttempts > 0 && p.Window > 0 && t.Restarts > 0 {
					consider(t.CreatedAt.Add(p.Window))
				}
			}
		}
	}
	for _, ro := range s.Rollouts {
		consider(ro.NextBatchAt)
		for _, until := range ro.Watched {
			consider(until)
		}
	}
	return next
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

// UpdateNode applies a node update: availability, labels, or a role
// (node promote and demote). Everything is checked before anything is
// kept.
func (m *Manager) UpdateNode(_ context.Context, ref string, u api.NodeUpdate) (api.Node, error) {
	if err := u.CheckSizes(); err != nil {
		return api.Node{}, err
	}
	if u.Role != "" && u.Role != api.RoleManager && u.Role != api.RoleWorker {
		return api.Node{}, api.Invalid("invalid role %s: want manager or worker", api.Quote(u.Role))
	}
	avail := ""
	if u.Availability != "" {
		for _, a := range []string{api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain} {
			if strings.EqualFold(u.Availability, a) {
				avail = a
			}
		}
		if avail == "" {
			return api.Node{}, api.Invalid("invalid availability %s: want active, pause or drain", api.Quote(u.Availability))
		}
	}
	n, err := records.FindNode(m.Nodes(), ref)
	if err != nil {
		return api.Node{}, err
	}
	err = m.update(func(s *State) error {
		rec, ok := s.Nodes[n.ID]
		if !ok {
			return api.NotFound("node %s not found", api.Clip(ref))
		}
		now := time.Now().UTC()
		next, err := nodeUpdated(rec, u, avail)
		if err != nil {
			return err
		}
		if next.Role != rec.Role {
			if err := checkRoleChange(s, rec, next.Role, m.alive()); err != nil {
				return err
			}
		}
		if reflect.DeepEqual(next, rec) {
			return nil
		}
		next.UpdatedAt = now
		s.Nodes[n.ID] = next
		return replaceForNode(s, now)
	})
	if err != nil {
		return api.Node{}, err
	}
	return records.FindNode(m.Nodes(), n.ID)
}

// nodeUpdated is rec with the update applied: labels added, then removed
// (docker's order; removing a key the node lacks is docker's error),
// availability (already checked) and role.
func nodeUpdated(rec api.Node, u api.NodeUpdate, avail string) (api.Node, error) {
	next := rec
	if len(u.LabelAdd) > 0 || len(u.LabelRm) > 0 {
		labels := maps.Clone(rec.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, u.LabelAdd)
		for _, k := range u.LabelRm {
			if _, ok := labels[k]; !ok {
				return rec, api.Invalid("key %s doesn't exist in node's labels", api.Quote(k))
			}
			delete(labels, k)
		}
		if err := checkLabels(u.LabelAdd, u.LabelRm, labels); err != nil {
			return rec, err
		}
		next.Labels = labels
		if len(labels) == 0 {
			next.Labels = nil
		}
	}
	if avail != "" {
		next.Availability = avail
	}
	if u.Role != "" {
		next.Role = u.Role
	}
	return next, nil
}

// replaceForNode places tasks again after a node changed, in the same
// write: a drained node's tasks go elsewhere, tasks whose node no longer
// satisfies their constraints move, and a node made active (or given a
// matching label) takes pending slots and global tasks. Tasks that run
// elsewhere stay there: Swarm does not rebalance.
func replaceForNode(s *State, now time.Time) error {
	if err := rescheduleDrained(s, now); err != nil {
		return err
	}
	if err := rescheduleUnfit(s, now); err != nil {
		return err
	}
	return fillPending(s, now)
}

// alive is who gossip says is reachable, this manager included.
func (m *Manager) alive() map[string]bool {
	alive := map[string]bool{m.cfg.NodeID: true}
	for _, mb := range m.cfg.DB.Members() {
		alive[mb.Name] = alive[mb.Name] || records.Reachable(mb.State)
	}
	return alive
}

// checkRoleChange refuses a promotion the node cannot carry out and a
// demotion that would leave the cluster without a manager or a quorum,
// as Swarm does.
func checkRoleChange(s *State, n api.Node, role string, alive map[string]bool) error {
	if role == api.RoleManager {
		if _, ok := s.Trusted[n.ID]; !ok || n.APIAddr == "" {
			return api.Conflict("node %s has no certificate from this cluster's CA: make it leave and join again, then promote it", n.Hostname)
		}
		if !alive[n.ID] {
			return api.Conflict("node %s is down and can't be promoted", n.Hostname)
		}
		return nil
	}
	total, up := 0, 0
	for id, o := range s.Nodes {
		if o.Role != api.RoleManager || id == n.ID {
			continue
		}
		total++
		if alive[id] {
			up++
		}
	}
	if total == 0 {
		return api.Conflict("can't demote %s: it is the last manager of the swarm", n.Hostname)
	}
	if up < total/2+1 {
		return api.Conflict("can't demote %s: it would result in loss of quorum (%d of the %d remaining managers reachable)", n.Hostname, up, total)
	}
	return nil
}

// RemoveNode forgets a node, which must be down unless forced; the
// manager cannot remove itself.
func (m *Manager) RemoveNode(_ context.Context, ref string, force bool) error {
	n, err := records.FindNode(m.Nodes(), ref)
	if err != nil {
		return err
	}
	if n.Role == api.RoleManager {
		return api.Conflict("node %s is a manager: demote it before removing it", n.Hostname)
	}
	if n.Status != api.StatusDown && !force {
		return api.Conflict("node %s is not down and can't be removed (use --force)", n.Hostname)
	}
	return m.update(func(s *State) error {
		delete(s.Nodes, n.ID)
		delete(s.Trusted, n.ID)
		if err := removeNodeContainers(s, n.ID); err != nil {
			return err
		}
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
