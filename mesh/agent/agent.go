package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/overlay"
)

// Agent reconciles this node's kernel and tasks towards the tables. Only
// its Run goroutine touches its fields, except those under mu.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	nsDir string
	ov    *overlay.Overlay
	gw    *overlay.GatewayBridge
	gwIPs *ipam.Pool
	dns   *dns.Server
	host  *lb.HostSyncer
	wake  chan struct{}
	// tables wakes Run for a change in the tables, which may leave all a
	// pass reads as the last one saw it (see tablesMoved).
	tables chan struct{}
	seen   passInputs // what the last pass read from the tables
	// calls are functions to run in Run's goroutine between reconciles
	// (Check, PauseRepair).
	calls chan func()
	// paused: the test hook stopped the reconcile passes (PauseRepair).
	paused bool
	// watcher reports the namespaces the kernel changed into drift.
	watcher Watcher
	drift   drifted
	// desired is the desired state served: the tables' when their head
	// certifies them, else the last one verified.
	desired *records.Desired
	now     func() time.Time // the drain and pull clock; tests step it

	// partialSince is when the tables were first seen short of what
	// their head certifies (zero: they are not), pullDue when a pull from
	// the head's publisher may start; pulling says one runs.
	partialSince time.Time
	pullDue      time.Time
	pulling      atomic.Bool
	pulls        sync.WaitGroup

	tasks      map[string]*localTask
	attached   map[string]map[string]attachedLink // engine containers' overlay links, by attachment task, then network
	names      *dns.Table                         // the overlays' names, as last built (see setNames)
	nets       map[string]api.Network             // overlay networks built here
	following  string                             // the desired state's source as last logged
	persistErr string                             // the desired state's save failure as last logged
	conntrack  hostTable                          // the kernel's conntrack table (growHostTables)
	neighbours hostTable                          // the kernel's neighbour table
	gwChecked  bool                               // mesh_gwbridge is known good since the last resync tick
	ingressGW  netip.Addr                         // the ingress sandbox's address on mesh_gwbridge
	sboxes     map[string]*lbSandbox              // by network ID
	programmed map[string]string                  // by service: the task IDs last reported programmed, joined
	marks      marks
	// procs are the tasks whose process runs or was stopped here, as the
	// API's stop, ps and inspect read them (StoppedTask).
	procs taskProcs
	// timed are the programmed tasks whose programming time was measured
	// (or cannot be), kept while their endpoint lasts.
	timed map[string]bool

	started time.Time // when New made the agent: the gateway bridge's birth, as the API shows it

	mu      sync.Mutex // guards the fields below, read by the API
	planes  []planeView
	built   map[string]bool       // networks with a namespace here, by ID
	gwTasks map[string]netip.Addr // tasks with a sandbox here: their mesh_gwbridge address
}

// planeView is a sandbox's data plane as the API shows it.
type planeView struct {
	sandbox, network string
	plane            lb.DataPlane
}

// New checks cfg, loads the desired state last verified from RunDir and
// returns an agent; it touches nothing else until Run. A desired state
// file that cannot be read is an error: it is the state this node serves
// while no manager is reachable.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	desired, err := records.NewDesired(cfg.DB, filepath.Join(cfg.RunDir, desiredFile))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	nsDir := filepath.Join(cfg.RunDir, "netns")
	ov, err := overlay.New(overlay.Config{NSDir: nsDir, UnderlayAddr: cfg.AdvertiseAddr, UnderlayMTU: cfg.UnderlayMTU,
		VXLANPort: cfg.DataPathPort, Kernel: cfg.Kernel, Logger: log.With("component", "overlay")})
	if err != nil {
		return nil, err
	}
	gwIPs, err := ipam.NewPool(cfg.GatewaySubnet, netip.Addr{})
	if err != nil {
		return nil, fmt.Errorf("gateway bridge pool %s: %w", cfg.GatewaySubnet, err)
	}
	// The ingress sandbox takes the first address after the bridge's
	// (172.18.0.2), before any task, as in Swarm.
	ingressGW, err := gwIPs.Allocate(gwIPs.Gateway().Next())
	if err != nil {
		return nil, fmt.Errorf("gateway bridge: reserve the ingress sandbox address: %w", err)
	}
	dcfg := dns.DefaultConfig()
	dcfg.Upstreams, dcfg.Logger, dcfg.Observe = cfg.DNSUpstreams, log.With("component", "dns"), cfg.Metrics.DNSObserver()
	if cfg.DNSTTL > 0 {
		dcfg.TTL = cfg.DNSTTL
	}
	resolver, err := dns.New(dcfg)
	if err != nil {
		return nil, fmt.Errorf("embedded dns: %w", err)
	}
	gw, err := overlay.NewGatewayBridge(overlay.GatewayBridgeConfig{Name: lb.GatewayBridgeName, Subnet: cfg.GatewaySubnet,
		Gateway: gwIPs.Gateway(), MTU: gatewayMTU, Kernel: cfg.Kernel, Logger: log.With("component", "gateway")})
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log, nsDir: nsDir, ov: ov, gwIPs: gwIPs, dns: resolver, gw: gw,
		host: lb.NewHostSyncer(cfg.Rules(""), lb.WithConntrack(cfg.Conntrack(""))), wake: make(chan struct{}, 1), tables: make(chan struct{}, 1), calls: make(chan func()), desired: desired, now: time.Now,
		tasks: map[string]*localTask{}, attached: map[string]map[string]attachedLink{}, nets: map[string]api.Network{}, ingressGW: ingressGW,
		sboxes: map[string]*lbSandbox{}, marks: newMarks(), programmed: map[string]string{}, timed: map[string]bool{}, procs: taskProcs{live: map[string]bool{}, stopped: map[string]*int{}}, started: time.Now()}
	a.watcher = cfg.Watch(a.kernelChanged)
	return a, nil
}

// Run sweeps what an earlier run left, then reconciles on every table
// change and on a timer until ctx ends; then it stops every task and
// removes what it built.
func (a *Agent) Run(ctx context.Context) {
	a.sweep()
	if a.cfg.Bridges != nil {
		// A bridge container that comes or goes changes what a task
		// connected to its network resolves.
		a.cfg.Bridges.OnNames(a.poke)
		defer a.cfg.Bridges.OnNames(nil)
	}
	defer a.watcher.Close()
	defer a.pulls.Wait()
	for _, table := range []string{records.TableCluster, records.TableTasks, records.TableNetworks, records.TableServices,
		records.TableOverlayPeer, records.TableEndpoints, records.TableNodes} {
		ch := a.cfg.DB.Watch(ctx, table)
		go func() {
			for range ch {
				signal(a.tables)
			}
		}()
	}
	if a.cfg.Metrics != nil {
		statuses := a.cfg.DB.Watch(ctx, records.TableTaskStatus)
		go a.timeConvergence(statuses)
	}
	if a.cfg.PushLogs != nil {
		logs := newLogPusher(a.cfg.DB, a.cfg.NodeID, a.TaskLogPath, a.TaskEnded, a.cfg.PushLogs, a.log.With("component", "logs"))
		done := make(chan struct{})
		lctx, stop := context.WithCancel(ctx)
		go func() {
			defer close(done)
			logs.run(lctx)
		}()
		defer func() { stop(); <-done }()
	}
	t := time.NewTicker(a.cfg.ResyncInterval)
	defer t.Stop()
	// IPVS tables change without a word from the kernel: they are
	// compared on their own, cheaply, between reconciles.
	var ipvsTick <-chan time.Time
	if a.cfg.DataPlane == lb.ModeIPVS {
		it := time.NewTicker(lb.IPVSCheckPeriod)
		defer it.Stop()
		ipvsTick = it.C
	}
	pull := time.NewTimer(time.Hour) // armed while the tables are partial
	pull.Stop()
	for byTables := false; ; {
		if !a.paused && (!byTables || a.tablesMoved()) {
			a.Reconcile(ctx)
		}
		a.armPull(pull)
		for woken := false; !woken; {
			byTables = false
			select {
			case <-ctx.Done():
				a.teardown()
				return
			case <-a.tables:
				woken, byTables = true, true
			case <-a.wake:
				woken = true
			case <-pull.C:
				woken = true
			case <-t.C:
				a.gwChecked, a.conntrack.checked, a.neighbours.checked = false, false, false // look for drift
				woken = true
			case <-ipvsTick:
				if !a.paused {
					a.verifyIPVS()
				}
			case f := <-a.calls:
				f()
			}
		}
	}
}

// armPull sets the pull timer for the pull pullIfStuck planned, or stops
// it: once the tables hold what their head certifies, or while a pull
// runs (its end wakes Run), a timer left armed would only wake a pass
// with nothing to do.
func (a *Agent) armPull(pull *time.Timer) {
	if a.pullDue.IsZero() || a.pulling.Load() {
		pull.Stop()
		return
	}
	pull.Reset(max(a.pullDue.Sub(a.now()), 0))
}

// verifyIPVS repairs the sandboxes' IPVS tables against their last sync.
func (a *Agent) verifyIPVS() {
	for _, sb := range a.sboxes {
		if err := sb.plane.VerifyIPVS(); err != nil {
			a.log.Error("verify IPVS", "sandbox", filepath.Base(sb.path), "err", err)
		}
	}
}

func (a *Agent) poke() { signal(a.wake) }

// signal wakes the reader of ch, a channel of one slot: a wake-up
// already pending covers this one.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ensureGateway builds or repairs mesh_gwbridge when it has not been
// checked since the last resync tick: a wake-up from the tables needs no
// netlink round trips for it.
func (a *Agent) ensureGateway() {
	if a.gwChecked {
		return
	}
	a.watch("") // mesh_gwbridge and the host's MESH-INGRESS chains
	if err := a.gw.Ensure(); err != nil {
		a.log.Error("gateway bridge", "err", err)
		return
	}
	a.gwChecked = true
}

// sweep removes namespaces and devices an earlier run left behind.
func (a *Agent) sweep() {
	names, err := a.cfg.Kernel.ListNS(a.nsDir)
	if err != nil {
		a.log.Warn("sweep namespaces", "err", err)
	}
	for _, n := range names {
		if err := a.cfg.Kernel.RemoveNS(filepath.Join(a.nsDir, n)); err != nil {
			a.log.Warn("sweep namespace", "netns", n, "err", err)
		}
	}
	if err := a.ov.Sweep(nil); err != nil {
		a.log.Warn("sweep overlay", "err", err)
	}
	if err := a.gw.Sweep(); err != nil {
		a.log.Warn("sweep gateway bridge", "err", err)
	}
}

// passInputs is what a pass reads from the tables: the desired state
// served, and the generations of the two tables read beside it.
type passInputs struct {
	leader, digest   string
	version          uint64
	peers, endpoints uint64
}

func (a *Agent) inputs() passInputs {
	i := a.desired.Info()
	return passInputs{leader: i.Leader, digest: i.Digest, version: i.Version,
		peers: a.cfg.DB.Generation(records.TableOverlayPeer), endpoints: a.cfg.DB.Generation(records.TableEndpoints)}
}

// tablesMoved looks at the tables after a wake-up from them and says
// whether they changed anything a pass reads since the last one began.
// A manager's change reaches a node as its entries and then the head
// that certifies them; until the head comes, the state served stays the
// last one verified, and a pass over it would redo the last pass (every
// service added cost a node a whole pass more). The look still logs a
// change of source and plans a pull if the tables stay short.
func (a *Agent) tablesMoved() bool {
	a.desiredState()
	a.pullIfStuck()
	return a.inputs() != a.seen
}

// Reconcile brings networks, sandboxes, tasks, peers and rules to the
// desired state once. Run calls it; tests call it to step the agent.
func (a *Agent) Reconcile(ctx context.Context) {
	a.markDrift()
	a.ensureGateway() // every sandbox and task hangs off it
	st := a.desiredState()
	a.seen = a.inputs()
	a.pullIfStuck()
	desired := tasksOf(st, a.cfg.NodeID)
	a.dropStopped(st)
	for id, lt := range a.tasks {
		if _, ok := desired[id]; ok {
			a.undrain(lt)
		} else {
			a.drainOrStop(lt)
		}
	}
	needed := neededNetworks(st, desired, a.runningSpecs(), a.nets)
	for id, n := range needed {
		if err := a.ensureNetwork(n); err != nil {
			a.log.Error("build overlay network", "network", n.Name, "err", err)
			delete(needed, id)
		}
	}
	// Peers, balancers and names first: a task that starts now reaches
	// them with its first packet.
	peered := map[string]map[netip.Addr]bool{} // by network: the remote addresses programmed
	for id, n := range needed {
		peers, bad := records.RemotePeers(a.cfg.DB, id, a.cfg.NodeID)
		for _, key := range bad {
			a.log.Warn("bad peer entry", "network", n.Name, "key", key)
		}
		if err := a.ov.SetPeers(id, overlayPeers(peers)); err != nil {
			a.log.Error("program peers", "network", n.Name, "err", err)
		}
		peered[id] = map[netip.Addr]bool{}
		for _, p := range peers {
			peered[id][p.IP] = true
		}
	}
	// Decoded once for balancers and names.
	eps := reachable(records.Endpoints(a.cfg.DB, records.AllNetworks), peered, a.cfg.NodeID)
	synced, rulesTook := a.reconcileSandboxes(ctx, st, needed, eps)
	a.repairTasks()
	a.reconnectTasks(st, desired, needed)
	a.reconcileAttachments(st, desired, needed)
	a.names = dnsTable(st, eps)
	a.setNames()
	a.reportProgrammed(eps, synced)
	for id, t := range desired {
		if t.IsAttachment() {
			continue // no process: reconcileAttachments links its container
		}
		if _, ok := st.Services[t.ServiceID]; (!ok && t.Standalone == nil) || !networksReady(t, needed) {
			continue // its service or network has not reached this node's tables yet
		}
		if _, ok := a.tasks[id]; !ok {
			if err := a.startTask(ctx, t, st); err != nil {
				a.log.Error("start task", "task", t.Name(), "err", err)
				a.report(t, api.TaskStatus{State: api.TaskFailed, Err: err.Error()})
			}
		}
	}
	start := time.Now()
	a.syncRules(ctx, st)
	a.cfg.Metrics.ObserveRuleSync(rulesTook + time.Since(start))
	a.growHostTables() // after the host's rules, whose NAT loads conntrack
	defer a.publishBuilt()
	for id, n := range a.nets {
		if _, ok := needed[id]; !ok {
			a.watcher.Unwatch(a.ov.NamespacePath(id))
			if err := a.ov.RemoveNetwork(id); err != nil {
				a.log.Error("remove overlay network", "network", n.Name, "err", err)
				continue
			}
			delete(a.nets, id)
		}
	}
}

// publishBuilt records the networks that have a namespace here, for
// NetworkBuilt.
func (a *Agent) publishBuilt() {
	built := map[string]bool{}
	for id := range a.nets {
		built[id] = true
	}
	for id := range a.sboxes {
		built[id] = true
	}
	gwTasks := map[string]netip.Addr{}
	for id, lt := range a.tasks {
		if lt.sandbox != "" {
			gwTasks[id] = lt.gwAddr
		}
	}
	a.mu.Lock()
	a.built, a.gwTasks = built, gwTasks
	a.mu.Unlock()
}

// Gateway is mesh_gwbridge as the API shows it (network inspect).
type Gateway struct {
	Name    string
	Subnet  netip.Prefix
	Gateway netip.Addr
	Created time.Time  // when the agent started, which builds the bridge first
	Ingress netip.Addr // the ingress sandbox's address
	// Tasks are the tasks with a sandbox here, by ID, with their address
	// on the bridge: invalid for a task on internal networks only, which
	// has no gateway link.
	Tasks map[string]netip.Addr
}

// Gateway returns the gateway bridge and its endpoints as of the last
// reconcile. It may be called from any goroutine.
func (a *Agent) Gateway() Gateway {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Gateway{Name: lb.GatewayBridgeName, Subnet: a.cfg.GatewaySubnet, Gateway: a.gwIPs.Gateway(), Created: a.started,
		Ingress: a.ingressGW, Tasks: maps.Clone(a.gwTasks)}
}

// NetworkBuilt says whether network id has a namespace on this node (its
// overlay or its load-balancer sandbox) as of the last reconcile. It may
// be called from any goroutine.
func (a *Agent) NetworkBuilt(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.built[id]
}

// desiredState returns the desired state to serve (see records.Desired)
// and logs when its source changes. Tables short of what their head
// certifies last a gossip round at every change the manager publishes, so
// only the rest (no head: the manager's entries gone; a head that cannot
// be adopted) is a warning.
func (a *Agent) desiredState() records.Objects {
	st := a.desired.Current()
	info := a.desired.Info()
	following := "fresh"
	switch {
	case info.Fresh:
		if following != a.following {
			a.log.Info("following the desired state", "leader", info.Leader, "version", info.Version, "entries", info.Entries)
		}
	case info.Partial:
		following = "partial"
		if following != a.following {
			a.log.Debug("desired state incomplete in the tables: serving the last one verified", "why", info.Stale)
		}
	default:
		following = "headless"
		if following != a.following {
			a.log.Warn(info.Warning(), "leader", info.Leader, "version", info.Version, "why", info.Stale)
		}
	}
	a.following = following
	if info.PersistErr != a.persistErr && info.PersistErr != "" {
		a.log.Error("desired state not saved: a restart would not serve it", "err", info.PersistErr)
	}
	a.persistErr = info.PersistErr
	return st
}

// DesiredInfo says where the desired state this node serves comes from:
// the manager's tables right now (Fresh) or the last state verified, and
// that state's leader and version. Its Warning is the line to show when
// no manager is followed. It may be called from any goroutine.
func (a *Agent) DesiredInfo() records.DesiredInfo { return a.desired.Info() }

// Desired is the desired state this node serves, for the API's reads on a
// worker; safe from any goroutine. The maps are shared: read only.
func (a *Agent) Desired() records.Objects { return a.desired.Current() }

// runningSpecs are the tasks this node runs, draining ones included.
func (a *Agent) runningSpecs() map[string]api.Task {
	out := make(map[string]api.Task, len(a.tasks))
	for id, lt := range a.tasks {
		out[id] = lt.spec
	}
	return out
}

func (a *Agent) ensureNetwork(n api.Network) error {
	on, err := overlayNetwork(n)
	if err != nil {
		return err
	}
	if err := a.ov.EnsureNetwork(on); err != nil {
		return err
	}
	a.watch(a.ov.NamespacePath(n.ID))
	a.nets[n.ID] = n
	return nil
}

func (a *Agent) report(t api.Task, s api.TaskStatus) {
	a.taskEvent(t, s)
	if err := records.PutTaskStatus(a.cfg.DB, t.ID, s, time.Now()); err != nil {
		a.log.Warn("report task status", "task_id", t.ID, "err", err)
	}
}

// teardown stops every task and removes the networks built here.
func (a *Agent) teardown() {
	for _, lt := range a.tasks {
		a.stopTask(lt)
	}
	var none records.Objects
	a.dropStopped(none)
	for _, sb := range a.sboxes {
		a.removeLBSandbox(sb)
	}
	a.cfg.Metrics.SetServiceBackends(nil) // nothing balanced here any more
	if err := a.host.Sync(context.Background(), lb.HostRules{}); err != nil {
		a.log.Warn("remove host rules", "err", err)
	}
	_ = a.dns.Close()
	a.watcher.Close() // its sockets would keep the namespaces alive
	for id := range a.nets {
		if err := a.ov.RemoveNetwork(id); err != nil {
			a.log.Warn("remove overlay network", "network_id", id, "err", err)
		}
	}
}
