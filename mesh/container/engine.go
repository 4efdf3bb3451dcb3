package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshd/meshd/internal/atomicfile"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/overlay"
)

// stateFile is the engine's state in the run dir (0600): networks and
// containers, what a restart brings back.
const stateFile = "containers.json"

// settleWait bounds how long run and start wait for a process to be
// past starting.
const settleWait = 10 * time.Second

// state is what the engine keeps on disk.
type state struct {
	Networks   []*network   `json:"Networks"`
	Containers []*container `json:"Containers"`
}

// network is a local bridge network.
type network struct {
	ID       string       `json:"ID"`   // 64 hex
	Name     string       `json:"Name"` // unique on the node
	Bridge   string       `json:"Bridge"`
	IPAM     ipam.Network `json:"IPAM"`
	Internal bool         `json:"Internal,omitempty"`
	// Default is the default bridge: its containers get no names.
	Default bool      `json:"Default,omitempty"`
	Created time.Time `json:"Created"`
}

// container is a standalone container: the task it shows as, and
// whether it should run.
type container struct {
	Task api.Task `json:"Task"`
	// Run: the container should be running (run, start); false once
	// stopped or once its process ended.
	Run bool `json:"Run"`
	// Named: run was given --name (else the name was made up).
	Named bool `json:"Named,omitempty"`
	// Overlays are the swarm overlays network connect attached it to, in
	// connection order, with the leader's addresses (see ConnectOverlay).
	Overlays []api.TaskNetwork `json:"Overlays,omitempty"`
}

// sandbox is what a running container has in the kernel.
type sandbox struct {
	path   string            // network namespace file
	veths  map[string]string // host end, by network ID
	ifs    map[string]string // sandbox end (ethN), by network ID
	res    *dns.Resolver
	rules  *lb.TaskSyncer
	dnsPts lb.DNSPorts
	cancel context.CancelFunc
	done   chan struct{}
	up     chan struct{} // closed once the process is past starting (or gone)
	upOnce sync.Once
}

// settled closes sb.up, once.
func (sb *sandbox) settled() { sb.upOnce.Do(func() { close(sb.up) }) }

// Engine runs a node's local networks and standalone containers. Its
// methods may be called from any goroutine.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	nsDir string
	dns   *dns.Server
	rules *lb.BridgeSyncer

	mu      sync.Mutex
	st      state
	pools   map[string]*ipam.Pool             // by network ID
	bridges map[string]*overlay.GatewayBridge // by network ID
	boxes   map[string]*sandbox               // running containers, by task ID
	ctx     context.Context                   // Serve's; nil before
	// links are the swarm tasks connected to bridge networks, by task ID
	// then network ID (see AttachTask).
	links   map[string]map[string]*taskLink
	names   *dns.Table // the bridges' names as last set
	onNames func()     // told of a new names table
	// overlayNames are the agent's names of the overlays, which the
	// resolvers see beside names (SetOverlayNames).
	overlayNames *dns.Table
}

// New loads the state from RunDir and returns an engine; nothing is
// built before Run.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	dcfg := dns.DefaultConfig()
	dcfg.Upstreams, dcfg.Logger, dcfg.Observe = cfg.DNSUpstreams, cfg.Logger.With("component", "dns"), cfg.DNSObserve
	if cfg.DNSTTL > 0 {
		dcfg.TTL = cfg.DNSTTL
	}
	server, err := dns.New(dcfg)
	if err != nil {
		return nil, fmt.Errorf("container dns: %w", err)
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, nsDir: filepath.Join(cfg.RunDir, "netns"), dns: server,
		rules: lb.NewBridgeSyncer(cfg.Rules("")), pools: map[string]*ipam.Pool{},
		bridges: map[string]*overlay.GatewayBridge{}, boxes: map[string]*sandbox{},
		links: map[string]map[string]*taskLink{}, names: dns.NewTable(nil)}
	if _, err := atomicfile.ReadJSON(e.statePath(), &e.st); err != nil {
		return nil, fmt.Errorf("container state: %w", err)
	}
	for _, n := range e.st.Networks {
		if err := e.loadNetwork(n); err != nil {
			return nil, fmt.Errorf("container state: network %s: %w", n.Name, err)
		}
	}
	for _, c := range e.st.Containers {
		for _, tn := range c.Task.Networks {
			if p := e.pools[tn.NetworkID]; p != nil {
				if _, err := p.Allocate(api.AddrOf(tn.Addr)); err != nil {
					return nil, fmt.Errorf("container state: container %s on %s: %w", c.Task.Name(), tn.NetworkName, err)
				}
			}
		}
	}
	return e, nil
}

func (e *Engine) statePath() string { return filepath.Join(e.cfg.RunDir, stateFile) }

// saveLocked writes the state; a failure is logged and returned, the
// change it follows stands in memory.
func (e *Engine) saveLocked() error {
	if err := atomicfile.WriteJSON(e.statePath(), e.st, 0o600); err != nil {
		e.log.Error("save container state", "err", err)
		return fmt.Errorf("save container state: %w", err)
	}
	return nil
}

// Up builds the default bridge, the networks and the containers that
// should run, once; ctx is what the containers run under. Serve calls it,
// unless it was called already: the daemon does, before its swarm session
// picks mesh_gwbridge's subnet among those the bridges leave.
func (e *Engine) Up(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx != nil {
		return
	}
	e.ctx = ctx
	if err := e.ensureDefaultLocked(); err != nil {
		e.log.Error("default bridge network", "err", err)
	}
	e.reconcileLocked(ctx)
}

// Serve starts the engine (see Up), then repairs the bridges and rules every ResyncInterval until ctx ends; it
// then stops the containers' processes and takes their sandboxes down,
// keeping what the state says for the next start.
func (e *Engine) Serve(ctx context.Context) error {
	e.Up(ctx)
	tick := time.NewTicker(e.cfg.ResyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			e.shutdown()
			return nil
		case <-tick.C:
			e.mu.Lock()
			e.reconcileLocked(ctx)
			e.mu.Unlock()
		}
	}
}

// shutdown waits for every container's process to end (their contexts
// are Serve's) and their sandboxes to go; they stay marked to run.
func (e *Engine) shutdown() {
	e.mu.Lock()
	var boxes []*sandbox
	for _, sb := range e.boxes {
		boxes = append(boxes, sb)
	}
	e.mu.Unlock()
	for _, sb := range boxes {
		sb.cancel()
		<-sb.done
	}
	_ = e.dns.Close()
}

// reconcileLocked brings the bridges, the host rules and the containers
// that should run in step with the state.
func (e *Engine) reconcileLocked(ctx context.Context) {
	for _, n := range e.st.Networks {
		if err := e.bridges[n.ID].Ensure(); err != nil {
			e.log.Error("bridge network", "network", n.Name, "err", err)
		}
	}
	for _, c := range e.st.Containers {
		sb := e.boxes[c.Task.ID]
		switch {
		case c.Run && sb == nil:
			if err := e.startLocked(ctx, c); err != nil {
				e.log.Error("start container", "container", c.Task.Name(), "err", err)
			}
		case sb != nil:
			e.repairLocked(ctx, c, sb)
		}
	}
	e.syncRulesLocked(ctx)
}

// repairLocked puts back what a running container's sandbox lost: its
// links (Connect repairs a veth, an address, a route) and its resolver's
// rules.
func (e *Engine) repairLocked(ctx context.Context, c *container, sb *sandbox) {
	routed := false
	for _, tn := range c.Task.Networks {
		n := e.resolveNetworkLocked(tn.NetworkID)
		if n == nil || sb.ifs[n.ID] == "" {
			continue
		}
		route := !routed && !n.Internal
		routed = routed || route
		if err := e.bridges[n.ID].Connect(sb.path, sb.ifs[n.ID], sb.veths[n.ID], api.AddrOf(tn.Addr), route); err != nil {
			e.log.Warn("repair container link", "container", c.Task.Standalone.Name, "network", n.Name, "err", err)
		}
	}
	if err := sb.rules.Sync(ctx, lb.TaskRules{DNS: sb.dnsPts}); err != nil {
		e.log.Warn("repair container rules", "container", c.Task.Standalone.Name, "err", err)
	}
}

// syncRulesLocked writes the host rules and the DNS table the state
// calls for.
func (e *Engine) syncRulesLocked(ctx context.Context) {
	if err := e.rules.Sync(ctx, bridgeRules(e.st, e.running())); err != nil {
		e.log.Error("bridge rules", "err", err)
	}
	e.names = dns.NewTable(append(dnsEndpoints(e.st, e.running()), taskEndpoints(e.st, e.links)...))
	e.dns.SetTable(dns.Merge(e.names, e.overlayNames))
	if e.onNames != nil {
		e.onNames()
	}
}

// running says which containers have a sandbox.
func (e *Engine) running() map[string]bool {
	out := make(map[string]bool, len(e.boxes))
	for id := range e.boxes {
		out[id] = true
	}
	return out
}

// newID is a random 64-hex ID, as Docker's.
func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
