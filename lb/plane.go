package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// DataPlane is the load balancing of one sandbox (ingress_sbox or an
// lb_<net>), whichever the mechanism. Its methods may be called
// concurrently (Table from the API while the agent syncs).
type DataPlane interface {
	// Sync makes the sandbox's load balancing match sb: marks, SNAT and
	// the backends, and removes what is no longer wanted. It is
	// idempotent, writes nothing when nothing changed, and repairs drift
	// of the rules at least every DefaultFullResyncPeriod and of IPVS
	// every IPVSCheckPeriod. A Sandbox without services
	// removes everything of ours.
	Sync(ctx context.Context, sb Sandbox) error
	// Table is an "ipvsadm -Ln"-shaped view of what is programmed.
	Table() (string, error)
	// Recheck makes the next Sync compare the kernel's rules and IPVS
	// table with what it wants and repair them, as a full resync does:
	// the kernel said something was removed.
	Recheck()
	// Rebuilt returns how many times the sandbox's rules were found
	// drifted and rebuilt, as [HostSyncer.Rebuilt].
	Rebuilt() uint64
	// VerifyIPVS compares the IPVS table, which the kernel reports no
	// change of, with what the last Sync wanted, and repairs it; netlink
	// dumps only. The iptables plane has nothing to do.
	VerifyIPVS() error
	// Check compares the sandbox's rules and IPVS table with what
	// Sync(sb) would make them and returns the differences, changing
	// nothing (a dry run: see check.go).
	Check(ctx context.Context, sb Sandbox) ([]Diff, error)
	// FlowOffload says whether a flowtable carries the sandbox's
	// established connections (iptables plane): "on (eth0, eth1)",
	// "off", or "unavailable: " and why (a kernel without flowtables).
	FlowOffload() string
	// Close releases the plane's handles and ends the iptables-restore
	// it keeps in the sandbox (which would keep the namespace alive); it
	// leaves the rules as they are (the namespace usually goes next).
	Close() error
}

// Option changes how NewDataPlane reaches the kernel; tests use them to
// plug in fakes.
type Option func(*planeOptions)

type planeOptions struct {
	rules    Rules
	ipvs     IPVS
	sysctls  Sysctls
	timeouts Timeouts
	ct       Conntrack
	flow     FlowTables
	offload  bool
}

// WithRules makes the plane write rules through r instead of
// iptables-restore inside the namespace.
func WithRules(r Rules) Option { return func(o *planeOptions) { o.rules = r } }

// WithIPVS makes the IPVS plane program v instead of the kernel's IPVS in
// the namespace.
func WithIPVS(v IPVS) Option { return func(o *planeOptions) { o.ipvs = v } }

// WithConntrack makes the plane (or a [HostSyncer]) delete conntrack
// entries through c instead of the kernel's table in the namespace.
func WithConntrack(c Conntrack) Option { return func(o *planeOptions) { o.ct = c } }

// WithSysctls makes the plane set its sysctls through s instead of
// /proc/sys inside the namespace.
func WithSysctls(s Sysctls) Option { return func(o *planeOptions) { o.sysctls = s } }

// WithFlowTables gives the plane its sandbox's nftables table of ours.
// With offload, the iptables plane keeps there the flowtable that carries
// balanced connections once established (see "Flow offload" in doc.go);
// otherwise, and always in the IPVS plane, the plane removes a table an
// earlier run left. Without this option the plane leaves nftables alone.
func WithFlowTables(f FlowTables, offload bool) Option {
	return func(o *planeOptions) { o.flow, o.offload = f, offload }
}

// WithTimeouts sets the IPVS connection timeouts of the sandbox (Swarm
// leaves the kernel's 900 s TCP idle timeout, which cuts long-lived idle
// connections: moby#31208). Zero fields keep the kernel's values. The
// iptables plane has conntrack's timeouts (5 days for an established TCP
// connection) and ignores this.
func WithTimeouts(t Timeouts) Option { return func(o *planeOptions) { o.timeouts = t } }

// Swarm's sysctls for a load-balancing sandbox, and early demux off: a
// sandbox forwards or balances, and holds no socket that the lookup of
// every arriving packet's socket, before routing, could find. The vs.*
// ones exist only where IPVS does.
var (
	forwardSysctls = [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/tcp_early_demux", "0"},
		{"net/ipv4/udp_early_demux", "0"},
	}
	ipvsSysctls = [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/tcp_early_demux", "0"},
		{"net/ipv4/udp_early_demux", "0"},
		{"net/ipv4/vs/conntrack", "1"},                 // let iptables (SNAT, conntrack) see IPVS connections
		{"net/ipv4/vs/conn_reuse_mode", "0"},           // no 1 s stall when a client reuses a port
		{"net/ipv4/vs/expire_nodest_conn", "1"},        // drop connections of a removed backend at once
		{"net/ipv4/vs/expire_quiescent_template", "1"}, // weight 0 ends persistence too
	}
)

// NewDataPlane returns the data plane mode (ModeIPVS or ModeIPTables; turn
// ModeAuto into one with ChooseMode first) for the sandbox whose namespace
// file is nsPath ("" = the caller's namespace). It touches nothing until
// the first Sync, except that the IPVS plane opens its netlink socket.
// Given the real rules (IPTables, the default), it keeps one
// iptables-restore in the sandbox for all its syncs (kept_linux.go).
func NewDataPlane(mode Mode, nsPath string, opts ...Option) (DataPlane, error) {
	if err := checkPlane(mode); err != nil {
		return nil, err
	}
	o := planeOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.rules == nil {
		o.rules = IPTables{NetNS: nsPath}
	}
	var kept io.Closer
	if t, ok := o.rules.(IPTables); ok && t.kept == nil {
		// The sandbox's rules change with every service: one process
		// takes all its payloads (kept_linux.go).
		t = t.Keep()
		o.rules, kept = t, t
	}
	if o.ct == nil {
		o.ct = KernelConntrack{NetNS: nsPath}
	}
	if o.sysctls == nil {
		o.sysctls = ProcSysctls{NetNS: nsPath}
	}
	p := &plane{mode: mode, rules: newSyncer(o.rules, sandboxOwner), render: newSandboxRenderer(mode),
		sysctls: o.sysctls, ipvs: o.ipvs, timeouts: o.timeouts, ct: ctCleanup{ct: o.ct}, nsPath: nsPath, kept: kept}
	p.flow.ft = o.flow
	// IPVS's NAT is not conntrack's: a flowtable would send IPVS's
	// replies on without their source rewritten.
	p.offload = o.offload && mode == ModeIPTables
	if mode == ModeIPVS && p.ipvs == nil {
		k, err := newKernelIPVS(nsPath)
		if err != nil {
			if kept != nil {
				_ = kept.Close()
			}
			return nil, err
		}
		p.ipvs, p.closer = k, k
	}
	return p, nil
}

// IPVSCheckPeriod is how often the IPVS table is compared whole with what
// is wanted: by Sync when it last did so longer ago, and by the agent
// through VerifyIPVS. The kernel sends no notification when an IPVS
// service or destination is removed, and the comparison is netlink dumps.
const IPVSCheckPeriod = 2 * time.Second

// plane is both data planes: they share the marks and the syncer; the
// IPVS one has an IPVS table, the iptables one per-service DNAT chains.
type plane struct {
	mode     Mode
	rules    *syncer
	sysctls  Sysctls
	ipvs     IPVS        // ModeIPVS only
	flow     flowOffload // the table of ours in nftables
	offload  bool        // flow holds a flowtable (ModeIPTables only)
	closer   io.Closer   // the kernel IPVS handle, if we opened it
	kept     io.Closer   // the kept iptables-restore, if we keep one
	timeouts Timeouts    // ModeIPVS only
	nsPath   string      // for errors

	mu       sync.Mutex // guards the fields below
	render   *sandboxRenderer
	ct       ctCleanup // UDP conntrack entries still to delete
	sysctlOK bool      // sysctls set since the last failure
	ipvsOK   bool      // IPVS holds what the renderer last rendered
	ipvsFull time.Time // when IPVS was last compared whole
}

var _ DataPlane = (*plane)(nil)

func (p *plane) Sync(ctx context.Context, sb Sandbox) error {
	if err := sb.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.sync(ctx, sb); err != nil {
		p.sysctlOK, p.ipvsOK = false, false // look at everything again next time
		return err
	}
	// Only now does a new packet get NATed to a live backend. A failure
	// leaves the deletions owed to the next Sync; rules and IPVS are fine.
	err := p.ct.flush(fmt.Sprintf("%s sandbox %q", sb.Kind, p.nsPath))
	// After the rules: a flowtable only carries what they balanced, and
	// a failure to write it leaves them working.
	if ferr := p.flow.sync(ctx, p.offload && len(sb.Services) > 0, sb.Ifaces, p.rules.clock()); ferr != nil {
		err = errors.Join(err, fmt.Errorf("%s sandbox %q: %w", sb.Kind, p.nsPath, ferr))
	}
	return err
}

// sync sets the sysctls (once, and again after a failure), then for IPVS
// the services and destinations, so that a new mark finds its service,
// then the rules, then for IPVS removes the services no mark leads to.
// It notes the UDP conntrack entries that would keep packets off the new
// backends; Sync deletes them once all of this is done.
// IPVS is compared whole on the first sync, after a failure and every
// full resync period; otherwise only services that changed are looked at.
func (p *plane) sync(ctx context.Context, sb Sandbox) error {
	if len(sb.Services) > 0 && !p.sysctlOK {
		if err := p.setSysctls(); err != nil {
			return err
		}
		p.sysctlOK = true
	}
	old := p.render.cache
	if p.render.kind != sb.Kind {
		old = nil
	}
	want, fresh, gone, err := p.render.rules(sb)
	if err != nil {
		return err
	}
	// Owed from now on, whatever fails below: the renderer has moved on.
	p.ct.add(udpCleanup(sb.Kind, old, sb.Services, fresh)...)
	full := !p.ipvsOK || p.rules.clock().Sub(p.ipvsFull) >= IPVSCheckPeriod
	if full {
		fresh = sb.Services
	}
	if p.mode == ModeIPVS && len(fresh) > 0 {
		if err := ensureIPVS(p.ipvs, fresh); err != nil {
			return err
		}
	}
	if _, err := p.rules.sync(ctx, want); err != nil {
		return err
	}
	if p.mode == ModeIPVS && (full || gone) {
		if err := removeStaleIPVS(p.ipvs, sb.Services); err != nil {
			return err
		}
	}
	p.ipvsOK = true
	if full {
		p.ipvsFull = p.rules.clock()
	}
	return nil
}

func (p *plane) FlowOffload() string { return p.flow.state() }

func (p *plane) Rebuilt() uint64 { return p.rules.rebuilt.Load() + p.flow.rebuilds() }

func (p *plane) Recheck() {
	p.rules.recheck()
	p.flow.markRecheck()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ipvsOK = false
}

func (p *plane) VerifyIPVS() error {
	if p.mode != ModeIPVS {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ipvsOK {
		return nil // the next Sync compares it whole anyway
	}
	want := p.render.services()
	if err := ensureIPVS(p.ipvs, want); err != nil {
		p.ipvsOK = false
		return err
	}
	if err := removeStaleIPVS(p.ipvs, want); err != nil {
		p.ipvsOK = false
		return err
	}
	return nil
}

func (p *plane) setSysctls() error {
	set := forwardSysctls
	if p.mode == ModeIPVS {
		set = ipvsSysctls
	}
	for _, kv := range set {
		if err := p.sysctls.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("set sysctl %s=%s in %q: %w", kv[0], kv[1], p.nsPath, err)
		}
	}
	if ts, ok := p.ipvs.(timeoutSetter); ok && p.mode == ModeIPVS && !p.timeouts.IsZero() {
		return ts.SetTimeouts(p.timeouts)
	}
	return nil
}

// Table prints the IPVS table, or for the iptables plane the same view of
// what it programmed (all counters 0; draining backends with weight 0).
func (p *plane) Table() (string, error) {
	p.mu.Lock() // also keeps IPVS netlink requests apart
	defer p.mu.Unlock()
	var b strings.Builder
	if p.mode == ModeIPVS {
		err := dumpIPVS(&b, p.ipvs)
		return b.String(), err
	}
	mirror := NewFakeIPVS()
	if err := ensureIPVS(mirror, p.render.services()); err != nil {
		return "", err
	}
	err := dumpIPVS(&b, mirror)
	return b.String(), err
}

func (p *plane) Close() error {
	if p.kept != nil {
		_ = p.kept.Close()
	}
	if p.closer != nil {
		return p.closer.Close()
	}
	return nil
}

// ensureIPVS adds or updates a fwmark service per wanted service, with
// exactly its backends as destinations (port 0, Masq, the backend's
// weight). It calls the kernel only for what differs.
func ensureIPVS(v IPVS, want []Service) error {
	svcs, err := v.Services()
	if err != nil {
		return err
	}
	for _, s := range want {
		vs := VirtualService{FWMark: s.FWMark, Scheduler: defaultScheduler}
		if !slices.Contains(svcs, vs) {
			if err := v.EnsureService(vs); err != nil {
				return err
			}
		}
		var have []Destination
		if slices.ContainsFunc(svcs, func(h VirtualService) bool { return h.FWMark == vs.FWMark }) {
			if have, err = v.Destinations(vs); err != nil {
				return err
			}
		}
		weights := map[netip.Addr]int{}
		for _, h := range have {
			if h.Port == 0 {
				weights[h.Addr] = h.Weight
			}
		}
		wanted := backendWeights(s)
		for _, a := range slices.SortedFunc(maps.Keys(wanted), netip.Addr.Compare) {
			if w, ok := weights[a]; ok && w == wanted[a] {
				continue
			}
			if err := v.EnsureDestination(vs, Destination{Addr: a, Weight: wanted[a]}); err != nil {
				return err
			}
		}
		for _, h := range have {
			if _, ok := wanted[h.Addr]; h.Port != 0 || !ok {
				if err := v.RemoveDestination(vs, h); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeStaleIPVS removes the fwmark services no wanted service has.
func removeStaleIPVS(v IPVS, want []Service) error {
	have, err := v.Services()
	if err != nil {
		return err
	}
	for _, vs := range have {
		if !slices.ContainsFunc(want, func(s Service) bool { return s.FWMark == vs.FWMark }) {
			if err := v.RemoveService(vs); err != nil {
				return err
			}
		}
	}
	return nil
}
