package manager

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// Config configures a [Manager]. It is copied by [New].
type Config struct {
	// Store is this manager's replica of the state; required.
	Store *Store
	// DB is the gossip store the objects are published into and liveness
	// is read from; required.
	DB records.DB
	// NodeID is this node's ID; required.
	NodeID string
	// APIAddr is where other nodes reach this manager's cluster API and
	// raft (host:port).
	APIAddr string
	// SyncInterval is how often the leader folds gossip membership into
	// its records, reconciles the raft voters with the manager roles and
	// republishes. Zero means 1 s.
	SyncInterval time.Duration
	// RescheduleAfter is how long a node may be Down before its tasks move
	// to other nodes (Swarm waits for its heartbeat period too): a node
	// that only restarts keeps its tasks. Zero means 5 s.
	RescheduleAfter time.Duration
	// GossipKeyRotation is how often the leader rotates the gossip key
	// (Swarm: 12 h). Zero means 12 h; negative never.
	GossipKeyRotation time.Duration
	// Ready checks that a promoted manager answers as one at its cluster
	// address (its cluster port is up with a manager's certificate); it
	// becomes a raft voter only then, since a voter that cannot answer
	// counts against the quorum. Nil skips the check.
	Ready func(addr string) error
	// Logger receives the manager's logs; nil discards them.
	Logger *slog.Logger
}

// Manager checks and applies writes to the replicated state; while it
// leads, it publishes that state into the tables and keeps the node
// records and the raft voters in step.
type Manager struct {
	cfg Config
	log *slog.Logger
	// voters serialises raft configuration changes, which wait for the
	// new manager to answer.
	voters sync.Mutex
	// quiet is the last sync that changed nothing (see syncNodes).
	quiet quietSync
}

// New returns a manager; Run publishes and watches liveness while it leads.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.DB == nil || cfg.NodeID == "" {
		return nil, errors.New("manager: config needs Store, DB and NodeID")
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.RescheduleAfter <= 0 {
		cfg.RescheduleAfter = 5 * time.Second
	}
	if cfg.GossipKeyRotation == 0 {
		cfg.GossipKeyRotation = 12 * time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Manager{cfg: cfg, log: log}, nil
}

// Objects returns a copy of the desired state as this manager has
// applied it.
func (m *Manager) Objects() records.Objects { return m.cfg.Store.Snapshot().Objects }

// State returns a copy of this manager's replica.
func (m *Manager) State() State { return m.cfg.Store.Snapshot() }

// Read returns this manager's replica without copying it, for the reads
// every request makes (who a caller is, its role): shared, read only
// (see Store.Read).
func (m *Manager) Read() State { return m.cfg.Store.Read() }

// Leader returns the leader's node ID and cluster API address, empty when
// there is none.
func (m *Manager) Leader() (id, addr string) { return m.cfg.Store.Leader() }

// NodeID is this manager's node ID.
func (m *Manager) NodeID() string { return m.cfg.NodeID }

// IsLeader says whether this manager leads.
func (m *Manager) IsLeader() bool { return m.cfg.Store.IsLeader() }

// Nodes is node ls as this manager sees it. A manager is Reachable only
// once it is a raft voter and gossip hears it, as Swarm's are.
func (m *Manager) Nodes() []api.Node {
	leader, _ := m.cfg.Store.Leader()
	nodes := records.NodeView(m.cfg.DB, m.cfg.Store.Read().Nodes, m.cfg.NodeID, leader)
	voters := map[string]bool{}
	if servers, err := m.cfg.Store.Servers(); err == nil {
		for _, sv := range servers {
			voters[sv.ID] = sv.Voter
		}
	}
	for i, n := range nodes {
		if n.ManagerStatus == api.ManagerReachable && !voters[n.ID] {
			nodes[i].ManagerStatus = api.ManagerUnreachable
		}
	}
	return nodes
}

// Run publishes and keeps the records in step while this manager leads,
// until ctx ends. A manager that is not the leader only applies the log.
func (m *Manager) Run(ctx context.Context) {
	var pub *records.Publisher // non-nil while leading
	t := time.NewTicker(m.cfg.SyncInterval)
	defer t.Stop()
	// A task's report changing (it ended; its node died and its reports
	// went with it) is acted on at once, not at the next tick; a burst
	// of reports makes one sync.
	reports := m.cfg.DB.Watch(ctx, records.TableTaskStatus)
	// An update waits for the nodes to program its new tasks: their
	// reports move it on at once too.
	programmed := m.cfg.DB.Watch(ctx, records.TableProgrammed)
	for {
		if !m.cfg.Store.IsLeader() {
			pub = nil
		} else {
			if pub == nil {
				// A new leader first applies everything committed before
				// it, so it never publishes a state older than its
				// predecessor did.
				if err := m.cfg.Store.Barrier(10 * time.Second); err != nil {
					m.log.Warn("new leader: wait for the log", "err", err)
				} else {
					m.log.Info("leading: publishing the desired state")
					pub = records.NewPublisher()
				}
			}
			// A new cluster's leader leads before its first state is in.
			if pub != nil && m.cfg.Store.Version() > 0 {
				m.syncNodes(time.Now().UTC())
				go m.syncVoters()
				st := m.cfg.Store.Read()
				if err := pub.Publish(m.cfg.DB, st.Objects, st.Version, st.Trust()); err != nil {
					m.log.Error("publish objects", "err", err)
				}
			}
		}
		var soon <-chan time.Time // set by a report: sync shortly
		// Something due before the next tick (tasks to move off a down
		// node, a restart delay ending) is done on time, not up to a
		// tick late.
		var due <-chan time.Time
		if pub != nil {
			if at := nextDue(m.cfg.Store.Read(), time.Now().UTC(), m.cfg.RescheduleAfter); !at.IsZero() && time.Until(at) < m.cfg.SyncInterval {
				due = time.After(time.Until(at) + 10*time.Millisecond)
			}
		}
		for woken := false; !woken; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				woken = true
			case <-m.cfg.Store.Changed():
				woken = true
			case <-m.cfg.Store.LeaderCh():
				woken = true
			case _, ok := <-reports:
				if !ok {
					reports = nil
				} else if soon == nil {
					soon = time.After(reportsDebounce)
				}
			case _, ok := <-programmed:
				if !ok {
					programmed = nil
				} else if soon == nil && pub != nil && len(m.cfg.Store.Read().Rollouts) > 0 {
					soon = time.After(reportsDebounce)
				}
			case <-soon:
				woken = true
			case <-due:
				woken = true
			}
		}
	}
}

// reportsDebounce gathers a burst of task reports into one sync.
const reportsDebounce = 50 * time.Millisecond

// update changes the state through the log.
func (m *Manager) update(fn func(*State) error) error {
	_, err := m.cfg.Store.Update(fn)
	return err
}

// syncVoters makes the raft configuration follow the manager roles: a
// promoted node is added as a voter, a demoted one removed. Changes are
// made one at a time; a call while one is in progress does nothing.
func (m *Manager) syncVoters() {
	if !m.voters.TryLock() {
		return
	}
	defer m.voters.Unlock()
	servers, err := m.cfg.Store.Servers()
	if err != nil {
		return
	}
	st := m.cfg.Store.Read()
	in := map[string]bool{}
	for _, sv := range servers {
		in[sv.ID] = true
		if n, ok := st.Nodes[sv.ID]; (!ok || n.Role != api.RoleManager) && sv.ID != m.cfg.NodeID {
			m.log.Info("removing a demoted manager from raft", "peer", n.Hostname, "peer_id", sv.ID)
			if err := m.cfg.Store.RemoveServer(sv.ID, 10*time.Second); err != nil {
				m.log.Warn("remove raft voter", "peer_id", sv.ID, "err", err)
			}
		}
	}
	// The leader itself, demoted, goes last: its removal ends its
	// leadership.
	if n, ok := st.Nodes[m.cfg.NodeID]; ok && n.Role != api.RoleManager && in[m.cfg.NodeID] {
		m.log.Info("this manager was demoted: leaving raft")
		if err := m.cfg.Store.RemoveServer(m.cfg.NodeID, 10*time.Second); err != nil {
			m.log.Warn("remove self from raft", "err", err)
		}
		return
	}
	for _, id := range sortedNodeIDs(st) {
		n := st.Nodes[id]
		if n.Role != api.RoleManager || in[id] || n.APIAddr == "" || n.Status != api.StatusReady {
			continue
		}
		if m.cfg.Ready != nil {
			if err := m.cfg.Ready(n.APIAddr); err != nil {
				m.log.Debug("promoted manager not ready yet", "peer", n.Hostname, "err", err)
				continue
			}
		}
		m.log.Info("adding a manager to raft", "peer", n.Hostname, "addr", n.APIAddr)
		if err := m.cfg.Store.AddVoter(id, n.APIAddr, 30*time.Second); err != nil {
			m.log.Warn("add raft voter", "peer", n.Hostname, "err", err)
		}
	}
}

func sortedNodeIDs(st State) []string {
	ids := make([]string, 0, len(st.Nodes))
	for id := range st.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// managerAddrs are the cluster API addresses of the managers, sorted.
func managerAddrs(st State) []string {
	var out []string
	for _, n := range st.Nodes {
		if n.Role == api.RoleManager && n.APIAddr != "" {
			out = append(out, n.APIAddr)
		}
	}
	slices.Sort(out)
	return out
}
