package ipam

import (
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Pool hands out the addresses of one IPv4 subnet: an overlay network's
// inside an [Allocator], or a node's local bridge (see [NewPool]).
// Automatic allocation is serial: the next free address after the last one
// handed out, wrapping around at the end of the range (see the package
// doc). A Pool is not safe for concurrent use. A failed call changes
// nothing.
type Pool struct {
	subnet  netip.Prefix
	gateway netip.Addr
	lo, hi  uint32              // the range automatic allocation walks, inclusive
	resv    map[uint32]string   // gateway and aux addresses: never handed out
	used    map[uint32]struct{} // handed out and not released
	last    netip.Addr          // last address handed out automatically; zero: none yet
}

// NewPool returns a Pool for a local bridge's subnet, such as the
// mesh_gwbridge pool from [GatewayBridgePool]. The gateway (the bridge's
// own address) is reserved; the zero gateway means the first host address,
// so that tasks get .2, .3, … Reserve a conventional address, such as the
// ingress sandbox's 172.18.0.2, with [Pool.Allocate] before anything else.
// The subnet must be a canonical IPv4 prefix between /8 and /29.
func NewPool(subnet netip.Prefix, gateway netip.Addr) (*Pool, error) {
	if err := checkSubnet(subnet); err != nil {
		return nil, err
	}
	if !gateway.IsValid() {
		gateway = subnet.Addr().Next()
	}
	n := Network{Subnet: subnet, Gateway: gateway}
	if err := checkNetwork(n); err != nil {
		return nil, err
	}
	return newPool(n), nil
}

// newPool returns an empty Pool for a network that passed checkNetwork.
func newPool(n Network) *Pool {
	rng := n.Subnet
	if n.IPRange.IsValid() {
		rng = n.IPRange
	}
	p := &Pool{
		subnet:  n.Subnet,
		gateway: n.Gateway,
		resv:    map[uint32]string{u32(n.Gateway): "the gateway"},
		used:    map[uint32]struct{}{},
	}
	p.lo, p.hi = bounds(rng)
	for name, ip := range n.Aux {
		p.resv[u32(ip)] = "aux-address " + name
	}
	return p
}

// Subnet returns the pool's subnet.
func (p *Pool) Subnet() netip.Prefix { return p.subnet }

// Gateway returns the pool's gateway address, which it never hands out.
func (p *Pool) Gateway() netip.Addr { return p.gateway }

// Allocate hands out want, or with the zero want the next free address of
// the range. A wanted address may lie anywhere in the subnet, also outside
// the range (as `--ip` in Docker); handing it out does not move the cursor
// of automatic allocation. Errors: [ErrInvalid] when want is outside the
// subnet or is its network or broadcast address, [ErrInUse] when it is
// allocated or reserved, [ErrExhausted] when the range has no free address.
func (p *Pool) Allocate(want netip.Addr) (netip.Addr, error) {
	if !want.IsValid() {
		return p.next()
	}
	want = want.Unmap()
	if err := checkHost("address", p.subnet, want); err != nil {
		return netip.Addr{}, err
	}
	v := u32(want)
	if what, ok := p.resv[v]; ok {
		return netip.Addr{}, fmt.Errorf("%w: %s is %s", ErrInUse, want, what)
	}
	if _, ok := p.used[v]; ok {
		return netip.Addr{}, fmt.Errorf("%w: %s is allocated", ErrInUse, want)
	}
	p.used[v] = struct{}{}
	return want, nil
}

// next hands out the first free address after p.last, wrapping around.
// The walk is bounded by the range size, and every address it passes is
// allocated or reserved, so its cost is at most the number of entries the
// pool holds: memory, not time, is what a big subnet costs.
func (p *Pool) next() (netip.Addr, error) {
	n := uint64(p.hi-p.lo) + 1
	start := uint64(0)
	if p.last.IsValid() {
		if l := u32(p.last); l >= p.lo && l < p.hi {
			start = uint64(l-p.lo) + 1
		}
	}
	netAddr, bcast := bounds(p.subnet)
	for i := range n {
		v := p.lo + uint32((start+i)%n)
		if v == netAddr || v == bcast {
			continue
		}
		if _, ok := p.resv[v]; ok {
			continue
		}
		if _, ok := p.used[v]; ok {
			continue
		}
		p.used[v] = struct{}{}
		p.last = fromU32(v)
		return p.last, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: no free address in %s", ErrExhausted, p.rangePrefix())
}

// Release gives back an address handed out by [Pool.Allocate]. Releasing
// an address that is not allocated (free, reserved or outside the subnet)
// is [ErrNotAllocated].
func (p *Pool) Release(ip netip.Addr) error {
	ip = ip.Unmap()
	if !ip.Is4() || !p.subnet.Contains(ip) {
		return fmt.Errorf("%w: %s is outside subnet %s", ErrNotAllocated, ip, p.subnet)
	}
	v := u32(ip)
	if what, ok := p.resv[v]; ok {
		return fmt.Errorf("%w: %s is %s", ErrNotAllocated, ip, what)
	}
	if _, ok := p.used[v]; !ok {
		return fmt.Errorf("%w: %s is free", ErrNotAllocated, ip)
	}
	delete(p.used, v)
	return nil
}

// Allocated returns the allocated addresses in order.
func (p *Pool) Allocated() []netip.Addr {
	out := make([]netip.Addr, 0, len(p.used))
	for _, v := range slices.Sorted(maps.Keys(p.used)) {
		out = append(out, fromU32(v))
	}
	return out
}

func (p *Pool) clone() *Pool {
	c := *p
	c.resv = maps.Clone(p.resv)
	c.used = maps.Clone(p.used)
	return &c
}

// rangePrefix returns the prefix automatic allocation walks, for messages.
func (p *Pool) rangePrefix() netip.Prefix {
	bits := 32
	for size := uint64(p.hi-p.lo) + 1; size > 1; size >>= 1 {
		bits--
	}
	return netip.PrefixFrom(fromU32(p.lo), bits)
}

// u32 returns an IPv4 address as a number; a must be IPv4.
func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromU32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// bounds returns the first and last address of an IPv4 prefix as numbers.
func bounds(p netip.Prefix) (lo, hi uint32) {
	lo = u32(p.Masked().Addr())
	return lo, lo + uint32(uint64(1)<<(32-p.Bits())-1)
}
