package ipam

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"unicode/utf8"
)

// Allocator is the manager's allocator for overlay networks: their
// subnets, gateways and VNIs, and the addresses of tasks, VIPs and load
// balancers on them. It never gives the same subnet, VNI or address to two
// holders at once (a removed network's, or a released address, may come
// back later: see the package doc). Its whole state, configuration
// included, round-trips through encoding/json, and a failed call changes
// nothing.
//
// Make one with [New] or by decoding JSON. An Allocator is not safe for
// concurrent use: the manager keeps it in its state, under the state's
// lock, and changes a copy ([Allocator.Clone]) that it commits only once
// written. Keep it as a *Allocator there: a copied struct shares its maps.
type Allocator struct {
	cfg  Config
	nets map[string]*entry // by network ID
}

type entry struct {
	net  Network
	pool *Pool
}

// New returns an empty Allocator. Zero fields of cfg take their
// [DefaultConfig] value; an invalid cfg is [ErrInvalid], naming the field.
func New(cfg Config) (*Allocator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Allocator{cfg: cfg, nets: map[string]*entry{}}, nil
}

// AddIngress adds the ingress network: 10.255.0.0/16, gateway 10.255.0.1,
// VNI [IngressVNI], as in the tutorials. It fails if id exists, if the
// ingress subnet overlaps a network, or if an ingress network exists.
func (a *Allocator) AddIngress(id string) (Network, error) {
	n := Network{ID: id, Subnet: ingressSubnet, Gateway: ingressGateway, VNI: IngressVNI}
	if err := a.checkID(id); err != nil {
		return Network{}, fmt.Errorf("add ingress network %s: %w", id, err)
	}
	if other, ok := a.vniOwner(IngressVNI); ok {
		return Network{}, fmt.Errorf("add ingress network %s: %w: network %s is the ingress network",
			id, ErrNetworkExists, other)
	}
	if err := a.checkOverlap(n.Subnet, nil); err != nil {
		return Network{}, fmt.Errorf("add ingress network %s: %w", id, err)
	}
	a.insert(n)
	return n.clone(), nil
}

// AddNetwork adds a user overlay network and returns it with its VNI,
// the lowest free one from Config.FirstVNI. With an empty req.Subnet it
// takes the first subnet of Config.OverlayPool that overlaps neither a
// network nor hostPrefixes (the node's own addresses, such as
// 192.168.33.10/24), with the first host address as gateway. A subnet
// given by the user is checked (see [Request]) and must not overlap either.
func (a *Allocator) AddNetwork(id string, req Request, hostPrefixes []netip.Prefix) (Network, error) {
	if err := a.checkID(id); err != nil {
		return Network{}, fmt.Errorf("add network %s: %w", id, err)
	}
	n, err := req.parse()
	if err != nil {
		return Network{}, fmt.Errorf("add network %s: %w", id, err)
	}
	n.ID = id
	if n.Subnet.IsValid() {
		err = a.checkOverlap(n.Subnet, hostPrefixes)
	} else {
		n.Subnet, err = a.carve(hostPrefixes)
		n.Gateway = n.Subnet.Addr().Next()
	}
	if err != nil {
		return Network{}, fmt.Errorf("add network %s: %w", id, err)
	}
	if n.VNI, err = a.nextVNI(); err != nil {
		return Network{}, fmt.Errorf("add network %s: %w", id, err)
	}
	a.insert(n)
	return n.clone(), nil
}

// RemoveNetwork removes a network with all its addresses, freeing its
// subnet and VNI for later networks. It does not refuse while addresses
// are allocated: the manager removes a network only once no endpoint uses
// it, and it would otherwise have to release its VIPs and LB addresses one
// by one first. An unknown id is [ErrUnknownNetwork].
func (a *Allocator) RemoveNetwork(id string) error {
	if _, ok := a.nets[id]; !ok {
		return fmt.Errorf("remove network %s: %w", id, ErrUnknownNetwork)
	}
	delete(a.nets, id)
	return nil
}

// Network returns the network with that ID.
func (a *Allocator) Network(id string) (Network, bool) {
	e, ok := a.nets[id]
	if !ok {
		return Network{}, false
	}
	return e.net.clone(), true
}

// Allocate hands out an address on a network: want, or with the zero want
// the next free one (see [Pool.Allocate]).
func (a *Allocator) Allocate(netID string, want netip.Addr) (netip.Addr, error) {
	e, ok := a.nets[netID]
	if !ok {
		return netip.Addr{}, fmt.Errorf("allocate address on network %s: %w", netID, ErrUnknownNetwork)
	}
	ip, err := e.pool.Allocate(want)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("allocate address on network %s: %w", netID, err)
	}
	return ip, nil
}

// Release gives back an address on a network (see [Pool.Release]).
func (a *Allocator) Release(netID string, ip netip.Addr) error {
	e, ok := a.nets[netID]
	if !ok {
		return fmt.Errorf("release %s on network %s: %w", ip, netID, ErrUnknownNetwork)
	}
	if err := e.pool.Release(ip); err != nil {
		return fmt.Errorf("release %s on network %s: %w", ip, netID, err)
	}
	return nil
}

// Clone returns a deep copy; changing one leaves the other as it was.
// The clone of nil is nil.
func (a *Allocator) Clone() *Allocator {
	if a == nil {
		return nil
	}
	c := &Allocator{cfg: a.cfg, nets: make(map[string]*entry, len(a.nets))}
	for id, e := range a.nets {
		c.nets[id] = &entry{net: e.net.clone(), pool: e.pool.clone()}
	}
	return c
}

func (a *Allocator) insert(n Network) {
	if a.nets == nil {
		a.nets = map[string]*entry{}
	}
	a.nets[n.ID] = &entry{net: n.clone(), pool: newPool(n)}
}

func (a *Allocator) checkID(id string) error {
	if id == "" || !utf8.ValidString(id) {
		return fmt.Errorf("%w: network ID %q is empty or not UTF-8", ErrInvalid, id)
	}
	if _, ok := a.nets[id]; ok {
		return ErrNetworkExists
	}
	return nil
}

// ids returns the network IDs in order, so that messages are stable.
func (a *Allocator) ids() []string {
	return slices.Sorted(maps.Keys(a.nets))
}

// overlap names what p overlaps: a network or one of hostPrefixes.
func (a *Allocator) overlap(p netip.Prefix, hostPrefixes []netip.Prefix) (netip.Prefix, string, bool) {
	for _, id := range a.ids() {
		if s := a.nets[id].net.Subnet; s.Overlaps(p) {
			return s, "network " + id, true
		}
	}
	for _, h := range hostPrefixes {
		if h.IsValid() && h.Masked().Overlaps(p) {
			return h.Masked(), "host address " + h.String(), true
		}
	}
	return netip.Prefix{}, "", false
}

func (a *Allocator) checkOverlap(p netip.Prefix, hostPrefixes []netip.Prefix) error {
	if q, what, ok := a.overlap(p, hostPrefixes); ok {
		return fmt.Errorf("%w: %s overlaps %s (%s)", ErrOverlap, p, what, q)
	}
	return nil
}

// carve returns the first subnet of the overlay pool that overlaps nothing.
func (a *Allocator) carve(hostPrefixes []netip.Prefix) (netip.Prefix, error) {
	cfg := a.cfg.withDefaults()
	p, ok := carve(cfg.OverlayPool, cfg.OverlayPrefixLen, func(c netip.Prefix) (netip.Prefix, bool) {
		q, _, ok := a.overlap(c, hostPrefixes)
		return q, ok
	})
	if !ok {
		return p, fmt.Errorf("%w: no free /%d left in %s", ErrExhausted, cfg.OverlayPrefixLen, cfg.OverlayPool)
	}
	return p, nil
}

// carve returns the first prefix of length bits inside pool, in address
// order, for which taken reports no overlap. taken returns what overlaps
// a candidate, so that the walk can jump past it: prefixes either nest or
// are disjoint, so the address after the later end of the two is the
// start of the next candidate that can be free.
func carve(pool netip.Prefix, bits int, taken func(netip.Prefix) (netip.Prefix, bool)) (netip.Prefix, bool) {
	for addr := pool.Addr(); pool.Contains(addr); {
		c := netip.PrefixFrom(addr, bits)
		q, ok := taken(c)
		if !ok {
			return c, true
		}
		_, end := bounds(c)
		if _, qend := bounds(q); qend > end {
			end = qend
		}
		if end == ^uint32(0) {
			break
		}
		addr = fromU32(end + 1)
	}
	return netip.Prefix{}, false
}

// vniOwner returns the network holding vni.
func (a *Allocator) vniOwner(vni uint32) (string, bool) {
	for id, e := range a.nets {
		if e.net.VNI == vni {
			return id, true
		}
	}
	return "", false
}

// nextVNI returns the lowest VNI from FirstVNI that no network holds,
// skipping IngressVNI. A removed network's VNI is thus reused; the package
// doc says why that is safe.
func (a *Allocator) nextVNI() (uint32, error) {
	held := make(map[uint32]bool, len(a.nets)+1)
	held[IngressVNI] = true
	for _, e := range a.nets {
		held[e.net.VNI] = true
	}
	first := a.cfg.withDefaults().FirstVNI
	for v := first; v <= maxVNI; v++ {
		if !held[v] {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: no free VNI from %d", ErrExhausted, first)
}
