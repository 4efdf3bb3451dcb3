// Package mesh is meshd's wiring: it reads the configuration, locks the
// run dir, decides what this node is (a new cluster's manager, a restarted
// manager, a joining or rejoining worker), brings gossip up, and starts
// the parts that do the work: the manager (mesh/manager) on the manager,
// the node agent (mesh/agent) everywhere, and the API server
// (mesh/apiserver) on the unix socket and, on the manager, the cluster
// port. The cluster's records live in mesh/records.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/meshd/meshd/internal/atomicfile"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/agent"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/apiserver"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/records"
)

// Files in the run dir.
const (
	socketName   = "meshd.sock"
	stateName    = "state.json" // the manager's objects
	identityName = "node.json"  // every node: who it is, which cluster
	lockName     = "meshd.lock"
)

// identity is what every node keeps about itself in its run dir, so that a
// restart comes back as the same node of the same cluster.
type identity struct {
	ID          string `json:"ID"`
	ClusterID   string `json:"ClusterID,omitempty"`
	Role        string `json:"Role,omitempty"`
	ManagerAddr string `json:"ManagerAddr,omitempty"` // host:port of the cluster API
	Token       string `json:"Token,omitempty"`
}

// Daemon is one running meshd.
type Daemon struct {
	cfg       Config
	log       *slog.Logger
	dataPlane lb.Mode

	// Set once during start, read-only afterwards.
	id    identity
	db    *gossip.DB
	mgr   *manager.Manager // manager only
	agent *agent.Agent

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
	return &Daemon{cfg: cfg, log: log.With("node", cfg.NodeName)}, nil
}

// Run starts the node, serves until ctx ends, then leaves the cluster
// cleanly. It returns an error when the node cannot start or join.
func (d *Daemon) Run(ctx context.Context) error {
	unlock, err := lockRunDir(d.cfg.RunDir)
	if err != nil {
		return err
	}
	defer unlock()
	mode, reason, err := lb.ChooseMode(d.cfg.LBMode, lb.KernelHasIPVS())
	if err != nil {
		return err
	}
	d.dataPlane = mode
	d.log.Info("data plane chosen", "dataplane", mode, "reason", reason)

	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); d.wg.Wait() }()
	srv, err := d.start(ctx)
	if err != nil {
		d.stopGossip()
		return err
	}
	defer d.stopGossip()
	if d.agent, err = d.newAgent(); err != nil {
		return err
	}
	agentDone := make(chan struct{})
	go func() {
		defer close(agentDone)
		d.agent.Run(ctx)
	}()
	// The agent stops its tasks before gossip goes: deferred calls run last in, first out.
	defer func() { cancel(); <-agentDone }()
	sock := d.path(socketName)
	if err := d.serveLocal(ctx, sock, srv.LocalHandler()); err != nil {
		return err
	}
	defer os.Remove(sock)
	d.log.Info("meshd ready", "role", d.id.Role, "addr", d.cfg.AdvertiseAddr, "socket", sock)
	<-ctx.Done()
	d.log.Info("shutting down")
	return nil
}

// newAgent wires the node agent. It follows the desired state in the
// tables on every node, managers included, so that a manager's node
// serves the same verified state as the others and keeps serving it when
// its manager restarts or loses the leadership.
func (d *Daemon) newAgent() (*agent.Agent, error) {
	subnet, err := gatewaySubnet()
	if err != nil {
		return nil, err
	}
	return agent.New(agent.Config{NodeID: d.id.ID, AdvertiseAddr: d.cfg.AdvertiseAddr, RunDir: d.cfg.RunDir,
		DataPlane: d.dataPlane, DataPathPort: d.cfg.DataPathPort, UnderlayMTU: underlayMTU(d.cfg.AdvertiseAddr),
		GatewaySubnet: subnet, DrainDelay: d.cfg.DrainDelay, IPVSTimeouts: d.cfg.IPVSTimeouts,
		DNSUpstreams: d.cfg.DNSUpstreams, DNSTTL: d.cfg.DNSTTL, DB: d.db, Logger: d.log.With("component", "agent")})
}

func (d *Daemon) path(name string) string { return filepath.Join(d.cfg.RunDir, name) }

// lockRunDir makes the run dir ours: two daemons on one run dir would
// fight over the same namespaces and state. It returns the unlock.
func lockRunDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("create run dir %s: %w", dir, err)
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

func (d *Daemon) saveIdentity() error {
	return atomicfile.WriteJSON(d.path(identityName), d.id, 0o600)
}

func (d *Daemon) meta() records.NodeMeta {
	return records.NodeMeta{Name: d.cfg.NodeName, Role: d.id.Role, Addr: d.cfg.AdvertiseAddr,
		DataPlane: string(d.dataPlane), Version: api.Version, Prefix: addrPrefix(d.cfg.AdvertiseAddr)}
}

// serveLocal answers the root-only unix socket at sock until ctx ends.
func (d *Daemon) serveLocal(ctx context.Context, sock string, h http.Handler) error {
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", sock, err)
	}
	old := syscall.Umask(0o177) // the socket is created 0600: root only
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	d.goServe(ctx, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln, "local api")
	return nil
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

// newServer wires the API server: writes go to the manager on the
// manager, and are forwarded to it elsewhere.
func (d *Daemon) newServer() (*apiserver.Server, error) {
	cfg := apiserver.Config{Node: nodeReads{d}, Token: func() string { return d.id.Token },
		Logger: d.log.With("component", "api")}
	if d.mgr != nil {
		cfg.Writes, cfg.Joiner = d.mgr, d.mgr
	} else {
		cfg.Writes = apiserver.NewForwarder(d.id.ManagerAddr, d.id.Token)
	}
	return apiserver.New(cfg)
}

// Objects is the desired state as this node knows it: the store on the
// manager, the manager's tables elsewhere.
func (d *Daemon) Objects() records.Objects {
	if d.mgr != nil {
		return d.mgr.Objects()
	}
	return records.ReadObjects(d.db)
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
