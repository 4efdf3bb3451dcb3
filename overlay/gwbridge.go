package overlay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/meshd/meshd/ipam"
)

// GatewayBridgeConfig configures a [GatewayBridge]. It is copied by
// [NewGatewayBridge] and not read afterwards.
type GatewayBridgeConfig struct {
	// Name is the bridge's name, e.g. "mesh_gwbridge" (Swarm's
	// docker_gwbridge). Required, 1–15 characters. There is no default on
	// purpose: the host rules that DNAT into the ingress sandbox and
	// masquerade the tasks' egress match the bridge by name, and lb renders
	// them from its own lb.GatewayBridgeName. overlay (the devices) must not
	// import lb (the rules), so the daemon passes lb.GatewayBridgeName here
	// and the name is written in one place only.
	Name string
	// NS is the namespace file the bridge lives in; "" (what a node wants)
	// is the namespace meshd runs in. Tests give a namespace of their own.
	NS string
	// Subnet is the bridge's subnet, e.g. 172.18.0.0/16. Required, IPv4.
	Subnet netip.Prefix
	// Gateway is the bridge's own address inside Subnet, e.g. 172.18.0.1:
	// every attached sandbox's default route. Required.
	Gateway netip.Addr
	// MTU is the bridge's and every attached veth's MTU, in bytes. 0 means
	// 1500. The bridge carries traffic to the outside world, not through
	// VXLAN, so it takes the underlay's MTU, not the overlay's.
	MTU int
	// Kernel is the kernel to program; nil means the real one (Linux only).
	Kernel Kernel
	// Logger receives what is repaired or recreated; nil discards.
	Logger *slog.Logger
}

// GatewayBridge is the bridge in the node's namespace that gives task
// sandboxes their way out and the ingress sandbox its way in: each
// attached sandbox gets a veth, one end a port of the bridge, the other
// holding an address of Subnet and the default route via Gateway.
//
// It keeps no state besides its configuration, so its methods may be
// called concurrently for different veths. Every method is idempotent and
// repairs what someone changed by hand.
type GatewayBridge struct {
	name    string
	ns      string
	subnet  netip.Prefix
	gateway netip.Addr
	mtu     int
	k       Kernel
	log     *slog.Logger
}

// NewGatewayBridge checks cfg and returns a GatewayBridge. It touches
// nothing in the kernel.
func NewGatewayBridge(cfg GatewayBridgeConfig) (*GatewayBridge, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultUnderlayMTU
	}
	switch {
	case cfg.Name == "" || len(cfg.Name) > maxIfName:
		return nil, fmt.Errorf("overlay: gateway bridge Name %q: want 1–15 characters", cfg.Name)
	case !cfg.Subnet.IsValid() || !cfg.Subnet.Addr().Is4():
		return nil, fmt.Errorf("overlay: gateway bridge Subnet %v: want an IPv4 prefix", cfg.Subnet)
	case !cfg.Subnet.Contains(cfg.Gateway):
		return nil, fmt.Errorf("overlay: gateway bridge Gateway %v is not in %s", cfg.Gateway, cfg.Subnet)
	case cfg.MTU < 68 || cfg.MTU > 65535:
		return nil, fmt.Errorf("overlay: gateway bridge MTU %d: want 68–65535", cfg.MTU)
	}
	if cfg.Kernel == nil {
		cfg.Kernel = newKernel()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &GatewayBridge{name: cfg.Name, ns: cfg.NS, subnet: cfg.Subnet.Masked(), gateway: cfg.Gateway,
		mtu: cfg.MTU, k: cfg.Kernel, log: cfg.Logger}, nil
}

// Name returns the bridge's name.
func (g *GatewayBridge) Name() string { return g.name }

// Subnet returns the bridge's subnet: the source range the egress
// masquerade covers.
func (g *GatewayBridge) Subnet() netip.Prefix { return g.subnet }

// Ensure creates or repairs the bridge (Gateway/bits, MTU, up, and no
// address but that one) and turns on forwarding in its namespace and
// route_localnet on the bridge. The egress masquerade is a host rule
// (lb.HostRules.Egress), not made here.
func (g *GatewayBridge) Ensure() error {
	// The bridge's MAC is fixed, derived from the gateway address as the
	// sandboxes' are from theirs, as Docker gives its bridges one of their
	// own: a bridge otherwise takes its lowest port's, and when that
	// port's task goes, every sandbox that cached the gateway's MAC sends
	// its replies to an address the bridge no longer answers to, until its
	// neighbour entry is resolved again.
	spec := BridgeSpec{NS: g.ns, Name: g.name, MTU: g.mtu, Addr: netip.PrefixFrom(g.gateway, g.subnet.Bits()),
		MAC: ipam.MAC(g.gateway)}
	if err := g.k.EnsureBridge(spec); err != nil {
		// An incompatible device of that name is someone else's: it is
		// reported, not removed.
		return fmt.Errorf("gateway bridge: %w", err)
	}
	removed, err := g.removeStrayAddrs(spec.Addr)
	if err != nil {
		return err
	}
	if removed {
		// Deleting an IPv4 primary address takes its subnet's secondaries
		// with it (unless promote_secondaries is on), and ours may have
		// been one of them: ensure it again.
		if err := g.k.EnsureBridge(spec); err != nil {
			return fmt.Errorf("gateway bridge: %w", err)
		}
	}
	keys := []string{
		// Tasks' traffic leaves through the bridge and the host's uplink.
		"net/ipv4/ip_forward",
		// "curl localhost:8080" on a node: the DNAT to the ingress sandbox
		// keeps 127.0.0.1 as the source, which the bridge must route.
		"net/ipv4/conf/" + g.name + "/route_localnet",
	}
	for _, key := range keys {
		if err := g.k.SetSysctl(g.ns, key, "1"); err != nil {
			return fmt.Errorf("gateway bridge: %w", err)
		}
	}
	return nil
}

// removeStrayAddrs deletes every address of the bridge but want. The
// bridge is meshd's own device, so anything else on it is left by an
// earlier run that picked another subnet (or added by hand): sandboxes
// only ever route via Gateway, and each stray subnet would otherwise count
// as taken on the next start and push the pool further along.
func (g *GatewayBridge) removeStrayAddrs(want netip.Prefix) (bool, error) {
	links, err := g.k.ListLinks(g.ns)
	if err != nil {
		return false, fmt.Errorf("gateway bridge %s: %w", g.name, err)
	}
	removed := false
	for _, l := range links {
		if l.Name != g.name {
			continue
		}
		for _, p := range l.Addrs {
			if p == want {
				continue
			}
			g.log.Info("removing stray gateway bridge address", "link", g.name, "addr", p)
			if err := g.k.DelAddr(g.ns, g.name, p); err != nil {
				return removed, fmt.Errorf("gateway bridge %s: remove stray address %s: %w", g.name, p, err)
			}
			removed = true
		}
	}
	return removed, nil
}

// Attach connects the sandbox (a namespace file) to the bridge: a veth
// whose end hostVeth is a port of the bridge and whose other end is
// ifName in the sandbox, holding addr/<Subnet bits>, with the default
// route via Gateway. A hostVeth left from an earlier attempt that does not
// lead to ifName in this sandbox is removed and made again. If the route
// cannot be set, the veth is removed.
func (g *GatewayBridge) Attach(sandbox, ifName, hostVeth string, addr netip.Addr) error {
	return g.Connect(sandbox, ifName, hostVeth, addr, true)
}

// Connect is Attach, with the default route via Gateway only when route
// is set: a container's second bridge network, or an --internal one,
// gives it an interface and no way out.
func (g *GatewayBridge) Connect(sandbox, ifName, hostVeth string, addr netip.Addr, route bool) error {
	switch {
	case sandbox == "":
		return errors.New("overlay: gateway bridge attach: sandbox is empty")
	case hostVeth == "" || len(hostVeth) > maxIfName || ifName == "" || len(ifName) > maxIfName:
		return fmt.Errorf("overlay: gateway bridge attach: names %q, %q: want 1–15 characters", hostVeth, ifName)
	case !g.subnet.Contains(addr) || addr == g.gateway:
		return fmt.Errorf("overlay: gateway bridge attach: address %v: want one of %s other than %s", addr, g.subnet, g.gateway)
	}
	// The sandbox end's MAC derives from its address, as on the overlays
	// and as Docker's do on its gateway bridge (02:42:ac:12:00:02).
	spec := VethSpec{NS: g.ns, Name: hostVeth, Master: g.name, MTU: g.mtu,
		PeerNS: sandbox, PeerName: ifName, PeerMAC: ipam.MAC(addr), PeerAddr: netip.PrefixFrom(addr, g.subnet.Bits())}
	err := g.k.EnsureVeth(spec)
	if isExists(err) {
		g.log.Info("recreating gateway veth", "link", hostVeth, "sandbox", sandbox, "reason", err)
		if err = g.k.RemoveLink(g.ns, hostVeth); err == nil {
			err = g.k.EnsureVeth(spec)
		}
	}
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", sandbox, g.name, err)
	}
	if !route {
		return nil
	}
	if err := g.k.SetDefaultRoute(sandbox, ifName, g.gateway); err != nil {
		_ = g.k.RemoveLink(g.ns, hostVeth) // the error to report is err
		return fmt.Errorf("attach %s to %s: %w", sandbox, g.name, err)
	}
	return nil
}

// Detach removes the veth whose bridge end is hostVeth (the sandbox end
// goes with it). Absent is fine.
func (g *GatewayBridge) Detach(hostVeth string) error {
	if err := g.k.RemoveLink(g.ns, hostVeth); err != nil {
		return fmt.Errorf("detach %s from %s: %w", hostVeth, g.name, err)
	}
	return nil
}

// Sweep removes every veth that is a port of the bridge: at start-up,
// those an earlier run left. It goes on past a failure and returns them
// all.
func (g *GatewayBridge) Sweep() error {
	links, err := g.k.ListLinks(g.ns)
	if err != nil {
		return fmt.Errorf("sweep %s: %w", g.name, err)
	}
	var errs []error
	for _, l := range links {
		if l.Master != g.name || l.Kind != "veth" {
			continue
		}
		g.log.Info("removing stale gateway veth", "link", l.Name)
		if err := g.k.RemoveLink(g.ns, l.Name); err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", g.name, err))
		}
	}
	return errors.Join(errs...)
}
