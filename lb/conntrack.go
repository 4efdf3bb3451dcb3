package lb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
)

// Why the planes delete conntrack entries (kube-proxy's conntrack
// cleanup): a UDP "connection" has no end, so conntrack keeps an entry
// for as long as packets keep coming, and a client on a fixed source port
// keeps it forever. Two kinds of entries then outlive the rules:
//   - an entry DNATed to a backend that has left: every packet still goes
//     to the old address;
//   - an entry made while the service had no live backend, which nothing
//     NATed (the packet went to the sandbox itself): the DNAT rules added
//     later are never consulted for it.
// The rules are in the nat table, which sees only a connection's first
// packet, so only deleting the entry makes the next packet pick a live
// backend. TCP needs none of this: a reset or a timeout ends it.

// Conntrack is the connection tracking table of one network namespace,
// as far as the mesh cleans it. A failed call may have deleted part of
// what it was asked to; calling it again is safe.
type Conntrack interface {
	// DeleteUDP is "conntrack -D -p udp" for each filter: it deletes the
	// UDP entries that match any of them (IPv4) and returns how many.
	DeleteUDP(filters []ConntrackFilter) (int, error)
}

// ConntrackFilter selects UDP conntrack entries: those matching every
// field that is set. A filter with no field set is refused (it would
// match every entry).
type ConntrackFilter struct {
	// OrigDst is the original destination address ("--orig-dst").
	OrigDst netip.Addr
	// OrigDstPort is the original destination port ("--orig-port-dst").
	OrigDstPort uint16
	// ReplySrc is the reply's source address ("--reply-src"): for a
	// DNATed entry, the backend.
	ReplySrc netip.Addr
	// NotNATed keeps only entries whose destination was not rewritten
	// (the reply comes from the original destination): those made while
	// no rule NATed them. NATed entries to a live backend are spared.
	NotNATed bool
}

func (f ConntrackFilter) String() string {
	s := "udp"
	if f.OrigDst.IsValid() {
		s += " orig-dst " + f.OrigDst.String()
	}
	if f.OrigDstPort != 0 {
		s += fmt.Sprintf(" orig-port-dst %d", f.OrigDstPort)
	}
	if f.ReplySrc.IsValid() {
		s += " reply-src " + f.ReplySrc.String()
	}
	if f.NotNATed {
		s += " not-nated"
	}
	return s
}

func (f ConntrackFilter) check() error {
	if !f.OrigDst.IsValid() && f.OrigDstPort == 0 && !f.ReplySrc.IsValid() && !f.NotNATed {
		return fmt.Errorf("conntrack filter matches everything: %w", syscall.EINVAL)
	}
	if f.OrigDst.IsValid() && !f.OrigDst.Is4() || f.ReplySrc.IsValid() && !f.ReplySrc.Is4() {
		return fmt.Errorf("conntrack filter %s: want IPv4: %w", f, syscall.EINVAL)
	}
	return nil
}

// Flow is a conntrack entry as the filters see it.
type Flow struct {
	Proto    string         // "udp", "tcp", ...
	Src, Dst netip.AddrPort // the original direction
	// ReplySrc is where replies come from: Dst, unless the destination
	// was NATed.
	ReplySrc netip.AddrPort
}

func (fl Flow) String() string {
	return fmt.Sprintf("%s src=%s dst=%s reply-src=%s", fl.Proto, fl.Src, fl.Dst, fl.ReplySrc)
}

// matches reports whether fl is a UDP entry f selects.
func (f ConntrackFilter) matches(fl Flow) bool {
	switch {
	case fl.Proto != "udp":
		return false
	case f.OrigDst.IsValid() && fl.Dst.Addr() != f.OrigDst:
		return false
	case f.OrigDstPort != 0 && fl.Dst.Port() != f.OrigDstPort:
		return false
	case f.ReplySrc.IsValid() && fl.ReplySrc.Addr() != f.ReplySrc:
		return false
	case f.NotNATed && fl.ReplySrc != fl.Dst:
		return false
	}
	return true
}

func compareFilters(a, b ConntrackFilter) int {
	return cmp.Or(a.OrigDst.Compare(b.OrigDst), cmp.Compare(a.OrigDstPort, b.OrigDstPort),
		a.ReplySrc.Compare(b.ReplySrc), cmpBool(a.NotNATed, b.NotNATed))
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// ctCleanup holds the conntrack deletions a namespace owes: they are
// added as soon as the model changes and kept until a deletion succeeds,
// so a failed Sync (rules or conntrack) makes the next one try again even
// when the model has moved on meanwhile. An extra deletion only makes a
// flow's next packet pick its backend again.
type ctCleanup struct {
	ct      Conntrack
	pending []ConntrackFilter // sorted, each once
}

func (c *ctCleanup) add(fs ...ConntrackFilter) {
	for _, f := range fs {
		if i, found := slices.BinarySearchFunc(c.pending, f, compareFilters); !found {
			c.pending = slices.Insert(c.pending, i, f)
		}
	}
}

// flush makes the deletions owed; they stay owed if it fails. where names
// the namespace for the error.
func (c *ctCleanup) flush(where string) error {
	if len(c.pending) == 0 {
		return nil
	}
	if _, err := c.ct.DeleteUDP(c.pending); err != nil {
		return fmt.Errorf("delete udp conntrack entries (%d filters, first %s) in %s: %w",
			len(c.pending), c.pending[0], where, err)
	}
	c.pending = nil
	return nil
}

// carriesUDP reports whether UDP may reach the service's backends in a
// sandbox of the given kind. An LB sandbox marks everything sent to the
// VIP, whatever the protocol (its services have no ports), so a VIP
// service may carry UDP; the ingress sandbox forwards published ports.
func carriesUDP(kind string, s Service) bool {
	if kind == SandboxLB {
		return s.VIP.IsValid()
	}
	return slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Proto == "udp" })
}

// udpCleanup is what conntrack must forget when a sandbox of the given
// kind goes from old (by key; nil: nothing known) to the services now,
// of which fresh are those new or changed:
//   - the entries replied by a backend that left a service (reply-src);
//     a draining backend (weight 0) has not left: its flows go on;
//   - when a service gets its first live backend (or is new with one),
//     the entries to it that nothing NATed: to the VIP in an LB sandbox,
//     to each published UDP port in the ingress sandbox.
//
// A service removed whole loses its backends as well.
func udpCleanup(kind string, old map[string]svcUnit, now, fresh []Service) []ConntrackFilter {
	var out []ConntrackFilter
	added := 0 // fresh services old does not know
	left := func(was Service, stays map[netip.Addr]int) {
		if !carriesUDP(kind, was) {
			return
		}
		for _, b := range was.Backends {
			if _, ok := stays[b.Addr]; !ok {
				out = append(out, ConntrackFilter{ReplySrc: b.Addr})
			}
		}
	}
	for _, s := range fresh {
		su, known := old[s.Key]
		was := su.svc
		if known {
			left(was, backendWeights(s))
		} else {
			added++
		}
		if !carriesUDP(kind, s) || len(liveBackends(s)) == 0 || known && len(liveBackends(was)) > 0 {
			continue
		}
		if kind == SandboxLB {
			out = append(out, ConntrackFilter{OrigDst: s.VIP, NotNATed: true})
			continue
		}
		for _, p := range s.Ports {
			if p.Proto == "udp" {
				out = append(out, ConntrackFilter{OrigDstPort: p.Published, NotNATed: true})
			}
		}
	}
	if len(old) > len(now)-added { // some service went away
		keep := make(map[string]bool, len(now))
		for _, s := range now {
			keep[s.Key] = true
		}
		for k, su := range old {
			if !keep[k] {
				left(su.svc, nil)
			}
		}
	}
	slices.SortFunc(out, compareFilters)
	return slices.Compact(out)
}

// hostUDPPorts are the UDP ports the host rules DNAT.
func hostUDPPorts(h HostRules) map[uint16]bool {
	out := map[uint16]bool{}
	for _, p := range h.Published {
		if p.Proto == "udp" {
			out[p.Published] = true
		}
	}
	for _, hp := range h.HostPorts {
		if hp.Proto == "udp" {
			out[hp.Published] = true
		}
	}
	return out
}
