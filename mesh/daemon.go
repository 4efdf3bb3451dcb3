// Package mesh is meshd's wiring: it reads the configuration, locks the
// run dir, serves the unix socket, and takes the node in and out of a
// cluster (swarm init, join, leave, promote, demote, and a restart from
// what the run dir holds). A node in a cluster runs a session: gossip,
// the node agent (mesh/agent) and, on a manager, a raft replica with the
// manager (mesh/manager) and the cluster port. The API server
// (mesh/apiserver) answers both sockets; the cluster's records live in
// mesh/records.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/internal/atomicfile"
	"github.com/meshd/meshd/internal/ratelog"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/apiserver"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/capture"
	"github.com/meshd/meshd/mesh/container"
	"github.com/meshd/meshd/mesh/events"
	"github.com/meshd/meshd/mesh/metrics"
)

// Files in the run dir.
const (
	socketName     = "meshd.sock"
	legacyState    = "state.json" // a single manager's objects before raft: migrated on start
	identityName   = "node.json"  // every node: who it is, which cluster, its secrets
	lockName       = "meshd.lock"
	raftDirName    = "raft"         // a manager's raft log and snapshots
	desiredName    = "desired.json" // the last desired state the agent verified
	roleCheckEvery = time.Second
)

// identity is what every node keeps about itself in its run dir (0600),
// so that a restart comes back as the same node of the same cluster
// without asking a manager.
type identity struct {
	ID            string `json:"ID"`
	ClusterID     string `json:"ClusterID,omitempty"`
	Role          string `json:"Role,omitempty"`
	AdvertiseAddr string `json:"AdvertiseAddr,omitempty"`
	// The node's key (PKCS #8), certificate and the roots it trusts, DER.
	Key     []byte   `json:"Key,omitempty"`
	Cert    []byte   `json:"Cert,omitempty"`
	CACerts [][]byte `json:"CACerts,omitempty"`
	// GossipKeys encrypt gossip, the primary first; Trust names the roots
	// and keys held (the leader publishes the current one).
	GossipKeys [][]byte `json:"GossipKeys,omitempty"`
	Trust      string   `json:"Trust,omitempty"`
	Managers   []string `json:"Managers,omitempty"` // cluster API addresses last known
	Peers      []string `json:"Peers,omitempty"`    // gossip addresses last seen, for a restart
	// Token and ManagerAddr are read from run dirs written before raft.
	Token       string `json:"Token,omitempty"`
	ManagerAddr string `json:"ManagerAddr,omitempty"`
}

// Daemon is one running meshd.
type Daemon struct {
	cfg       Config
	log       *slog.Logger
	dataPlane lb.Mode
	srv       *apiserver.Server
	ctrs      *container.Engine // the bridge networks and standalone containers
	runCtx    context.Context   // Run's: sessions live inside it
	metrics   *metrics.Metrics  // nil without --metrics-addr
	events    *events.Log       // what this node saw happen (meshctl events)
	// gossip is the session's gossip, nil in no cluster: read by the
	// metrics without d.mu.
	gossip atomic.Pointer[gossip.DB]

	// mu serialises the changes of the node's place in a cluster (init,
	// join, leave, promote, demote) and guards the fields below; API
	// reads take it briefly to find the session.
	mu   sync.RWMutex
	id   identity
	sess *session // nil while the node is in no cluster
	// tls is the node's TLS identity from id, nil while in no cluster;
	// itself safe to use from any goroutine.
	tls *ca.Identity
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
	d := &Daemon{cfg: cfg, log: log.With("node", cfg.NodeName)}
	d.metrics = d.newMetrics()
	d.events = events.New(events.DefaultSize)
	return d, nil
}

// Run serves the unix socket and, once the node is in a cluster (from its
// run dir, --init, --join, or swarm init/join through the socket), its
// session, until ctx ends; then it stops the session without leaving the
// cluster, as a restart expects. It returns an error when the node cannot
// start.
func (d *Daemon) Run(ctx context.Context) error {
	unlock, err := lockRunDir(d.cfg.RunDir, d.socketGID())
	if err != nil {
		return err
	}
	defer unlock()
	// Last before the lock goes: no iptables-restore of ours outlives us.
	defer lb.WaitBackground()
	mode, reason, err := lb.ChooseMode(d.cfg.LBMode, lb.KernelHasIPVS())
	if err != nil {
		return err
	}
	d.dataPlane = mode
	d.log.Info("data plane chosen", "dataplane", mode, "reason", reason)
	if _, err := atomicfile.ReadJSON(d.path(identityName), &d.id); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	d.runCtx = ctx
	if d.metrics != nil {
		if err := d.serveMetrics(ctx, &wg); err != nil {
			return err
		}
	}
	if d.ctrs, err = d.newContainers(); err != nil {
		return err
	}
	if d.srv, err = apiserver.New(apiserver.Config{Node: nodeReads{d}, Swarm: swarmOps{d}, Peers: clusterPeers{d},
		Containers: d.ctrs, Events: d.events, Capture: capture.Kernel{}, Logger: d.log.With("component", "api")}); err != nil {
		return err
	}
	if err := d.resume(ctx); err != nil {
		return err
	}
	defer d.stopSession(false)
	// The bridges come up once the node is what its run dir or flags
	// say: a meshd that fails to join changes nothing. A session picks
	// mesh_gwbridge's subnet among those the bridges leave (see
	// gatewaySubnet), built or not.
	d.ctrs.Up(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); _ = d.ctrs.Serve(ctx) }()
	sock := d.path(socketName)
	if err := serveLocal(ctx, &wg, d.log, sock, d.srv.LocalHandler(), d.socketGID()); err != nil {
		return err
	}
	defer os.Remove(sock)
	d.mu.RLock()
	role := d.id.Role
	d.mu.RUnlock()
	if role == "" {
		d.log.Info("meshd ready, in no cluster: waiting for swarm init or swarm join", "socket", sock)
	} else {
		d.log.Info("meshd ready", "role", role, "addr", d.advertise(), "socket", sock)
	}
	<-ctx.Done()
	d.log.Info("shutting down")
	return nil
}

// resume brings the node back as its run dir says, or does what --init
// and --join ask of a node in no cluster.
func (d *Daemon) resume(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, legacyErr := os.Stat(d.path(legacyState))
	switch {
	case legacyErr == nil:
		return d.migrateLocked(ctx)
	case d.id.ClusterID != "":
		if d.cfg.Join != "" || d.cfg.Init {
			d.log.Warn("already in a cluster: --join and --init ignored", "cluster_id", d.id.ClusterID)
		}
		if err := d.startSessionLocked(ctx); err != nil {
			return err
		}
		// Roots or gossip keys may have rotated while it was down.
		d.sess.renewDue = true
		return nil
	case d.cfg.Init:
		_, err := d.initLocked(ctx, api.SwarmInit{})
		return err
	case d.cfg.Join != "":
		_, err := d.joinLocked(ctx, api.SwarmJoin{RemoteAddr: d.cfg.Join, Token: d.cfg.Token})
		return err
	}
	return nil
}

// advertise is the address this node is reached at: the one swarm init or
// join chose, else --advertise-addr.
func (d *Daemon) advertise() netip.Addr {
	if a, err := netip.ParseAddr(d.id.AdvertiseAddr); err == nil {
		return a
	}
	return d.cfg.AdvertiseAddr
}

// apiAddr is where this node serves the cluster API when it manages.
func (d *Daemon) apiAddr() string {
	return net.JoinHostPort(d.advertise().String(), strconv.Itoa(int(d.cfg.ListenAddr.Port())))
}

func (d *Daemon) path(name string) string { return filepath.Join(d.cfg.RunDir, name) }

func (d *Daemon) saveIdentityLocked() error {
	return atomicfile.WriteJSON(d.path(identityName), d.id, 0o600)
}

// socketGID is the group the socket is shared with, -1 for none.
func (d *Daemon) socketGID() int {
	if d.cfg.SocketGroup == "" {
		return -1
	}
	return d.cfg.SocketGID
}

// lockRunDir makes the run dir ours: two daemons on one run dir would
// fight over the same namespaces and state. It returns the unlock.
func lockRunDir(dir string, gid int) (func(), error) {
	if err := prepareRunDir(dir, gid); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another meshd is running with run dir %s", dir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	return func() { f.Close() }, nil
}

// Run dir and socket modes: root's alone, or shared with the group of
// meshd --socket-group as dockerd's -G shares docker.sock: the group may
// then cross the run dir (not list it) and use the socket.
const (
	runDirMode      = 0o700
	runDirGroupMode = 0o710
	socketGroupMode = 0o660 // alone, the socket is created 0600
)

// prepareRunDir creates the run dir, or checks the one there. A dir meshd
// made (it is new, or holds meshd's lock) gets its mode, and its group
// with a socket group (gid ≥ 0); any other dir is left as it is, as it
// may serve others too (say --run-dir /run), and the socket's own mode
// still guards the API. A dir others may write to is refused: anyone
// could replace the socket or the namespace files in it.
func prepareRunDir(dir string, gid int) error {
	_, err := os.Stat(filepath.Join(dir, lockName))
	ours := err == nil
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		ours = true
	}
	if err := os.MkdirAll(dir, runDirMode); err != nil {
		return fmt.Errorf("create run dir %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("run dir %s: %w", dir, err)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("run dir %s is writable by every user (mode %v): give meshd a directory of its own", dir, fi.Mode().Perm())
	}
	if !ours {
		return nil
	}
	mode := os.FileMode(runDirMode)
	if gid >= 0 {
		if err := os.Chown(dir, -1, gid); err != nil {
			return fmt.Errorf("run dir %s: give it to the socket group: %w", dir, err)
		}
		mode = runDirGroupMode
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("run dir %s: %w", dir, err)
	}
	return nil
}

// HTTP limits of the unix socket and the cluster port alike: a client has
// 5 s to send its headers and 10 s for its whole request, an answer
// 30 s to be written (swarm init, join and leave lift theirs: see
// mesh/apiserver), and an idle connection is closed after a minute.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 64 << 10
	// httpErrorLogEvery is how often the server's own errors (a bad TLS
	// handshake, say) are logged per remote host; the rest are counted.
	httpErrorLogEvery = time.Minute
)

// newHTTPServer returns a server of h with the limits above, whose own
// error lines go to log, at most one a minute per remote host and message.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: stdlog.New(httpErrorLog{log: log, limit: ratelog.New(httpErrorLogEvery)}, "", 0)}
}

// httpErrorLog writes net/http's error lines ("http: TLS handshake error
// from 10.0.0.9:40000: EOF") as warnings, rate-limited by the line with
// each host:port in it reduced to its host, as a sender may vary its port.
type httpErrorLog struct {
	log   *slog.Logger
	limit *ratelog.Limiter
}

func (w httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	fields := strings.Fields(msg)
	for i, f := range fields {
		if host, _, err := net.SplitHostPort(strings.TrimSuffix(f, ":")); err == nil {
			fields[i] = host
		}
	}
	w.limit.Log(context.Background(), w.log, slog.LevelWarn, strings.Join(fields, " "), msg)
	return len(p), nil
}

// serveLocal answers the unix socket at sock until ctx ends: root's
// alone, or shared with group gid (≥ 0).
func serveLocal(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger, sock string, h http.Handler, gid int) error {
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", sock, err)
	}
	old := syscall.Umask(0o177) // the socket is created 0600: root only
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	if err := shareSocket(sock, gid); err != nil {
		ln.Close()
		return err
	}
	goServe(ctx, wg, log, newHTTPServer(h, log.With("component", "local api")), ln, "local api")
	return nil
}

// shareSocket gives the socket to group gid, read-write, when gid ≥ 0;
// until then it is root's alone.
func shareSocket(sock string, gid int) error {
	if gid < 0 {
		return nil
	}
	if err := os.Chown(sock, -1, gid); err != nil {
		return fmt.Errorf("socket %s: give it to the socket group: %w", sock, err)
	}
	if err := os.Chmod(sock, socketGroupMode); err != nil {
		return fmt.Errorf("socket %s: %w", sock, err)
	}
	return nil
}

// goServe runs srv on ln until ctx ends.
func goServe(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger, srv *http.Server, ln net.Listener, what string) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("serve "+what, "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
}

// addrPrefix finds the interface prefix holding addr (192.168.33.10/24),
// or addr/32 when no interface has it.
func addrPrefix(addr netip.Addr) netip.Prefix {
	for _, p := range localPrefixes(false) {
		if p.Addr() == addr {
			return p
		}
	}
	return netip.PrefixFrom(addr, 32)
}

// newContainers is the node's engine of bridge networks and standalone
// containers. A host port a service or a container of this node on a
// swarm network publishes is not free for them.
func (d *Daemon) newContainers() (*container.Engine, error) {
	return container.New(container.Config{RunDir: d.cfg.RunDir, DNSUpstreams: d.cfg.DNSUpstreams, DNSTTL: d.cfg.DNSTTL,
		DNSObserve: d.metrics.DNSObserver(), Taken: func() []netip.Prefix { return localPrefixes(true) },
		PortFree: func(proto string, port uint16) bool {
			n := nodeReads{d}
			return !n.Objects().HostPortTaken(n.Info().NodeID, proto, port)
		},
		Logger: d.log.With("component", "containers")})
}
