// Package mesh is the node agent and the manager: it wires the gossip
// tables, the cluster API and the local API together, and (in later
// slices) reconciles the kernel towards the tables.
package mesh

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
)

// Files in the run dir.
const (
	socketName   = "meshd.sock"
	stateName    = "state.json" // the manager's objects
	identityName = "node.json"  // every node: who it is, which cluster
	lockName     = "meshd.lock"
)

// nodeMeta travels in memberlist's node metadata (≤ 512 bytes).
type nodeMeta struct {
	Name      string `json:"n"`
	Role      string `json:"r"`
	Addr      string `json:"a"`
	DataPlane string `json:"d"`
	Version   string `json:"v"`
	Prefix    string `json:"p,omitempty"` // advertise address with its interface prefix
}

// Daemon is one running meshd.
type Daemon struct {
	cfg       Config
	log       *slog.Logger
	dataPlane lb.Mode
	lock      *os.File

	// Set once during start, read-only afterwards.
	id    identity
	store *Store // manager only
	db    *gossip.DB
	agent *agent

	// storeChanged wakes the manager's publisher after a write, so a
	// change reaches the tables at once rather than on the next tick.
	storeChanged chan struct{}

	wg sync.WaitGroup
}

// New checks cfg and returns a daemon ready to Run. cfg must not change
// afterwards.
func New(cfg Config) (*Daemon, error) {
	if cfg.RunDir == "" || cfg.NodeName == "" || !cfg.AdvertiseAddr.IsValid() {
		return nil, errors.New("mesh: config needs RunDir, NodeName and AdvertiseAddr (use UserConfig.ToConfig)")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Daemon{cfg: cfg, log: log.With("node", cfg.NodeName), storeChanged: make(chan struct{}, 1)}, nil
}

// Run starts the node, serves until ctx ends, then leaves the cluster
// cleanly. It returns an error when the node cannot start or join.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.lockRunDir(); err != nil {
		return err
	}
	defer d.unlockRunDir()
	mode, reason, err := lb.ChooseMode(d.cfg.LBMode, lb.KernelHasIPVS())
	if err != nil {
		return err
	}
	d.dataPlane = mode
	d.log.Info("data plane chosen", "dataplane", mode, "reason", reason)

	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); d.wg.Wait() }()
	if err := d.start(ctx); err != nil {
		d.stopGossip()
		return err
	}
	defer d.stopGossip()
	ag, err := newAgent(d)
	if err != nil {
		return err
	}
	d.agent = ag
	agentDone := make(chan struct{})
	go func() {
		defer close(agentDone)
		ag.run(ctx)
	}()
	// The agent stops its tasks before gossip goes: deferred calls run last in, first out.
	defer func() { cancel(); <-agentDone }()
	local, err := d.serveLocal(ctx)
	if err != nil {
		return err
	}
	defer local.Close()
	d.log.Info("meshd ready", "role", d.id.Role, "addr", d.cfg.AdvertiseAddr, "socket", d.socketPath())
	<-ctx.Done()
	d.log.Info("shutting down")
	return nil
}

// start decides what this node is (a new cluster's manager, a restarted
// manager, a joining or rejoining worker) and brings gossip up accordingly.
func (d *Daemon) start(ctx context.Context) error {
	id, err := loadIdentity(d.path(identityName))
	if err != nil {
		return err
	}
	d.id = id
	_, statErr := os.Stat(d.path(stateName))
	isManager := statErr == nil
	switch {
	case isManager && d.cfg.Join != "":
		return fmt.Errorf("this node manages cluster %s (state in %s); it cannot join another", d.id.ClusterID, d.cfg.RunDir)
	case isManager:
		return d.restartManager(ctx)
	case d.cfg.Join != "":
		return d.joinCluster(ctx, d.cfg.Join, d.cfg.Token)
	case d.id.Role == api.RoleWorker && d.id.ManagerAddr != "":
		d.log.Info("rejoining cluster", "manager", d.id.ManagerAddr)
		return d.joinCluster(ctx, d.id.ManagerAddr, d.id.Token)
	default:
		return d.initCluster(ctx)
	}
}

func (d *Daemon) path(name string) string { return filepath.Join(d.cfg.RunDir, name) }

func (d *Daemon) socketPath() string { return d.path(socketName) }

func (d *Daemon) isManager() bool { return d.store != nil }

// lockRunDir makes the run dir ours: two daemons on one run dir would fight
// over the same namespaces and state.
func (d *Daemon) lockRunDir() error {
	if err := os.MkdirAll(d.cfg.RunDir, 0o711); err != nil {
		return fmt.Errorf("create run dir %s: %w", d.cfg.RunDir, err)
	}
	f, err := os.OpenFile(d.path(lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open lock %s: %w", d.path(lockName), err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("another meshd is running with run dir %s", d.cfg.RunDir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	d.lock = f
	return nil
}

func (d *Daemon) unlockRunDir() {
	if d.lock != nil {
		d.lock.Close()
	}
}

// newID returns a docker-shaped 25-character node or cluster ID.
func newID() (string, error) {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 25)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate id: %w", err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}

func (d *Daemon) ensureNodeID() error {
	if d.id.ID != "" {
		return nil
	}
	id, err := newID()
	if err != nil {
		return err
	}
	d.id.ID = id
	return nil
}

func (d *Daemon) saveIdentity() error {
	return writeFileAtomic(d.path(identityName), d.id, 0o600)
}

func (d *Daemon) meta() nodeMeta {
	return nodeMeta{Name: d.cfg.NodeName, Role: d.id.Role, Addr: d.cfg.AdvertiseAddr.String(),
		DataPlane: string(d.dataPlane), Version: Version, Prefix: addrPrefix(d.cfg.AdvertiseAddr)}
}

// addrPrefix finds the interface prefix holding addr ("192.168.33.10/24"),
// or addr/32 when no interface has it.
func addrPrefix(addr netip.Addr) string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok && ip == addr {
				ones, _ := ipn.Mask.Size()
				return netip.PrefixFrom(addr, ones).String()
			}
		}
	}
	return netip.PrefixFrom(addr, 32).String()
}

// startGossip brings memberlist up with the key derived from the token.
func (d *Daemon) startGossip(token string) error {
	meta, err := json.Marshal(d.meta())
	if err != nil {
		return fmt.Errorf("encode node meta: %w", err)
	}
	gc := gossip.DefaultConfig()
	gc.Name = d.id.ID
	gc.BindAddr = d.cfg.ListenAddr.Addr().String()
	gc.BindPort = d.cfg.GossipPort
	gc.AdvertiseAddr = d.cfg.AdvertiseAddr.String()
	gc.AdvertisePort = d.cfg.GossipPort
	gc.SecretKey = GossipKey(token)
	gc.Meta = meta
	gc.Logger = d.log.With("component", "gossip")
	db, err := gossip.New(gc)
	if err != nil {
		return fmt.Errorf("start gossip on %s:%d: %w", gc.BindAddr, gc.BindPort, err)
	}
	d.db = db
	return nil
}

func (d *Daemon) stopGossip() {
	if d.db == nil {
		return
	}
	if err := d.db.Leave(2 * time.Second); err != nil {
		d.log.Warn("leave cluster", "err", err)
	}
	if err := d.db.Shutdown(); err != nil {
		d.log.Warn("stop gossip", "err", err)
	}
	d.db = nil
}

// serveLocal answers the root-only unix socket.
func (d *Daemon) serveLocal(ctx context.Context) (io.Closer, error) {
	sock := d.socketPath()
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", sock, err)
	}
	old := syscall.Umask(0o177) // the socket is created 0600: root only
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", sock, err)
	}
	srv := &http.Server{Handler: d.localHandler(), ReadHeaderTimeout: 10 * time.Second}
	d.goServe(ctx, srv, ln, "local api")
	return closerFunc(func() error { os.Remove(sock); return nil }), nil
}

// goServe runs srv on ln until ctx ends.
func (d *Daemon) goServe(ctx context.Context, srv *http.Server, ln net.Listener, what string) {
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("serve "+what, "err", err)
		}
	}()
	go func() {
		defer d.wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
