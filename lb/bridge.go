package lb

import (
	"context"
	"fmt"
	"io"
	"net/netip"
)

// Local bridge networks are Docker's single-host networks: "network
// create dev" makes a Linux bridge br-<id12>, and the default "bridge"
// network is mesh0. Their rules live in the node's own namespace, in
// Docker's shapes, in chains of their own (see chains.go). There is no
// userland proxy: the node reaches its own published ports through the
// DNAT and a masquerade, as Docker without one. The DNAT skips packets
// from the container's own bridge ("! -i br", Docker's with a proxy), so
// a container reaching a port of its own network through the node's
// address gets the node, not the port. The standalone-container side
// syncs these rules with a
// BridgeSyncer while the agent's HostSyncer syncs its host chains in the
// same namespace, and neither touches the other's chains or jumps.
//
//	filter FORWARD ─► MESH-BRIDGE-FORWARD
//	                   1. ─► MESH-ISOLATION-STAGE-1  -i br ! -o br ─► STAGE-2: -o <any bridge> DROP
//	                                                 (mesh_gwbridge too, but for DNAT: published ports)
//	                                                 (internal: DROP what crosses the subnet's edge)
//	                   2. ─► MESH-BRIDGE-ACCEPT      replies into br, br out, br to br,
//	                                                 -o br ─► MESH-BRIDGE: published ports
//	nat PREROUTING, OUTPUT (--dst-type LOCAL) ─► MESH-BRIDGE  ! -i br --dport H DNAT dest:port
//	nat POSTROUTING ─► MESH-BRIDGE-POSTROUTING  -s subnet ! -o br MASQUERADE,
//	                                            -o br --src-type LOCAL MASQUERADE

// BridgeNetwork is one local bridge network.
type BridgeNetwork struct {
	Bridge   string       // Linux bridge: br-<id12>, or mesh0 (the default bridge)
	Subnet   netip.Prefix // IPv4
	Internal bool         // --internal: no masquerade, no traffic in or out of its subnet
}

// BridgePort is a container's published port (-p / -P): traffic to the
// node's HostPort goes to Dest:Port. As in Docker, a port on an internal
// network publishes nothing (and is not an error).
type BridgePort struct {
	Proto    string     // tcp or udp
	HostIP   netip.Addr // invalid or 0.0.0.0: any local address
	HostPort uint16
	Bridge   string     // the container's bridge
	Dest     netip.Addr // the container's address on it
	Port     uint16     // the port in the container
}

// String is the port as -p spells it: [HOSTIP:]HOSTPORT:PORT/PROTO.
func (p BridgePort) String() string {
	host := fmt.Sprint(p.HostPort)
	if hostIP(p).IsValid() {
		host = netip.AddrPortFrom(p.HostIP, p.HostPort).String()
	}
	return fmt.Sprintf("%s:%d/%s", host, p.Port, p.Proto)
}

// BridgeRules are the rules of every local bridge network on the node.
type BridgeRules struct {
	Networks []BridgeNetwork
	Ports    []BridgePort
}

// maxIfName is the longest interface name Linux takes (IFNAMSIZ less
// the NUL).
const maxIfName = 15

// checkBridgeName refuses what is not a Linux interface name, or what
// iptables would read otherwise: a trailing "+" is a wildcard there.
func checkBridgeName(name string) error {
	ok := len(name) >= 1 && len(name) <= maxIfName && name != "." && name != ".."
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("bridge name %q: want 1 to %d letters, digits, '-', '_' or '.'", name, maxIfName)
	}
	return nil
}

// hostIP is the address a port is bound to, invalid for any.
func hostIP(p BridgePort) netip.Addr {
	if p.HostIP.IsUnspecified() {
		return netip.Addr{}
	}
	return p.HostIP
}

func (b BridgeRules) validate() error {
	nets := make(map[string]BridgeNetwork, len(b.Networks))
	for i, n := range b.Networks {
		if err := checkBridgeName(n.Bridge); err != nil {
			return fmt.Errorf("bridge rules: %w", err)
		}
		if _, dup := nets[n.Bridge]; dup {
			return fmt.Errorf("bridge rules: bridge %s listed twice", n.Bridge)
		}
		if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
			return fmt.Errorf("bridge rules: network %s: subnet %v must be IPv4", n.Bridge, n.Subnet)
		}
		for _, o := range b.Networks[:i] {
			if o.Subnet.Overlaps(n.Subnet) {
				return fmt.Errorf("bridge rules: network %s: subnet %s overlaps %s of %s", n.Bridge, n.Subnet, o.Subnet, o.Bridge)
			}
		}
		nets[n.Bridge] = n
	}
	bound := make(map[portKey][]netip.Addr, len(b.Ports)) // host addresses by proto and port
	for _, p := range b.Ports {
		if p.Proto != "tcp" && p.Proto != "udp" {
			return fmt.Errorf("bridge rules: port %s: protocol %q: want tcp or udp", p, p.Proto)
		}
		if p.HostPort == 0 || p.Port == 0 {
			return fmt.Errorf("bridge rules: port %s: port 0", p)
		}
		n, ok := nets[p.Bridge]
		if !ok {
			return fmt.Errorf("bridge rules: port %s: bridge %q is not a network's", p, p.Bridge)
		}
		if !p.Dest.Is4() || !n.Subnet.Contains(p.Dest) {
			return fmt.Errorf("bridge rules: port %s: container address %v is not in %s's subnet %s", p, p.Dest, n.Bridge, n.Subnet)
		}
		if p.HostIP.IsValid() && !p.HostIP.Is4() {
			return fmt.Errorf("bridge rules: port %s: host address %s is not IPv4", p, p.HostIP)
		}
		// One binding to any address takes the port on every address,
		// as Docker's port allocator has it.
		k, ip := portKey{p.Proto, p.HostPort}, hostIP(p)
		for _, other := range bound[k] {
			if !other.IsValid() || !ip.IsValid() || other == ip {
				shown := "0.0.0.0"
				if ip.IsValid() {
					shown = ip.String()
				}
				return fmt.Errorf("bridge rules: Bind for %s:%d failed: port is already allocated", shown, p.HostPort)
			}
		}
		bound[k] = append(bound[k], ip)
	}
	return nil
}

// bridgeRules renders b: one unit per network holding its rules and its
// ports' (every one names the bridge, so units never share an entry), and
// one holding the fixed, ordered MESH-BRIDGE-FORWARD while any network
// exists. A change to one network thus adds and deletes only its rules.
func bridgeRules(b BridgeRules) ruleset {
	rs := ruleset{}
	if len(b.Networks) == 0 {
		return rs
	}
	top := newUnit()
	top.own[chainKey{"filter", chainBridgeForward}] = []string{"-j " + chainIsolation1, "-j " + chainBridgeAccept}
	// mesh_gwbridge is isolated from the bridge networks as Docker
	// isolates docker_gwbridge: a task does not reach a bridge container
	// by address, nor a container a task. Published ports are the
	// exception (DNAT): Docker accepts them in DOCKER-INGRESS, ahead of
	// its isolation; here the agent's MESH-INGRESS and this chain both
	// insert at the top of FORWARD, in either order, so the exception is
	// written into the isolation rules themselves.
	top.add("filter", chainIsolation1, fmt.Sprintf("-i %s ! -o %s -m conntrack ! --ctstate DNAT -j %s", GatewayBridgeName, GatewayBridgeName, chainIsolation2))
	top.add("filter", chainIsolation2, fmt.Sprintf("-o %s -m conntrack ! --ctstate DNAT -j DROP", GatewayBridgeName))
	rs["bridge"] = top
	ports := map[string][]BridgePort{}
	for _, p := range b.Ports {
		ports[p.Bridge] = append(ports[p.Bridge], p)
	}
	for _, n := range b.Networks {
		rs["network/"+n.Bridge] = bridgeNetworkRules(n, ports[n.Bridge])
	}
	return rs
}

// bridgeNetworkRules are one network's rules, in Docker's shapes.
func bridgeNetworkRules(n BridgeNetwork, ports []BridgePort) *unit {
	u := newUnit()
	br, subnet := n.Bridge, n.Subnet.Masked()
	u.add("filter", chainIsolation1, fmt.Sprintf("-i %s ! -o %s -j %s", br, br, chainIsolation2))
	u.add("filter", chainIsolation2, fmt.Sprintf("-o %s -j DROP", br))
	u.add("filter", chainBridgeAccept, fmt.Sprintf("-i %s -o %s -j ACCEPT", br, br))
	if n.Internal {
		u.add("filter", chainIsolation1, fmt.Sprintf("! -s %s -o %s -j DROP", subnet, br))
		u.add("filter", chainIsolation1, fmt.Sprintf("! -d %s -i %s -j DROP", subnet, br))
		return u
	}
	u.add("filter", chainBridgeAccept, fmt.Sprintf("-o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", br))
	u.add("filter", chainBridgeAccept, fmt.Sprintf("-i %s ! -o %s -j ACCEPT", br, br))
	u.add("nat", chainBridgePost, fmt.Sprintf("-s %s ! -o %s -j MASQUERADE", subnet, br))
	if len(ports) == 0 {
		return u
	}
	u.add("filter", chainBridgeAccept, fmt.Sprintf("-o %s -j %s", br, chainBridge))
	// "curl 127.0.0.1:H" on the node: the DNATed packet would leave with
	// source 127.0.0.1, which the container cannot answer. The device side
	// sets net.ipv4.conf.<br>.route_localnet=1, without which the kernel
	// will not even route it; this gives it the bridge's address instead.
	u.add("nat", chainBridgePost, fmt.Sprintf("-o %s -m addrtype --src-type LOCAL -j MASQUERADE", br))
	for _, p := range ports {
		dst := ""
		if ip := hostIP(p); ip.IsValid() {
			dst = fmt.Sprintf("-d %s/32 ", ip)
		}
		u.add("nat", chainBridge, fmt.Sprintf("%s! -i %s -p %s -m %s --dport %d -j DNAT --to-destination %s:%d",
			dst, br, p.Proto, p.Proto, p.HostPort, p.Dest, p.Port))
		u.add("filter", chainBridge, fmt.Sprintf("-d %s/32 ! -i %s -o %s -p %s -m %s --dport %d -j ACCEPT",
			p.Dest, br, br, p.Proto, p.Proto, p.Port))
	}
	return u
}

// RenderBridge writes the payload that takes an empty host namespace to b.
func RenderBridge(w io.Writer, b BridgeRules) error {
	if err := b.validate(); err != nil {
		return err
	}
	p, _ := fullPlan(nil, bridgeRules(b), bridgeOwner)
	return p.write(w)
}

// BridgeSyncer keeps the local bridge networks' chains in the node's own
// namespace in step with [BridgeRules]. It owns only those chains and
// their jumps, so it runs beside the agent's [HostSyncer] in the same
// namespace. Its methods may be called concurrently.
type BridgeSyncer struct{ p *portSyncer }

// NewBridgeSyncer returns a BridgeSyncer writing through r (nil: iptables
// in the caller's namespace). Of opts, only [WithConntrack] applies;
// without it, conntrack entries are deleted in the caller's namespace. It
// writes nothing until Sync.
func NewBridgeSyncer(r Rules, opts ...Option) *BridgeSyncer {
	return &BridgeSyncer{newPortSyncer(r, bridgeOwner, "the host namespace (bridge networks)", opts)}
}

// Sync makes the bridge networks' rules match want. A zero BridgeRules
// removes every chain and jump it owns. Bad input changes nothing. The
// caller sets net.ipv4.conf.<bridge>.route_localnet=1 on each bridge, so
// that connections to 127.0.0.1:<published port> can be DNATed, and
// net.ipv4.ip_forward=1. As [HostSyncer.Sync], when a UDP port starts
// being published, Sync then deletes the entries to it that nothing
// NATed.
func (s *BridgeSyncer) Sync(ctx context.Context, want BridgeRules) error {
	if err := want.validate(); err != nil {
		return err
	}
	return s.p.sync(ctx, bridgeRules(want), bridgeUDPPorts(want))
}

// Recheck makes the next Sync read the kernel's rules and repair them:
// the kernel said some were removed.
func (s *BridgeSyncer) Recheck() { s.p.s.recheck() }

// bridgeUDPPorts are the UDP host ports b DNATs.
func bridgeUDPPorts(b BridgeRules) map[uint16]bool {
	internal := map[string]bool{}
	for _, n := range b.Networks {
		internal[n.Bridge] = n.Internal
	}
	out := map[uint16]bool{}
	for _, p := range b.Ports {
		if p.Proto == "udp" && !internal[p.Bridge] {
			out[p.HostPort] = true
		}
	}
	return out
}
