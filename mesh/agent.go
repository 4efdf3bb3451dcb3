package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/overlay"
)

// resyncInterval is how often the agent reconciles without being woken,
// so that drift (a link or entry removed by hand) is repaired.
const resyncInterval = 5 * time.Second

// peerRecord is the value of an overlay_peer_table entry.
type peerRecord struct {
	IP   string `json:"IP"`
	MAC  string `json:"MAC"`
	VTEP string `json:"VTEP"`
}

// localTask is a task this node runs.
type localTask struct {
	spec    api.Task
	sandbox string // network namespace file
	gwVeth  string // host end of the gateway veth, "" when internal only
	gwAddr  netip.Addr
	rules   *lb.TaskSyncer // the task's REDIRECTs
	// Draining: the task left the desired state; its backends have weight
	// 0 everywhere until drainUntil, then it is stopped. Only the agent
	// goroutine writes drainUntil; draining is read by the supervisor.
	drainUntil time.Time
	draining   atomic.Bool
	endpoints  map[string]endpointRecord // by network, set before the supervisor starts
	dns        *dns.Resolver             // its embedded DNS
	dnsPorts   lb.DNSPorts               // the resolver's ports on 127.0.0.11
	cancel     context.CancelFunc
	done       chan struct{}
}

// agent reconciles this node's kernel and tasks towards the tables. Only
// its run goroutine touches its fields.
type agent struct {
	d      *Daemon
	ov     *overlay.Overlay
	gw     *lb.GatewayBridge
	gwIPs  *ipam.Pool
	nsDir  string
	tasks  map[string]*localTask
	nets   map[string]api.Network // overlay networks built here
	wake   chan struct{}
	frozen bool // the manager is away: keep what runs

	dns       *dns.Server
	ingressGW netip.Addr            // the ingress sandbox's address on mesh_gwbridge
	sboxes    map[string]*lbSandbox // by network ID
	host      *lb.HostSyncer
	marks     map[string]uint32 // fwmark by service/network key
	nextMark  uint32

	mu     sync.Mutex // guards the field below, read by the API
	planes []planeView
}

// planeView is a sandbox's data plane as the API shows it.
type planeView struct {
	sandbox, network string
	plane            lb.DataPlane
}

func (d *Daemon) nsDir() string { return d.path("netns") }

func newAgent(d *Daemon) (*agent, error) {
	if err := nsfile.PrepareDir(d.nsDir()); err != nil {
		return nil, err
	}
	ov, err := overlay.New(overlay.Config{NSDir: d.nsDir(), UnderlayAddr: d.cfg.AdvertiseAddr,
		UnderlayMTU: underlayMTU(d.cfg.AdvertiseAddr), VXLANPort: d.cfg.DataPathPort, Logger: d.log.With("component", "overlay")})
	if err != nil {
		return nil, err
	}
	subnet, err := ipam.GatewayBridgePool(localPrefixes())
	if err != nil {
		return nil, fmt.Errorf("gateway bridge: %w", err)
	}
	gwIPs, err := ipam.NewPool(subnet, netip.Addr{})
	if err != nil {
		return nil, fmt.Errorf("gateway bridge pool %s: %w", subnet, err)
	}
	// The ingress sandbox takes the first address after the bridge's
	// (172.18.0.2), before any task, as in Swarm.
	ingressGW, err := gwIPs.Allocate(gwIPs.Gateway().Next())
	if err != nil {
		return nil, fmt.Errorf("gateway bridge: reserve the ingress sandbox address: %w", err)
	}
	a := &agent{d: d, ov: ov, gwIPs: gwIPs, nsDir: d.nsDir(), tasks: map[string]*localTask{},
		nets: map[string]api.Network{}, wake: make(chan struct{}, 1),
		gw:        &lb.GatewayBridge{Subnet: subnet, Gateway: gwIPs.Gateway(), MTU: 1500},
		ingressGW: ingressGW, sboxes: map[string]*lbSandbox{}, host: lb.NewHostSyncer(lb.IPTables{}),
		marks: map[string]uint32{}, nextMark: firstFWMark}
	dcfg := dns.DefaultConfig()
	dcfg.Upstreams, dcfg.Logger = d.cfg.DNSUpstreams, d.log.With("component", "dns")
	if d.cfg.DNSTTL > 0 {
		dcfg.TTL = d.cfg.DNSTTL
	}
	if a.dns, err = dns.New(dcfg); err != nil {
		return nil, fmt.Errorf("embedded dns: %w", err)
	}
	return a, nil
}

// underlayMTU is the MTU of the interface holding addr (1500 if unknown).
func underlayMTU(addr netip.Addr) int {
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(addr.AsSlice()) {
				return ifc.MTU
			}
		}
	}
	return 1500
}

// localPrefixes are this node's own interface prefixes.
func localPrefixes() []netip.Prefix {
	var out []netip.Prefix
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
				ones, _ := ipn.Mask.Size()
				out = append(out, netip.PrefixFrom(ip, ones).Masked())
			}
		}
	}
	return out
}

// run sweeps what an earlier run left, then reconciles on every table
// change and on a timer until ctx ends; then it stops every task and
// removes what it built.
func (a *agent) run(ctx context.Context) {
	a.sweep()
	if err := a.gw.Ensure(); err != nil {
		a.d.log.Error("gateway bridge", "err", err)
	}
	for _, table := range []string{tableTasks, tableNetworks, tableServices, tableOverlayPeer, tableEndpoints, tableNodes} {
		ch := a.d.db.Watch(ctx, table)
		go func() {
			for range ch {
				a.poke()
			}
		}()
	}
	t := time.NewTicker(resyncInterval)
	defer t.Stop()
	for {
		a.reconcile(ctx)
		select {
		case <-ctx.Done():
			a.teardown()
			return
		case <-a.wake:
		case <-t.C:
			if err := a.gw.Ensure(); err != nil {
				a.d.log.Error("gateway bridge", "err", err)
			}
		}
	}
}

func (a *agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// sweep removes namespaces and devices an earlier run left behind.
func (a *agent) sweep() {
	names, err := nsfile.List(a.nsDir)
	if err != nil {
		a.d.log.Warn("sweep namespaces", "err", err)
	}
	for _, n := range names {
		if err := nsfile.Remove(filepath.Join(a.nsDir, n)); err != nil {
			a.d.log.Warn("sweep namespace", "netns", n, "err", err)
		}
	}
	if err := a.ov.Sweep(nil); err != nil {
		a.d.log.Warn("sweep overlay", "err", err)
	}
	a.gw.Sweep()
}

// desiredTasks returns the tasks this node should run.
func (a *agent) desiredTasks(st State) map[string]api.Task {
	out := map[string]api.Task{}
	if !a.d.isManager() && !a.managerReachable() {
		// Without the manager its tables are gone; keep what runs rather
		// than tear the node down, as Swarm workers do.
		if !a.frozen {
			a.d.log.Warn("manager unreachable: keeping the running tasks")
		}
		a.frozen = true
		for id, lt := range a.tasks {
			out[id] = lt.spec
		}
		return out
	}
	a.frozen = false
	for id, t := range st.Tasks {
		if t.NodeID == a.d.id.ID && t.DesiredState == api.TaskRunning {
			out[id] = t
		}
	}
	return out
}

func (a *agent) managerReachable() bool {
	for _, m := range a.d.db.Members() {
		if meta, ok := decodeMeta(m.Meta); ok && meta.Role == api.RoleManager && reachable(m.State) {
			return true
		}
	}
	return false
}

// reconcile brings networks, tasks and peers to the desired state.
func (a *agent) reconcile(ctx context.Context) {
	st := a.d.objects()
	desired := a.desiredTasks(st)
	for id, lt := range a.tasks {
		if _, ok := desired[id]; !ok {
			a.drainOrStop(lt)
		}
	}
	needed := a.neededNetworks(st, desired)
	for id, n := range needed {
		if err := a.ensureNetwork(n); err != nil {
			a.d.log.Error("build overlay network", "network", n.Name, "err", err)
			delete(needed, id)
		}
	}
	// Peers, balancers and names first: a task that starts now reaches
	// them with its first packet.
	for id, n := range needed {
		if err := a.ov.SetPeers(id, a.peers(id)); err != nil {
			a.d.log.Error("program peers", "network", n.Name, "err", err)
		}
	}
	a.reconcileSandboxes(ctx, st, needed)
	a.dns.SetTable(a.dnsTable(st))
	for id, t := range desired {
		if _, ok := st.Services[t.ServiceID]; !ok || !networksReady(t, needed) {
			continue // its service or network has not reached this node's tables yet
		}
		if _, ok := a.tasks[id]; !ok {
			if err := a.startTask(ctx, t, st); err != nil {
				a.d.log.Error("start task", "task", t.Name(), "err", err)
				a.report(t.ID, api.TaskStatus{State: api.TaskFailed, Err: err.Error()})
			}
		}
	}
	a.syncRules(ctx, st)
	for id, n := range a.nets {
		if _, ok := needed[id]; !ok && !a.frozen {
			if err := a.ov.RemoveNetwork(id); err != nil {
				a.d.log.Error("remove overlay network", "network", n.Name, "err", err)
				continue
			}
			delete(a.nets, id)
		}
	}
}

// networksReady says whether every network of t is built here.
func networksReady(t api.Task, built map[string]api.Network) bool {
	for _, tn := range t.Networks {
		if _, ok := built[tn.NetworkID]; !ok {
			return false
		}
	}
	return true
}

// neededNetworks: the ingress network always, and every network a local
// task is attached to.
func (a *agent) neededNetworks(st State, desired map[string]api.Task) map[string]api.Network {
	out := map[string]api.Network{}
	for id, n := range st.Networks {
		if n.Ingress {
			out[id] = n
		}
	}
	tasks := slices.Collect(maps.Values(desired))
	for _, lt := range a.tasks { // draining ones keep their networks
		tasks = append(tasks, lt.spec)
	}
	for _, t := range tasks {
		for _, tn := range t.Networks {
			if n, ok := st.Networks[tn.NetworkID]; ok {
				out[n.ID] = n
			} else if n, ok := a.nets[tn.NetworkID]; ok {
				out[n.ID] = n // frozen: the table is gone, the network is not
			}
		}
	}
	return out
}

func (a *agent) ensureNetwork(n api.Network) error {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return fmt.Errorf("network %s subnet %q: %w", n.Name, n.Subnet, err)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		return fmt.Errorf("network %s gateway %q: %w", n.Name, n.Gateway, err)
	}
	if err := a.ov.EnsureNetwork(overlay.Network{ID: n.ID, VNI: n.VNI, Subnet: subnet, Gateway: gw}); err != nil {
		return err
	}
	a.nets[n.ID] = n
	return nil
}

// peers lists the remote endpoints of a network from overlay_peer_table.
func (a *agent) peers(netID string) []overlay.Peer {
	var out []overlay.Peer
	for _, e := range a.d.db.List(tableOverlayPeer, netID) {
		if e.Owner == a.d.id.ID {
			continue
		}
		var r peerRecord
		if json.Unmarshal(e.Value, &r) != nil {
			continue
		}
		ip, err1 := netip.ParseAddr(r.IP)
		mac, err2 := net.ParseMAC(r.MAC)
		vtep, err3 := netip.ParseAddr(r.VTEP)
		if err1 != nil || err2 != nil || err3 != nil {
			a.d.log.Warn("bad peer entry", "network", netID, "key", e.Key)
			continue
		}
		out = append(out, overlay.Peer{IP: ip, MAC: mac, VTEP: vtep})
	}
	slices.SortFunc(out, func(x, y overlay.Peer) int { return x.IP.Compare(y.IP) })
	return out
}

func (a *agent) report(taskID string, s api.TaskStatus) {
	s.Timestamp = time.Now().UTC()
	b, err := json.Marshal(s)
	if err != nil {
		return
	}
	if err := a.d.db.Put(tableTaskStatus, "", taskID, b); err != nil {
		a.d.log.Warn("report task status", "task_id", taskID, "err", err)
	}
}

// teardown stops every task and removes the networks built here.
func (a *agent) teardown() {
	for _, lt := range a.tasks {
		a.stopTask(lt)
	}
	for _, sb := range a.sboxes {
		a.removeLBSandbox(sb)
	}
	if err := a.host.Sync(context.Background(), lb.HostRules{}); err != nil {
		a.d.log.Warn("remove host rules", "err", err)
	}
	_ = a.dns.Close()
	for id := range a.nets {
		if err := a.ov.RemoveNetwork(id); err != nil {
			a.d.log.Warn("remove overlay network", "network_id", id, "err", err)
		}
	}
}
