package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// State is what the managers replicate: the cluster's identity and
// secrets, its objects and their allocations.
type State struct {
	// Version counts the writes applied; publishers stamp the tables with
	// it so nodes can tell a newer desired state from an older one.
	Version      uint64 `json:"Version"`
	ClusterID    string `json:"ClusterID"`
	WorkerToken  string `json:"WorkerToken"`
	ManagerToken string `json:"ManagerToken"`
	// CACerts are the roots nodes trust, the one that signs first; more
	// than one while a CA rotation is under way. CAKey is the signer's
	// key (PKCS #8): managers only, never published.
	CACerts [][]byte `json:"CACerts"`
	CAKey   []byte   `json:"CAKey"`
	// CertExpiry is the lifetime of the node certificates issued.
	CertExpiry time.Duration `json:"CertExpiry"`
	// GossipKeys encrypt memberlist traffic (AES-256), the primary first.
	// GossipRotation is the step of a rotation under way (0: none), and
	// GossipRotatedAt when the last one started.
	GossipKeys      [][]byte  `json:"GossipKeys"`
	GossipRotation  int       `json:"GossipRotation"`
	GossipRotatedAt time.Time `json:"GossipRotatedAt"`
	// Trusted is, by node, the trust (see [State.Trust]) the node last
	// received at join or renewal: a rotation moves on once every node
	// has the current one.
	Trusted map[string]string `json:"Trusted"`
	// Rollouts are the updates and rollbacks under way, by service ID.
	Rollouts map[string]Rollout `json:"Rollouts,omitempty"`
	records.Objects
	IPAM *ipam.Allocator `json:"IPAM"`
}

func (s *State) init() {
	s.Objects.Init()
	if s.Trusted == nil {
		s.Trusted = map[string]string{}
	}
	if s.Rollouts == nil {
		s.Rollouts = map[string]Rollout{}
	}
	if s.IPAM == nil {
		a, err := ipam.New(ipam.DefaultConfig())
		if err != nil {
			panic(fmt.Sprintf("manager: default ipam config refused: %v", err)) // a programming error
		}
		s.IPAM = a
	}
}

// clone deep-copies the state through its JSON form: the state is small,
// and a copy that cannot forget a field is worth the cost.
func (s State) clone() State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("manager: state does not survive its own JSON: %v", err)) // a programming error
	}
	return mustDecodeState(b)
}

// decodeState decodes a state from its JSON, with its maps made.
func decodeState(b []byte) (State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, err
	}
	s.init()
	return s, nil
}

// mustDecodeState decodes JSON that a state was just encoded to.
func mustDecodeState(b []byte) State {
	s, err := decodeState(b)
	if err != nil {
		panic(fmt.Sprintf("manager: state does not survive its own JSON: %v", err)) // a programming error
	}
	return s
}

// ErrNotLeader is returned by [Store.Update] on a manager that is not the
// leader: the write must go to the leader.
var ErrNotLeader = errors.New("not the raft leader")

// StoreConfig configures a [Store].
type StoreConfig struct {
	// NodeID is this manager's node ID: its raft server ID. Required.
	NodeID string
	// Dir holds the raft log, stable store and snapshots; empty keeps
	// everything in memory (tests).
	Dir string
	// Transport carries raft between managers; nil makes an in-memory
	// transport (tests, see [ConnectInmem]).
	Transport raft.Transport
	// Fast shortens raft's timeouts for tests on one machine.
	Fast bool
	// ApplyTimeout bounds a write waiting for a quorum; zero means 5 s.
	ApplyTimeout time.Duration
	// LeaderChanged, if set, is told the node ID of each new leader this
	// manager learns of ("" while there is none), from one goroutine.
	LeaderChanged func(id string)
	Logger        *slog.Logger
}

// Store is the replicated state: a raft node and its state machine. Every
// manager has one; only the leader's Update succeeds, and every
// manager's Snapshot is the state its log has applied.
type Store struct {
	cfg   StoreConfig
	fsm   *fsm
	raft  *raft.Raft
	trans raft.Transport
	close []func() error

	// writeMu serialises writes on the leader, so a command is always
	// computed against the state it will be applied to. written is the
	// state the last write proposed, split: the next one starts from it
	// when the applied state encodes to the same bytes (a create and a
	// remove at 1000 services: 54-59 ms with it, 67 without).
	writeMu sync.Mutex
	written *encodedState
}

// OpenStore starts this manager's raft node over what Dir holds. A new
// store has no configuration: call [Store.Bootstrap] on the first manager
// of a new cluster; a manager joining one is added by the leader.
func OpenStore(cfg StoreConfig) (*Store, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("manager store: config needs NodeID")
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Store{cfg: cfg, fsm: newFSM()}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = newRaftLogger(cfg.Logger)
	// Snapshot often: the state is small, and a joining manager then
	// catches up from one snapshot rather than the whole log.
	rc.SnapshotThreshold, rc.TrailingLogs = 256, 512
	if cfg.Fast {
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
	}
	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.Dir == "" {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("raft dir %s: %w", cfg.Dir, err)
		}
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", filepath.Join(cfg.Dir, "raft.db"), err)
		}
		s.close = append(s.close, bolt.Close)
		fss, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, rc.Logger)
		if err != nil {
			_ = bolt.Close()
			return nil, fmt.Errorf("raft snapshots in %s: %w", cfg.Dir, err)
		}
		logs, stable, snaps = bolt, bolt, fss
	}
	s.trans = cfg.Transport
	if s.trans == nil {
		_, s.trans = raft.NewInmemTransport(raft.ServerAddress(cfg.NodeID))
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, stable, snaps, s.trans)
	if err != nil {
		s.closeStores()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	s.raft = r
	if cfg.LeaderChanged != nil {
		s.observeLeader(cfg.LeaderChanged)
	}
	return s, nil
}

// observeLeader calls fn with each leader raft observes, until Close.
// raft drops observations a slow observer has not taken, so a burst of
// elections may be reported by its last leader only.
func (s *Store) observeLeader(fn func(id string)) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(obs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := "\x00" // no leader reported yet
		for o := range ch {
			if id := string(o.Data.(raft.LeaderObservation).LeaderID); id != last {
				last = id
				fn(id)
			}
		}
	}()
	s.close = append(s.close, func() error {
		s.raft.DeregisterObserver(obs)
		close(ch)
		<-done
		return nil
	})
}

// Bootstrap makes this manager the only voter of a new cluster, with st
// as its first state. It fails on a store that already has a
// configuration.
func (s *Store) Bootstrap(addr string, st State) error {
	cfg := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(s.cfg.NodeID), Address: raft.ServerAddress(addr)}}}
	if err := s.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("bootstrap raft: %w", err)
	}
	if err := s.WaitLeader(10 * time.Second); err != nil {
		return err
	}
	st.init()
	return s.Replace(st)
}

// Replace writes a whole state (bootstrap and migration) through the log.
func (s *Store) Replace(st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.propose(command{Base: s.Version(), Replace: b})
}

// Snapshot returns a deep copy of the state this manager has applied, for
// a caller that changes it.
func (s *Store) Snapshot() State { return s.fsm.state() }

// Read returns the state this manager has applied, shared: a state is
// never changed once applied (a command makes a new one), so reading it
// needs no copy, but the caller must not change it.
func (s *Store) Read() State {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.st
}

// Version is the version of the state this manager has applied.
func (s *Store) Version() uint64 {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.st.Version
}

// WaitVersion waits until this manager has applied version v, or ctx ends
// or 5 s pass; a follower calls it after forwarding a write so that a read
// that follows sees the write.
func (s *Store) WaitVersion(ctx context.Context, v uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.Version() < v {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the write is done, but this manager has not applied it yet: %w", ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// Changed is signalled after every applied change, without blocking.
func (s *Store) Changed() <-chan struct{} { return s.fsm.changed }

// Update applies fn to a copy of the state and, when fn succeeds and
// changed something, replicates the change to a quorum before it is
// current. A failed fn or write changes nothing. It reports whether the
// state changed. Only the leader writes: elsewhere it returns
// [ErrNotLeader].
func (s *Store) Update(fn func(*State) error) (bool, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.raft.State() != raft.Leader {
		return false, ErrNotLeader
	}
	cur, curJSON, err := s.fsm.encoded()
	if err != nil {
		return false, err
	}
	next := mustDecodeState(curJSON) // a deep copy of cur
	if err := fn(&next); err != nil {
		return false, err
	}
	nextJSON, err := json.Marshal(next)
	if err != nil {
		return false, fmt.Errorf("encode state: %w", err)
	}
	if bytes.Equal(curJSON, nextJSON) { // the same encoder, keys sorted: nothing changed
		return false, nil
	}
	a := s.written
	if a == nil || !sameButVersion(a.raw, curJSON) {
		if a, err = splitState(curJSON); err != nil {
			return false, err
		}
	}
	b, err := splitState(nextJSON)
	if err != nil {
		return false, err
	}
	cmd, err := diffJSON(cur.Version, a, b)
	if err != nil {
		return false, err
	}
	if cmd.empty() {
		return false, nil
	}
	s.written = nil
	if err := s.propose(cmd); err != nil {
		return false, err
	}
	s.written = b
	return true, nil
}

// sameButVersion says whether two encoded states are the same but for
// their Version, which a state's JSON starts with.
func sameButVersion(a, b []byte) bool {
	rest := func(b []byte) ([]byte, bool) {
		v, ok := bytes.CutPrefix(b, []byte(`{"Version":`))
		i := bytes.IndexByte(v, ',')
		if !ok || i < 1 || len(bytes.TrimLeft(v[:i], "0123456789")) > 0 {
			return nil, false
		}
		return v[i:], true
	}
	x, ok := rest(a)
	y, ok2 := rest(b)
	return ok && ok2 && bytes.Equal(x, y)
}

// propose replicates cmd and waits until it is applied here.
func (s *Store) propose(cmd command) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("encode command: %w", err)
	}
	f := s.raft.Apply(b, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return raftError(err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

// raftError turns raft's failures into what a caller is told: without a
// leader or a quorum, docker's "does not have a leader".
func raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrAbortedByRestore):
		return api.ErrNoLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return api.Errorf(http.StatusServiceUnavailable, "this manager is shutting down")
	}
	return fmt.Errorf("replicate: %w", err)
}

// IsLeader says whether this manager leads.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's node ID and raft address, empty when there
// is none that this manager knows.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// WaitLeader waits until some manager leads (this one or another).
func (s *Store) WaitLeader(timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, _ := s.Leader(); id != "" {
			return nil
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("no raft leader after %s", timeout)
		case <-tick.C:
		}
	}
}

// Barrier waits until every entry committed before it is applied here: a
// new leader calls it before publishing, so it never publishes a state
// older than one a former leader published.
func (s *Store) Barrier(timeout time.Duration) error {
	return raftError(s.raft.Barrier(timeout).Error())
}

// LeaderCh reports this manager gaining and losing leadership.
func (s *Store) LeaderCh() <-chan bool { return s.raft.LeaderCh() }

// Server is one member of the raft configuration.
type Server struct {
	ID, Addr string
	Voter    bool
}

// Servers returns the raft configuration as this manager knows it.
func (s *Store) Servers() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	var out []Server
	for _, sv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(sv.ID), Addr: string(sv.Address), Voter: sv.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddVoter adds a manager to the configuration (leader only); it returns
// once the change is committed, which needs the new manager to answer.
func (s *Store) AddVoter(id, addr string, timeout time.Duration) error {
	return raftError(s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout).Error())
}

// RemoveServer takes a manager out of the configuration (leader only).
func (s *Store) RemoveServer(id string, timeout time.Duration) error {
	return raftError(s.raft.RemoveServer(raft.ServerID(id), 0, timeout).Error())
}

// Close stops raft and closes its files.
func (s *Store) Close() error {
	err := s.raft.Shutdown().Error()
	if c, ok := s.trans.(io.Closer); ok {
		_ = c.Close()
	}
	s.closeStores()
	return err
}

func (s *Store) closeStores() {
	for _, c := range s.close {
		_ = c()
	}
	s.close = nil
}
