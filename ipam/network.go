package ipam

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"unicode/utf8"
)

// Request is what a user asks for with `network create`, the strings as
// typed. The zero Request lets the [Allocator] choose the subnet and the
// gateway.
type Request struct {
	// Subnet is --subnet, a canonical IPv4 CIDR such as "10.20.0.0/24"
	// with a prefix length between 8 and 29. "" means carve one from the
	// pool; the other fields then must be empty too.
	Subnet string
	// Gateway is --gateway, an address inside Subnet other than its network
	// and broadcast addresses. "" means the first host address (.1).
	Gateway string
	// IPRange is --ip-range, a canonical CIDR inside Subnet that automatic
	// allocation draws from. "" means the whole subnet.
	IPRange string
	// AuxAddresses is --aux-address name=ip: host addresses of Subnet,
	// other than the gateway and each other, that are reserved and never
	// handed out. Names must be non-empty UTF-8. Nil means none.
	AuxAddresses map[string]string
}

// Network is an overlay network's allocation: its subnet, gateway, range
// and VNI.
type Network struct {
	ID      string       `json:"ID"`
	Subnet  netip.Prefix `json:"Subnet"`
	Gateway netip.Addr   `json:"Gateway"`
	// IPRange is where automatic allocation draws from; the zero Prefix
	// means the whole Subnet.
	IPRange netip.Prefix `json:"IPRange,omitzero"`
	// Aux are the reserved auxiliary addresses by name; nil means none.
	Aux map[string]netip.Addr `json:"Aux,omitempty"`
	VNI uint32                `json:"VNI"`
}

func (n Network) clone() Network {
	n.Aux = maps.Clone(n.Aux)
	return n
}

// parse turns a Request into a checked Network without ID and VNI. A zero
// Subnet in the result means the caller carves one.
func (r Request) parse() (Network, error) {
	var n Network
	if r.Subnet == "" {
		if r.Gateway != "" || r.IPRange != "" || len(r.AuxAddresses) > 0 {
			return n, fmt.Errorf("%w: --gateway, --ip-range and --aux-address need --subnet", ErrInvalid)
		}
		return n, nil
	}
	var err error
	if n.Subnet, err = parsePrefix("subnet", r.Subnet); err != nil {
		return n, err
	}
	if r.Gateway != "" {
		if n.Gateway, err = parseAddr("gateway", r.Gateway); err != nil {
			return n, err
		}
	}
	if r.IPRange != "" {
		if n.IPRange, err = parsePrefix("ip-range", r.IPRange); err != nil {
			return n, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.AuxAddresses)) {
		ip, err := parseAddr("aux-address "+name, r.AuxAddresses[name])
		if err != nil {
			return n, err
		}
		if n.Aux == nil {
			n.Aux = make(map[string]netip.Addr, len(r.AuxAddresses))
		}
		n.Aux[name] = ip
	}
	if err := checkSubnet(n.Subnet); err != nil {
		return n, err
	}
	if !n.Gateway.IsValid() {
		n.Gateway = n.Subnet.Addr().Next()
	}
	return n, checkNetwork(n)
}

func parsePrefix(what, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%w: %s %q is not a CIDR like 10.20.0.0/24", ErrInvalid, what, s)
	}
	return p, nil
}

func parseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("%w: %s %q is not an IP address", ErrInvalid, what, s)
	}
	return a, nil
}

// checkSubnet checks that p is a canonical IPv4 prefix between /8 and /29.
func checkSubnet(p netip.Prefix) error {
	switch {
	case !p.Addr().Is4():
		return fmt.Errorf("%w: subnet %s is not IPv4", ErrInvalid, p)
	case p != p.Masked():
		return fmt.Errorf("%w: subnet %s is not canonical, use %s", ErrInvalid, p, p.Masked())
	case p.Bits() < minPrefixLen || p.Bits() > maxPrefixLen:
		return fmt.Errorf("%w: subnet %s: prefix length must be between /%d and /%d",
			ErrInvalid, p, minPrefixLen, maxPrefixLen)
	}
	return nil
}

// checkNetwork checks everything about n that does not depend on other
// networks: the same rules for a user's request and for a loaded state.
func checkNetwork(n Network) error {
	if err := checkSubnet(n.Subnet); err != nil {
		return err
	}
	if err := checkHost("gateway", n.Subnet, n.Gateway); err != nil {
		return err
	}
	if r := n.IPRange; r.IsValid() {
		switch {
		case !r.Addr().Is4():
			return fmt.Errorf("%w: ip-range %s is not IPv4", ErrInvalid, r)
		case r != r.Masked():
			return fmt.Errorf("%w: ip-range %s is not canonical, use %s", ErrInvalid, r, r.Masked())
		case r.Bits() < n.Subnet.Bits() || !n.Subnet.Contains(r.Addr()):
			return fmt.Errorf("%w: ip-range %s is outside subnet %s", ErrInvalid, r, n.Subnet)
		}
	}
	seen := map[netip.Addr]string{n.Gateway: "the gateway"}
	for _, name := range slices.Sorted(maps.Keys(n.Aux)) {
		ip := n.Aux[name]
		if name == "" || !utf8.ValidString(name) {
			return fmt.Errorf("%w: aux-address %s: name %q is empty or not UTF-8", ErrInvalid, ip, name)
		}
		if err := checkHost("aux-address "+name, n.Subnet, ip); err != nil {
			return err
		}
		if other, ok := seen[ip]; ok {
			return fmt.Errorf("%w: aux-address %s=%s is %s already", ErrInvalid, name, ip, other)
		}
		seen[ip] = "aux-address " + name
	}
	return nil
}

// checkHost checks that ip is a host address of subnet: inside it, and
// neither its network nor its broadcast address.
func checkHost(what string, subnet netip.Prefix, ip netip.Addr) error {
	if !ip.Is4() || !subnet.Contains(ip) {
		return fmt.Errorf("%w: %s %s is outside subnet %s", ErrInvalid, what, ip, subnet)
	}
	lo, hi := bounds(subnet)
	switch u32(ip) {
	case lo:
		return fmt.Errorf("%w: %s %s is the network address of %s", ErrInvalid, what, ip, subnet)
	case hi:
		return fmt.Errorf("%w: %s %s is the broadcast address of %s", ErrInvalid, what, ip, subnet)
	}
	return nil
}
