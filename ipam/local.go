package ipam

import (
	"fmt"
	"net"
	"net/netip"
)

// localPools are the candidate subnets of the mesh_gwbridge bridge, in the
// order they are tried: Docker's local default pools, 172.17–31.0.0/16 and
// then 192.168.0.0/16 cut into /20s, without 172.17.0.0/16, which docker0
// takes on machines that run Docker too. The first, 172.18.0.0/16, is the
// tutorials' docker_gwbridge (172.18.0.2 is the ingress sandbox).
var localPools = []struct {
	pool netip.Prefix
	bits int
}{
	{netip.MustParsePrefix("172.18.0.0/15"), 16}, // 172.18, 172.19
	{netip.MustParsePrefix("172.20.0.0/14"), 16}, // 172.20 … 172.23
	{netip.MustParsePrefix("172.24.0.0/13"), 16}, // 172.24 … 172.31
	{netip.MustParsePrefix("192.168.0.0/16"), 20},
}

// GatewayBridgePool returns the subnet for a node's mesh_gwbridge: the
// first of 172.18.0.0/16 … 172.31.0.0/16, 192.168.0.0/20 …
// 192.168.240.0/20 that overlaps none of taken (the node's own addresses
// and routes, as prefixes), or [ErrExhausted]. Hand its addresses out
// with [NewPool].
func GatewayBridgePool(taken []netip.Prefix) (netip.Prefix, error) {
	overlap := func(c netip.Prefix) (netip.Prefix, bool) { return firstOverlap(c, taken) }
	for _, lp := range localPools {
		if p, ok := carve(lp.pool, lp.bits, overlap); ok {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("gateway bridge pool: %w: every local pool overlaps a taken prefix", ErrExhausted)
}

// BridgeNetworkPool returns the subnet of a new local bridge network
// (meshctl network create dev, and the default bridge): Docker's local
// pools in order, 172.17.0.0/16 first, the first that overlaps none of
// taken, or [ErrExhausted].
func BridgeNetworkPool(taken []netip.Prefix) (netip.Prefix, error) {
	docker0 := netip.MustParsePrefix("172.17.0.0/16")
	if _, taken := firstOverlap(docker0, taken); !taken {
		return docker0, nil
	}
	p, err := GatewayBridgePool(taken)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bridge network pool: %w: every local pool overlaps a taken prefix", ErrExhausted)
	}
	return p, nil
}

// firstOverlap returns the first of taken that overlaps p, masked.
func firstOverlap(p netip.Prefix, taken []netip.Prefix) (netip.Prefix, bool) {
	for _, t := range taken {
		if t.IsValid() && t.Masked().Overlaps(p) {
			return t.Masked(), true
		}
	}
	return netip.Prefix{}, false
}

// MAC returns the MAC address of an endpoint with IPv4 address ip:
// 02:42 followed by the four bytes of ip (Docker's rule), so that a peer's
// MAC follows from its IP. It MUST NOT change: nodes program the static
// neighbour and FDB entries of remote endpoints with it, and nodes of
// different versions must agree. This is the rule's only home: overlay
// fills in an Endpoint's or Peer's missing MAC with it. A non-IPv4 ip
// gives nil.
func MAC(ip netip.Addr) net.HardwareAddr {
	ip = ip.Unmap()
	if !ip.Is4() {
		return nil
	}
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// LocalNetwork checks a bridge network's request and returns its
// allocation, with the subnet from carve when the request names none. No
// VNI: a bridge network is one node's.
func LocalNetwork(r Request, carve func() (netip.Prefix, error)) (Network, error) {
	n, err := r.parse()
	if err != nil {
		return n, err
	}
	if !n.Subnet.IsValid() {
		if n.Subnet, err = carve(); err != nil {
			return n, err
		}
		n.Gateway = n.Subnet.Addr().Next()
	}
	return n, nil
}

// NewNetworkPool returns a Pool for n, checked as a request is: its
// range, gateway and auxiliary addresses are kept out of automatic
// allocation.
func NewNetworkPool(n Network) (*Pool, error) {
	if err := checkNetwork(n); err != nil {
		return nil, err
	}
	return newPool(n), nil
}
