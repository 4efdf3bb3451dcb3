package lb

import (
	"fmt"
	"net/netip"
	"slices"
)

// The kinds of [Sandbox].
const (
	SandboxIngress = "ingress" // ingress_sbox: published ports and the ingress VIPs
	SandboxLB      = "lb"      // lb_<netid[:9]>: the VIPs of one overlay network
)

// Port is a published port: traffic to Published is served by the tasks'
// Target. Proto is "tcp" or "udp".
type Port struct {
	Proto     string
	Published uint16
	Target    uint16
}

func (p Port) String() string { return fmt.Sprintf("%d:%d/%s", p.Published, p.Target, p.Proto) }

// Backend is one task behind a service, by its address on the sandbox's
// network. Weight 0 means draining: established connections go on, new
// ones go elsewhere. IPVS gets the weight as is; the iptables plane treats
// every weight above 0 as 1 (strict rotation).
type Backend struct {
	Addr   netip.Addr
	Weight int
}

// Service is a load-balanced service as one node sees it on one sandbox
// (the ingress sandbox, or the LB sandbox of one overlay network).
type Service struct {
	// Key is a stable id, e.g. "<serviceID>/<networkID>". It names the
	// service's chain (see svcChain), so it must not change while the
	// service lives.
	Key string
	// Name is the service's name, used only in rule comments.
	Name string
	// FWMark is the node-local firewall mark of (service, network), from
	// 0x100 up. It MUST NOT change while the service lives: rules, IPVS
	// and conntrack entries all key on it.
	FWMark uint32
	// VIP is the service's virtual IP on this network. Invalid means no
	// VIP rule (ingress-only services in the ingress sandbox).
	VIP netip.Addr
	// Ports are the published ports; only the ingress sandbox uses them
	// (an LB sandbox ignores them).
	Ports []Port
	// Backends are the task addresses on this network. Empty is allowed:
	// new connections are then refused, never delivered to the sandbox.
	Backends []Backend
}

// Sandbox is everything one load-balancing namespace must do.
type Sandbox struct {
	Kind     string       // SandboxIngress or SandboxLB
	OwnAddr  netip.Addr   // this node's address on the network (eth0): the SNAT source
	Subnet   netip.Prefix // the network's subnet
	Services []Service    // empty: remove everything of ours
	// Ifaces are the sandbox's interfaces (eth0, and eth1 on
	// mesh_gwbridge for ingress): the iptables plane's flowtable
	// offloads connections between them.
	Ifaces []string
}

// HostPort is a mode=host published port of a task running on this node:
// traffic to the node's Published port goes to Dest:Target, Dest being the
// task's address on the gateway bridge. No SNAT: the task sees the client.
type HostPort struct {
	Port
	Dest netip.Addr
}

// HostRules are the rules in the node's own network namespace.
type HostRules struct {
	// IngressGW is the ingress sandbox's address on mesh_gwbridge
	// (172.18.0.2). Required when Published is not empty.
	IngressGW netip.Addr
	// Published are the ingress-mode ports of all services; Target is not
	// used here (the ingress sandbox receives the published port).
	Published []Port
	// HostPorts are the mode=host ports of tasks on this node.
	HostPorts []HostPort
	// Egress is mesh_gwbridge's subnet: traffic from it leaving by
	// another interface is masqueraded, as Swarm's docker_gwbridge.
	// Invalid means none.
	Egress netip.Prefix
}

// TaskRules are the rules in one task's sandbox.
type TaskRules struct {
	// Addr is the task's address on the ingress network; the redirects
	// apply only to traffic for it. Invalid means any local address.
	Addr netip.Addr
	// Redirects send Published to Target (ingress traffic arrives with the
	// published port, since the load balancer keeps it). Ports whose
	// Published equals Target need nothing and are skipped.
	Redirects []Port
	// DNS are the ports the embedded resolver's sockets have on
	// 127.0.0.11 in the task; queries to 127.0.0.11:53 are DNATed there.
	// Zero means no resolver.
	DNS DNSPorts
}

// DNSPorts are a task resolver's UDP and TCP ports on 127.0.0.11.
type DNSPorts struct{ UDP, TCP uint16 }

func (p Port) validate() error {
	if p.Proto != "tcp" && p.Proto != "udp" {
		return fmt.Errorf("port %s: protocol %q: want tcp or udp", p, p.Proto)
	}
	if p.Published == 0 || p.Target == 0 {
		return fmt.Errorf("port %s: port 0", p)
	}
	return nil
}

// portKey identifies a listening port: two rules for one cannot coexist.
type portKey struct {
	proto string
	port  uint16
}

func (sb Sandbox) validate() error {
	if sb.Kind != SandboxIngress && sb.Kind != SandboxLB {
		return fmt.Errorf("sandbox kind %q: want %q or %q", sb.Kind, SandboxIngress, SandboxLB)
	}
	for _, i := range sb.Ifaces {
		if !ifaceName.MatchString(i) {
			return fmt.Errorf("sandbox %s: interface name %q", sb.Kind, i)
		}
	}
	if len(sb.Services) == 0 {
		return nil
	}
	if !sb.OwnAddr.Is4() || !sb.Subnet.IsValid() || !sb.Subnet.Addr().Is4() {
		return fmt.Errorf("sandbox %s: own address %v and subnet %v must be IPv4", sb.Kind, sb.OwnAddr, sb.Subnet)
	}
	keys, marks := make(map[string]bool, len(sb.Services)), make(map[uint32]string, len(sb.Services))
	ports := make(map[portKey]string, len(sb.Services))
	for _, s := range sb.Services {
		if s.Key == "" || keys[s.Key] {
			return fmt.Errorf("service %q: empty or duplicate key", s.Key)
		}
		keys[s.Key] = true
		if other, dup := marks[s.FWMark]; dup || s.FWMark == 0 {
			return fmt.Errorf("service %s: fwmark %#x is 0 or also used by %s", s.Key, s.FWMark, other)
		}
		marks[s.FWMark] = s.Key
		if s.VIP.IsValid() && !s.VIP.Is4() {
			return fmt.Errorf("service %s: VIP %s is not IPv4", s.Key, s.VIP)
		}
		if err := checkBackends(s); err != nil {
			return err
		}
		if sb.Kind != SandboxIngress {
			continue
		}
		for _, p := range s.Ports {
			if err := p.validate(); err != nil {
				return fmt.Errorf("service %s: %w", s.Key, err)
			}
			k := portKey{p.Proto, p.Published}
			if other, dup := ports[k]; dup && other != s.Key {
				return fmt.Errorf("service %s: port %s also published by %s", s.Key, p, other)
			}
			ports[k] = s.Key
		}
	}
	return nil
}

// checkBackends refuses non-IPv4 addresses and negative weights. An
// address listed twice is not an error (endpoint records can overlap
// while a task is replaced): the highest weight counts.
func checkBackends(s Service) error {
	for _, b := range s.Backends {
		if !b.Addr.Is4() || b.Weight < 0 {
			return fmt.Errorf("service %s: backend %v weight %d: want IPv4, weight >= 0", s.Key, b.Addr, b.Weight)
		}
	}
	return nil
}

// backendWeights are the backends by address, the highest weight of an
// address listed twice.
func backendWeights(s Service) map[netip.Addr]int {
	w := make(map[netip.Addr]int, len(s.Backends))
	for _, b := range s.Backends {
		if old, ok := w[b.Addr]; !ok || b.Weight > old {
			w[b.Addr] = b.Weight
		}
	}
	return w
}

func (h HostRules) validate() error {
	if len(h.Published) > 0 && !h.IngressGW.Is4() {
		return fmt.Errorf("host rules: ingress gateway %v must be IPv4", h.IngressGW)
	}
	if h.Egress.IsValid() && !h.Egress.Addr().Is4() {
		return fmt.Errorf("host rules: egress subnet %s must be IPv4", h.Egress)
	}
	seen := map[portKey]bool{}
	check := func(p Port) error {
		if err := p.validate(); err != nil {
			return fmt.Errorf("host rules: %w", err)
		}
		if seen[portKey{p.Proto, p.Published}] {
			return fmt.Errorf("host rules: port %d/%s published twice", p.Published, p.Proto)
		}
		seen[portKey{p.Proto, p.Published}] = true
		return nil
	}
	for _, p := range h.Published {
		if err := check(p); err != nil {
			return err
		}
	}
	for _, hp := range h.HostPorts {
		if err := check(hp.Port); err != nil {
			return err
		}
		if !hp.Dest.Is4() {
			return fmt.Errorf("host rules: port %s: destination %v must be IPv4", hp.Port, hp.Dest)
		}
	}
	return nil
}

func (t TaskRules) validate() error {
	if t.Addr.IsValid() && !t.Addr.Is4() {
		return fmt.Errorf("task rules: address %s must be IPv4", t.Addr)
	}
	if (t.DNS.UDP == 0) != (t.DNS.TCP == 0) {
		return fmt.Errorf("task rules: resolver ports udp %d, tcp %d: both or neither", t.DNS.UDP, t.DNS.TCP)
	}
	for _, p := range t.Redirects {
		if err := p.validate(); err != nil {
			return fmt.Errorf("task rules: %w", err)
		}
	}
	return nil
}

// liveBackends are the addresses of the backends taking new connections,
// sorted, each once.
func liveBackends(s Service) []netip.Addr {
	var out []netip.Addr
	for _, b := range s.Backends {
		if b.Weight > 0 {
			out = append(out, b.Addr)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// equal reports whether s and o render the same rules.
func (s Service) equal(o Service) bool {
	return s.Key == o.Key && s.Name == o.Name && s.FWMark == o.FWMark && s.VIP == o.VIP &&
		slices.Equal(s.Ports, o.Ports) && slices.Equal(s.Backends, o.Backends)
}

// clone copies s, so that a caller reusing its slices cannot change what
// a cache holds.
func (s Service) clone() Service {
	s.Ports, s.Backends = slices.Clone(s.Ports), slices.Clone(s.Backends)
	return s
}
