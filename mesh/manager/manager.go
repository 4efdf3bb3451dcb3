package manager

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
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
	// that only restarts keeps its tasks. Zero means 10 s.
	RescheduleAfter time.Duration
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
		cfg.RescheduleAfter = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Manager{cfg: cfg, log: log}, nil
}

// NewCluster returns the first state of a new cluster: its identity and
// secrets, the first manager's node record and the ingress network.
func NewCluster(self api.Node) (State, error) {
	st := State{ClusterID: api.NewID(), WorkerToken: api.NewToken(), ManagerToken: api.NewToken(),
		GossipKey: make([]byte, 32)}
	rand.Read(st.GossipKey) // never fails since Go 1.24
	st.init()
	self.Role = api.RoleManager
	st.Nodes[self.ID] = self
	st.NodeSecrets[self.ID] = api.NewToken()
	if err := addIngress(&st, self.CreatedAt); err != nil {
		return State{}, err
	}
	if err := ensureLBAddrs(&st); err != nil {
		return State{}, err
	}
	return st, nil
}

// Objects returns a copy of the desired state as this manager has applied it.
func (m *Manager) Objects() records.Objects { return m.cfg.Store.Snapshot().Objects }

// State returns a copy of this manager's replica.
func (m *Manager) State() State { return m.cfg.Store.Snapshot() }

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
	nodes := records.NodeView(m.cfg.DB, m.cfg.Store.Snapshot().Nodes, m.cfg.NodeID, leader)
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
			if pub != nil {
				m.syncNodes(time.Now().UTC())
				go m.syncVoters()
				st := m.cfg.Store.Snapshot()
				if err := pub.Publish(m.cfg.DB, st.Objects, st.Version); err != nil {
					m.log.Error("publish objects", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.cfg.Store.Changed():
		case <-m.cfg.Store.LeaderCh():
		}
	}
}

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
	st := m.cfg.Store.Snapshot()
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

// Join admits a node with the role its token gives. It is recorded at
// once, so node ls shows it even before gossip has spread its arrival; a
// manager is added to raft by the leader's loop once it answers there.
func (m *Manager) Join(_ context.Context, req api.JoinRequest, role string) (api.JoinResponse, error) {
	if err := checkJoin(req, m.cfg.NodeID); err != nil {
		return api.JoinResponse{}, err
	}
	if role != api.RoleWorker && role != api.RoleManager {
		return api.JoinResponse{}, api.Invalid("invalid role %q", role)
	}
	now := time.Now().UTC()
	secret := api.NewToken()
	var st State
	err := m.update(func(s *State) error {
		n, ok := s.Nodes[req.ID]
		if !ok {
			n = api.Node{ID: req.ID, Availability: api.AvailabilityActive, CreatedAt: now}
		}
		n.Hostname, n.Role, n.DataPlane, n.Version, n.APIAddr = req.Hostname, role, req.DataPlane, req.Version, req.APIAddr
		n.Addr, n.AddrPrefix, n.Status, n.UpdatedAt = req.Addr, req.AddrPrefix, api.StatusReady, now
		s.Nodes[req.ID] = n
		s.NodeSecrets[req.ID] = secret
		if err := ensureLBAddrs(s); err != nil {
			return err
		}
		st = *s
		return nil
	})
	if err != nil {
		return api.JoinResponse{}, err
	}
	token := st.WorkerToken
	if role == api.RoleManager {
		token = st.ManagerToken
	}
	secrets, err := json.Marshal(api.JoinSecrets{GossipKey: st.GossipKey, NodeSecret: secret})
	if err != nil {
		return api.JoinResponse{}, err
	}
	sealed, err := api.Seal(token, secrets)
	if err != nil {
		return api.JoinResponse{}, err
	}
	m.log.Info("node joined", "joiner", req.Hostname, "joiner_id", req.ID, "addr", req.Addr, "role", role)
	resp := api.JoinResponse{ClusterID: st.ClusterID, Role: role, ManagerID: m.cfg.NodeID, ManagerAddr: m.cfg.APIAddr,
		Managers: managerAddrs(st), Sealed: sealed}
	for _, mb := range m.cfg.DB.Members() {
		if records.Reachable(mb.State) {
			resp.GossipAddrs = append(resp.GossipAddrs, net.JoinHostPort(mb.Addr, strconv.Itoa(mb.Port)))
		}
	}
	return resp, nil
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

// TokenRole says which role a join token gives, or "" for neither.
func (m *Manager) TokenRole(token string) string {
	st := m.cfg.Store.Snapshot()
	switch token {
	case "":
		return ""
	case st.WorkerToken:
		return api.RoleWorker
	case st.ManagerToken:
		return api.RoleManager
	}
	return ""
}

// JoinToken returns the token for role.
func (m *Manager) JoinToken(role string) (api.JoinToken, error) {
	st := m.cfg.Store.Snapshot()
	switch role {
	case api.RoleWorker:
		return api.JoinToken{Role: role, Token: st.WorkerToken, ManagerAddr: m.cfg.APIAddr}, nil
	case api.RoleManager:
		return api.JoinToken{Role: role, Token: st.ManagerToken, ManagerAddr: m.cfg.APIAddr}, nil
	}
	return api.JoinToken{}, api.Invalid("unknown role %q: want worker or manager", role)
}

// RotateJoinToken replaces the token for role: nodes that joined keep
// their place; the old token admits no one.
func (m *Manager) RotateJoinToken(_ context.Context, role string) (api.JoinToken, error) {
	if _, err := m.JoinToken(role); err != nil {
		return api.JoinToken{}, err
	}
	err := m.update(func(s *State) error {
		if role == api.RoleWorker {
			s.WorkerToken = api.NewToken()
		} else {
			s.ManagerToken = api.NewToken()
		}
		return nil
	})
	if err != nil {
		return api.JoinToken{}, err
	}
	return m.JoinToken(role)
}

// NodeSecret returns a node's secret, for the raft transport and for
// signing requests to that node.
func (m *Manager) NodeSecret(id string) (string, bool) {
	s, ok := m.cfg.Store.Snapshot().NodeSecrets[id]
	return s, ok
}

func checkJoin(req api.JoinRequest, self string) error {
	if _, err := netip.ParseAddr(req.Addr); err != nil || req.ID == "" || req.Hostname == "" || req.GossipPort <= 0 || req.GossipPort > 65535 {
		return api.Invalid("join request needs ID, Hostname, Addr and GossipPort")
	}
	if _, err := netip.ParseAddrPort(req.APIAddr); err != nil {
		return api.Invalid("join request needs APIAddr (host:port)")
	}
	if req.ID == self {
		return api.Conflict("node ID %s is this manager's own", req.ID)
	}
	return nil
}
