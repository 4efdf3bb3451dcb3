package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meshd/meshd/internal/ratelog"
)

// ErrClosed is returned by writes after [DB.Leave] and by every call after
// [DB.Shutdown].
var ErrClosed = errors.New("gossip: db has left the cluster or is shut down")

// maxGossipSize is the largest update, encoded, that goes through gossip.
// memberlist fills UDP packets of 1400 bytes, less its headers, encryption
// overhead and its own membership messages; bigger updates are sent to each
// member over TCP instead.
const maxGossipSize = 1024

// logEvery is how often a repeated warning (a bogus packet from one
// address, a message that does not decode) is logged; the repeats in
// between are counted.
const logEvery = time.Minute

// metaUpdateTimeout bounds how long UpdateMeta waits for the change to be
// gossiped. The change is applied anyway and push/pull carries it later.
const metaUpdateTimeout = 5 * time.Second

// DB is one node's replica of the cluster's tables. See the package
// documentation for the protocol. All methods are safe for concurrent use.
type DB struct {
	cfg      Config
	log      *slog.Logger
	limit    *ratelog.Limiter       // of warnings a peer can provoke
	ml       *memberlist.Memberlist // set before ready is closed
	keyring  *memberlist.Keyring    // nil without encryption
	ready    chan struct{}
	queue    *memberlist.TransmitLimitedQueue
	numAlive atomic.Int32 // alive members, this node included; read by queue

	ctx    context.Context // ends at Shutdown; every goroutine takes it
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine; Shutdown waits
	// lifecycle serializes Leave and Shutdown: memberlist panics on a Leave
	// after Shutdown.
	lifecycle sync.Mutex

	mu       sync.Mutex // guards the fields below
	st       *store
	members  map[string]*memberRecord
	watchers map[*watcher]struct{}
	gens     map[string]uint64 // by table: changes to its live entries (see Generation)
	// state is the last push/pull state encoded, for the store's
	// version stateOf: memberlist asks for it every PushPullInterval,
	// and it is all of the entries.
	state   []byte
	stateOf uint64
	meta    []byte
	left    bool // Leave was called: no more writes or announcements
	closed  bool // Shutdown was called: no more goroutines
}

// New starts a node: memberlist listens on cfg.BindAddr:cfg.BindPort, but
// the node is alone until [DB.Join]. New validates cfg and names the
// offending field in its error. cfg is copied; later changes to it have no
// effect.
func New(cfg Config) (*DB, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.Name),
		limit:    ratelog.New(logEvery),
		ready:    make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		st:       newStore(cfg.Name),
		members:  make(map[string]*memberRecord),
		watchers: make(map[*watcher]struct{}),
		gens:     make(map[string]uint64),
		meta:     cfg.Meta,
	}
	db.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(db.numAlive.Load()) },
		RetransmitMult: cfg.RetransmitMult,
	}
	mc := cfg.memberlistConfig(delegate{db}, events{db}, pings{db}, logWriter{l: cfg.Logger, limit: db.limit, suspect: db.memberSuspect})
	ml, err := memberlist.Create(mc)
	if err != nil {
		db.mu.Lock()
		db.closed = true
		db.mu.Unlock()
		cancel()
		db.wg.Wait()
		return nil, fmt.Errorf("gossip: start memberlist for %s: %w", cfg.Name, err)
	}
	db.ml, db.keyring = ml, mc.Keyring // memberlist makes the keyring from SecretKey
	close(db.ready)
	db.mu.Lock()
	db.goLocked(db.reapLoop)
	db.goLocked(db.reconnectLoop)
	db.mu.Unlock()
	return db, nil
}

// Join contacts the given "ip:port" addresses, exchanges full state with each
// (so this node has every entry when Join returns) and returns how many
// answered. It fails only if none did, and with [ErrClosed] after Leave or
// Shutdown.
func (db *DB) Join(addrs []string) (int, error) {
	db.mu.Lock()
	err := db.writableLocked()
	db.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := db.ml.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("join %s: %w", strings.Join(addrs, ","), err)
	}
	return n, nil
}

// SyncWith exchanges full state with the alive member name now, as
// memberlist's periodic push/pull does with a random one: for a reader
// that knows what it lacks and who has it, instead of waiting up to
// PushPullInterval. It returns once both sides have merged.
func (db *DB) SyncWith(name string) error {
	db.mu.Lock()
	if err := db.writableLocked(); err != nil {
		db.mu.Unlock()
		return err
	}
	r, ok := db.members[name]
	if !ok || !r.State.up() || name == db.cfg.Name {
		db.mu.Unlock()
		return fmt.Errorf("sync with %s: not an alive member", name)
	}
	addr := net.JoinHostPort(r.Addr, strconv.Itoa(r.Port))
	db.mu.Unlock()
	if _, err := db.ml.Join([]string{addr}); err != nil {
		return fmt.Errorf("sync with %s at %s: %w", name, addr, err)
	}
	return nil
}

// Leave tells the cluster this node is going away: the others record it as
// [StateLeft] and drop its entries. It waits up to timeout (≤ 0: no limit)
// for the news to go out. Afterwards writes fail with [ErrClosed]; call
// [DB.Shutdown] next.
func (db *DB) Leave(timeout time.Duration) error {
	db.lifecycle.Lock()
	defer db.lifecycle.Unlock()
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return ErrClosed
	}
	if db.left {
		db.mu.Unlock()
		return nil
	}
	db.left = true
	var done []<-chan struct{}
	for _, r := range db.members {
		if r.Name != db.cfg.Name && r.State.up() {
			done = append(done, db.sendLocked(r.Member, message{Type: msgLeaving, From: db.cfg.Name}))
		}
	}
	db.mu.Unlock()

	var expired <-chan time.Time
	deadline := time.Now().Add(timeout)
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
wait:
	for _, ch := range done {
		select {
		case <-ch:
		case <-expired:
			break wait
		}
	}
	remaining := time.Duration(0) // memberlist: no limit
	if timeout > 0 {
		remaining = max(time.Until(deadline), time.Millisecond)
	}
	if err := db.ml.Leave(remaining); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// Shutdown stops the node without telling anyone (see [DB.Leave]): the
// others declare it dead after failure detection. It closes every watch
// channel and returns once all goroutines have ended. It is safe to call
// more than once, also while Leave runs (it waits for Leave).
func (db *DB) Shutdown() error {
	db.lifecycle.Lock()
	defer db.lifecycle.Unlock()
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	err := db.ml.Shutdown()
	db.cancel()
	db.wg.Wait()
	if err != nil {
		return fmt.Errorf("shutdown memberlist: %w", err)
	}
	return nil
}

// LocalName returns this node's name.
func (db *DB) LocalName() string { return db.cfg.Name }

// LocalAddr returns the address and port this node advertises.
func (db *DB) LocalAddr() (ip string, port int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if r, ok := db.members[db.cfg.Name]; ok {
		return r.Addr, r.Port
	}
	return "", 0
}

// Put writes value at (table, scope, key), owned by this node, and gossips
// it. scope is "" for a cluster-wide entry. value is copied; it may be nil
// and at most [MaxValueSize] bytes.
func (db *DB) Put(table, scope, key string, value []byte) error {
	if err := validKey(table, scope, key); err != nil {
		return err
	}
	if err := validValue(value); err != nil {
		return err
	}
	if len(value) == 0 {
		value = nil // as it arrives elsewhere
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writableLocked(); err != nil {
		return err
	}
	db.applyLocked(db.st.write(entryKey{table, scope, key}, clone(value), false, time.Now()))
	return nil
}

// Delete replaces the live entry at (table, scope, key) by a tombstone owned
// by this node, gossips it, and keeps it for TombstoneTTL. Deleting an absent
// entry does nothing.
func (db *DB) Delete(table, scope, key string) error {
	if err := validKey(table, scope, key); err != nil {
		return err
	}
	k := entryKey{table, scope, key}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writableLocked(); err != nil {
		return err
	}
	if _, ok := db.st.live(k); ok {
		db.applyLocked(db.st.write(k, nil, true, time.Now()))
	}
	return nil
}

// DeleteScope deletes every entry this node owns in scope, in every table:
// what a node does when it leaves a network.
func (db *DB) DeleteScope(scope string) error {
	if err := validScope(scope); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.writableLocked(); err != nil {
		return err
	}
	db.applyLocked(db.st.deleteScope(scope, time.Now()))
	return nil
}

// Get returns the live entry at (table, scope, key).
func (db *DB) Get(table, scope, key string) (Entry, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	e, ok := db.st.live(entryKey{table, scope, key})
	return e.clone(), ok
}

// List returns the live entries of table in scope, sorted by key; with scope
// [AllScopes], those of every scope, sorted by scope then key. It returns
// nil when there are none.
func (db *DB) List(table, scope string) []Entry {
	db.mu.Lock()
	defer db.mu.Unlock()
	out := db.st.entries(func(e Entry) bool {
		return !e.Deleted && e.Table == table && (scope == AllScopes || e.Scope == scope)
	})
	for i := range out {
		out[i] = out[i].clone()
	}
	return out
}

// Generation counts the changes to table's live entries seen so far:
// every create, update and delete, local or gossiped, bumps it. The same
// generation means the same live entries, so a reader that derives
// something from a whole table (a digest, a decode) can skip the work
// while the table's generation stays where it was.
func (db *DB) Generation(table string) uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.gens[table]
}

// UpdateMeta replaces this node's metadata (at most 512 bytes) and gossips
// it. It waits a few seconds at most for the gossip to go out; on timeout the
// change still spreads, and the error says so.
func (db *DB) UpdateMeta(meta []byte) error {
	if len(meta) > memberlist.MetaMaxSize {
		return fmt.Errorf("gossip: meta is %d bytes, limit %d", len(meta), memberlist.MetaMaxSize)
	}
	db.mu.Lock()
	if err := db.writableLocked(); err != nil {
		db.mu.Unlock()
		return err
	}
	db.meta = clone(meta)
	db.mu.Unlock()
	if err := db.ml.UpdateNode(metaUpdateTimeout); err != nil {
		return fmt.Errorf("update meta: %w", err)
	}
	return nil
}

func (db *DB) writableLocked() error {
	if db.closed || db.left {
		return ErrClosed
	}
	return nil
}

// goLocked runs f in a goroutine that Shutdown waits for, unless the DB is
// shutting down. db.mu must be held.
func (db *DB) goLocked(f func(ctx context.Context)) bool {
	if db.closed {
		return false
	}
	db.wg.Add(1)
	go func() {
		defer db.wg.Done()
		f(db.ctx)
	}()
	return true
}

// every runs f every interval until ctx ends: the frame of the
// background loops.
func every(ctx context.Context, interval time.Duration, f func(now time.Time)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}

// reapLoop removes expired tombstones every ReapInterval.
func (db *DB) reapLoop(ctx context.Context) {
	every(ctx, db.cfg.ReapInterval, func(now time.Time) {
		db.mu.Lock()
		n := db.st.reap(now, db.cfg.TombstoneTTL)
		db.mu.Unlock()
		if n > 0 {
			db.log.Debug("reaped tombstones", "count", n)
		}
	})
}
