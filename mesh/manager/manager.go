package manager

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// Config configures a [Manager]. It is copied by [New].
type Config struct {
	// Store holds the state; required. The manager is its only writer.
	Store *Store
	// DB is the gossip store the objects are published into and liveness
	// is read from; required.
	DB records.DB
	// NodeID is this node's ID; required.
	NodeID string
	// APIAddr is where other nodes reach this manager's cluster API
	// (host:port), returned to joining nodes.
	APIAddr string
	// SyncInterval is how often the manager folds gossip membership into
	// its records and republishes. Joins are recorded at once by the join
	// call; this catches metadata changes (a node restarted with another
	// data plane) and liveness. Zero means 1 s.
	SyncInterval time.Duration
	// RescheduleAfter is how long a node may be Down before its tasks move
	// to other nodes (Swarm waits for its heartbeat period too): a node
	// that only restarts keeps its tasks. Zero means 10 s.
	RescheduleAfter time.Duration
	// Logger receives the manager's logs; nil discards them.
	Logger *slog.Logger
}

// Manager checks and applies writes to the desired state and publishes it.
type Manager struct {
	cfg Config
	log *slog.Logger
	// changed wakes the publisher after a write, so a change reaches the
	// tables at once rather than on the next tick.
	changed chan struct{}
}

// New returns a manager; Run publishes and watches liveness.
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
	return &Manager{cfg: cfg, log: log, changed: make(chan struct{}, 1)}, nil
}

// Bootstrap records a new cluster in an empty store: its identity, the
// manager's own node, the ingress network and the node's ingress address.
func Bootstrap(store *Store, clusterID, token string, self api.Node) error {
	_, err := store.Update(func(s *State) error {
		s.ClusterID, s.Token, s.ManagerID = clusterID, token, self.ID
		s.Nodes[self.ID] = self
		if err := addIngress(s, self.CreatedAt); err != nil {
			return err
		}
		return ensureLBAddrs(s)
	})
	return err
}

// Objects returns a copy of the desired state.
func (m *Manager) Objects() records.Objects { return m.cfg.Store.Snapshot().Objects }

// Nodes is node ls as the manager sees it.
func (m *Manager) Nodes() []api.Node {
	return records.NodeView(m.cfg.DB, m.cfg.Store.Snapshot().Nodes, m.cfg.NodeID)
}

// Run keeps the node records in step with gossip and publishes the
// objects, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	pub := records.NewPublisher()
	t := time.NewTicker(m.cfg.SyncInterval)
	defer t.Stop()
	for {
		m.syncNodes(time.Now().UTC())
		if err := pub.Publish(m.cfg.DB, m.Objects(), 0); err != nil { // not a counter: it would restart lower, and readers refuse an older head
			m.log.Error("publish objects", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.changed:
		}
	}
}

// update changes the state and wakes the publisher.
func (m *Manager) update(fn func(*State) error) error {
	changed, err := m.cfg.Store.Update(fn)
	if err != nil || !changed {
		return err
	}
	select {
	case m.changed <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// Join admits a node: it is recorded at once, so node ls shows it even
// before gossip has spread its arrival.
func (m *Manager) Join(_ context.Context, req api.JoinRequest) (api.JoinResponse, error) {
	if err := checkJoin(req, m.cfg.NodeID); err != nil {
		return api.JoinResponse{}, err
	}
	meta := records.NodeMeta{Name: req.Hostname, Role: api.RoleWorker, DataPlane: req.DataPlane, Version: req.Version}
	meta.Addr, _ = netip.ParseAddr(req.Addr)
	meta.Prefix, _ = netip.ParsePrefix(req.AddrPrefix)
	if err := m.recordNode(req.ID, meta, time.Now().UTC()); err != nil {
		return api.JoinResponse{}, err
	}
	m.log.Info("node joined", "joiner", req.Hostname, "joiner_id", req.ID, "addr", req.Addr)
	resp := api.JoinResponse{ClusterID: m.cfg.Store.Snapshot().ClusterID, ManagerID: m.cfg.NodeID, ManagerAddr: m.cfg.APIAddr}
	for _, mb := range m.cfg.DB.Members() {
		if records.Reachable(mb.State) {
			resp.GossipAddrs = append(resp.GossipAddrs, net.JoinHostPort(mb.Addr, strconv.Itoa(mb.Port)))
		}
	}
	return resp, nil
}

func checkJoin(req api.JoinRequest, self string) error {
	if _, err := netip.ParseAddr(req.Addr); err != nil || req.ID == "" || req.Hostname == "" || req.GossipPort <= 0 || req.GossipPort > 65535 {
		return api.Invalid("join request needs ID, Hostname, Addr and GossipPort")
	}
	if req.ID == self {
		return api.Conflict("node ID %s is the manager's own", req.ID)
	}
	return nil
}
