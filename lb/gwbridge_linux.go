package lb

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// GatewayBridge is mesh_gwbridge in the node's own network namespace.
//
// Deprecated: use overlay.GatewayBridge, made by overlay.NewGatewayBridge
// with Name: GatewayBridgeName. It builds the same devices, addresses,
// route and sysctls through overlay's kernel seam, so tests can drive it
// on overlay.FakeKernel without root.
type GatewayBridge struct {
	Subnet  netip.Prefix // e.g. 172.18.0.0/16
	Gateway netip.Addr   // the bridge's address, e.g. 172.18.0.1
	MTU     int          // 1500 unless the underlay says otherwise
}

// Ensure creates or repairs the bridge, its address and forwarding. It is
// idempotent. The egress masquerade is a host rule ([HostRules.Egress]).
func (g *GatewayBridge) Ensure() error {
	link, err := netlink.LinkByName(GatewayBridgeName)
	if err != nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: GatewayBridgeName, MTU: g.MTU}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add bridge %s: %w", GatewayBridgeName, err)
		}
		if link, err = netlink.LinkByName(GatewayBridgeName); err != nil {
			return fmt.Errorf("find bridge %s: %w", GatewayBridgeName, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: g.Gateway.AsSlice(), Mask: net.CIDRMask(g.Subnet.Bits(), 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("set address %s on %s: %w", addr.IPNet, GatewayBridgeName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", GatewayBridgeName, err)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable ip_forward: %w", err)
	}
	// "curl localhost:8888" on a node: the DNAT to the ingress sandbox
	// keeps 127.0.0.1 as the source, which the bridge must route.
	localnet := "/proc/sys/net/ipv4/conf/" + GatewayBridgeName + "/route_localnet"
	if err := os.WriteFile(localnet, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable route_localnet on %s: %w", GatewayBridgeName, err)
	}
	return nil
}

// Attach connects a task sandbox to the bridge: a veth whose host end
// (hostVeth) is on mesh_gwbridge and whose other end is ifName in the
// sandbox with addr and the default route via the bridge.
func (g *GatewayBridge) Attach(sandbox, ifName, hostVeth string, addr netip.Addr) error {
	br, err := netlink.LinkByName(GatewayBridgeName)
	if err != nil {
		return fmt.Errorf("find %s: %w", GatewayBridgeName, err)
	}
	_ = g.Detach(hostVeth) // a leftover of an earlier attempt
	ns, err := nsfile.Fd(sandbox)
	if err != nil {
		return err
	}
	defer ns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostVeth, MTU: g.MTU, MasterIndex: br.Attrs().Index},
		PeerName: ifName, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s to %s: %w", hostVeth, sandbox, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return fmt.Errorf("set %s up: %w", hostVeth, err)
	}
	err = nsfile.Do(sandbox, func() error { return g.configurePeer(ifName, addr) })
	if err != nil {
		_ = g.Detach(hostVeth)
		return err
	}
	return nil
}

func (g *GatewayBridge) configurePeer(ifName string, addr netip.Addr) error {
	link, err := netlink.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("find %s in sandbox: %w", ifName, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(g.Subnet.Bits(), 32)}}
	if err := netlink.AddrReplace(link, a); err != nil {
		return fmt.Errorf("set address %s on %s: %w", a.IPNet, ifName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", ifName, err)
	}
	route := &netlink.Route{Dst: nil, Gw: g.Gateway.AsSlice(), LinkIndex: link.Attrs().Index}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s: %w", g.Gateway, err)
	}
	return nil
}

// Detach removes the host end of a task's gateway veth (the sandbox end
// goes with it). Absent is fine.
func (g *GatewayBridge) Detach(hostVeth string) error {
	link, err := netlink.LinkByName(hostVeth)
	if err != nil {
		return nil
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("del veth %s: %w", hostVeth, err)
	}
	return nil
}

// Sweep removes task veths an earlier run left on the bridge.
func (g *GatewayBridge) Sweep() {
	br, err := netlink.LinkByName(GatewayBridgeName)
	if err != nil {
		return
	}
	links, err := netlink.LinkList()
	if err != nil {
		return
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index && l.Type() == "veth" {
			_ = netlink.LinkDel(l)
		}
	}
}
