package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// Errors returned (wrapped, with context) by this package. Test with
// [errors.Is].
var (
	// ErrInvalid: a request, address or state is malformed or contradicts
	// itself (gateway outside the subnet, non-canonical CIDR, …).
	ErrInvalid = errors.New("ipam: invalid request")
	// ErrOverlap: a subnet overlaps another network or a host prefix.
	ErrOverlap = errors.New("ipam: overlapping subnet")
	// ErrExhausted: no free address, subnet, VNI or bridge pool is left.
	ErrExhausted = errors.New("ipam: pool exhausted")
	// ErrInUse: a requested address is allocated or reserved already.
	ErrInUse = errors.New("ipam: address in use")
	// ErrNotAllocated: a released address was not allocated.
	ErrNotAllocated = errors.New("ipam: address not allocated")
	// ErrUnknownNetwork: no network has that ID.
	ErrUnknownNetwork = errors.New("ipam: no such network")
	// ErrNetworkExists: a network with that ID exists already.
	ErrNetworkExists = errors.New("ipam: network exists")
)

// Fixed numbers. The ingress ones cross nodes and upgrades: every node
// programs its ingress namespace with them, and the tutorials show them.
const (
	// IngressVNI is the ingress network's VXLAN network identifier, the
	// first of Swarm's range. It MUST NOT change: nodes of different
	// versions would put ingress traffic on different VNIs. User networks
	// never get it, even before the ingress network exists.
	IngressVNI uint32 = 4096

	// maxVNI is the largest VXLAN network identifier (24 bits).
	maxVNI uint32 = 1<<24 - 1

	// minPrefixLen bounds subnets from above: a /8 is the whole default
	// overlay pool, and a larger subnet would swallow private ranges that
	// hosts use.
	minPrefixLen = 8
	// maxPrefixLen bounds subnets from below: a /29 has six host addresses,
	// the gateway and five to hand out (a VIP, LB addresses, a task). A /30
	// would leave one, which no service can live with.
	maxPrefixLen = 29
)

var (
	// ingressSubnet and ingressGateway are the tutorials' ingress network
	// (newer Swarm carves a /24 from the pool instead). MUST NOT change,
	// like IngressVNI.
	ingressSubnet  = netip.MustParsePrefix("10.255.0.0/16")
	ingressGateway = netip.MustParseAddr("10.255.0.1")
)

// Config says where an [Allocator] carves user overlay networks from. Start
// from [DefaultConfig]; a zero field takes its DefaultConfig value. [New]
// copies it, and the Allocator persists it with its state, so changing a
// Config later affects only allocators made from it afterwards.
type Config struct {
	// OverlayPool is where networks created without --subnet get their
	// subnet. Default 10.0.0.0/8, Swarm's default address pool. It must be
	// a canonical IPv4 prefix from /8 up to OverlayPrefixLen.
	OverlayPool netip.Prefix `json:"OverlayPool"`

	// OverlayPrefixLen is the prefix length of each carved subnet, between
	// 8 and 29. Default 24 (254 hosts, Swarm's default): longer fits more
	// networks in the pool and fewer tasks in each.
	OverlayPrefixLen int `json:"OverlayPrefixLen"`

	// FirstVNI is the lowest VXLAN ID a user network gets, between 1 and
	// 2^24-1. Default 4097, the one after [IngressVNI], so that the first
	// user overlay has 4097 as in the tutorials.
	FirstVNI uint32 `json:"FirstVNI"`
}

// DefaultConfig returns Swarm's defaults, which the tutorials show.
func DefaultConfig() Config {
	return Config{
		OverlayPool:      netip.MustParsePrefix("10.0.0.0/8"), // Swarm's default-addr-pool
		OverlayPrefixLen: 24,                                  // Swarm's default-addr-pool-mask-length
		FirstVNI:         IngressVNI + 1,                      // user overlays follow the ingress network
	}
}

// withDefaults returns c with its zero fields set from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if !c.OverlayPool.IsValid() {
		c.OverlayPool = d.OverlayPool
	}
	if c.OverlayPrefixLen == 0 {
		c.OverlayPrefixLen = d.OverlayPrefixLen
	}
	if c.FirstVNI == 0 {
		c.FirstVNI = d.FirstVNI
	}
	return c
}

// validate checks a Config whose defaults are filled in.
func (c Config) validate() error {
	p := c.OverlayPool
	switch {
	case !p.Addr().Is4():
		return fmt.Errorf("%w: config OverlayPool %s is not IPv4", ErrInvalid, p)
	case p != p.Masked():
		return fmt.Errorf("%w: config OverlayPool %s is not canonical, use %s", ErrInvalid, p, p.Masked())
	case p.Bits() < minPrefixLen:
		return fmt.Errorf("%w: config OverlayPool %s is larger than /%d", ErrInvalid, p, minPrefixLen)
	case c.OverlayPrefixLen < minPrefixLen || c.OverlayPrefixLen > maxPrefixLen:
		return fmt.Errorf("%w: config OverlayPrefixLen %d is outside %d..%d",
			ErrInvalid, c.OverlayPrefixLen, minPrefixLen, maxPrefixLen)
	case c.OverlayPrefixLen < p.Bits():
		return fmt.Errorf("%w: config OverlayPrefixLen %d is shorter than OverlayPool %s",
			ErrInvalid, c.OverlayPrefixLen, p)
	case c.FirstVNI > maxVNI:
		return fmt.Errorf("%w: config FirstVNI %d is above %d", ErrInvalid, c.FirstVNI, maxVNI)
	}
	return nil
}
