package lb

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// TracePacket, the packet tracer, follows the first packet of a new
// connection through the namespaces of one node, reading the rules the
// syncers left in each namespace's FakeRules (the agent's tests use it to
// follow a packet from the client to a task). It understands only the rule shapes the renderers
// emit (as iptables-save spells them) and fails the test on any other. A
// fwmark lookup in a FakeIPVS and a rotation chain both fan out to every
// backend, so one trace shows every place a connection can end.

// TraceNS is one network namespace as the tracer sees it.
type TraceNS struct {
	Name  string
	Rules *FakeRules // nil: no rules
	IPVS  *FakeIPVS  // nil: no IPVS
	Local []netip.Addr
	Task  bool // delivering here reaches a task (else it is a leak)
	// Ifaces maps destination prefixes to an output interface and that
	// interface's address (for -o and MASQUERADE); the default is eth0.
	// A packet arriving from an address comes in by the interface that
	// leads back to it (for -i).
	Ifaces map[netip.Prefix]Iface
	// Gateway, when set, is where packets to addresses outside Ifaces'
	// prefixes go first (a container's default route through the node);
	// nil: straight to the namespace that owns the destination.
	Gateway *TraceNS
}

// Iface is an output interface and its address.
type Iface struct {
	Name string
	Addr netip.Addr
}

// TraceNet is every namespace a traced packet may cross.
type TraceNet []*TraceNS

type packet struct {
	src, dst netip.Addr
	in       string // input interface; "" for a packet the namespace sends
	proto    string
	dport    uint16
	mark     uint32
	dnat     bool // conntrack state DNAT
	ipvs     bool // IPVS owns the connection
}

func (p packet) String() string { return fmt.Sprintf("%s:%d", p.dst, p.dport) }

// Fataler is the part of testing.TB the tracer needs.
type Fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

type tracer struct {
	t       Fataler
	net     TraceNet
	saved   map[*TraceNS]saved
	matches []string
	outs    []string
}

// TracePacket traces a new connection from src to dst:port. It starts in
// the namespace that owns src (OUTPUT) or else in the one that owns dst
// (PREROUTING). matches lists every rule that matched, as "ns table/chain:
// rule"; out lists where the connection ends: "addr:port" in a task (or on
// a node outside rules), "REJECT", "DROP", or "<ns> addr:port" when it is
// delivered to a namespace that is not a task.
func TracePacket(t Fataler, rules TraceNet, src netip.Addr, proto string, dst netip.Addr, port uint16) (matches []string, out string) {
	t.Helper()
	tr := &tracer{t: t, net: rules, saved: map[*TraceNS]saved{}}
	p := packet{src: src, dst: dst, proto: proto, dport: port}
	if ns := rules.owner(src, nil); ns != nil {
		tr.output(ns, p, 0)
	} else if ns := rules.owner(dst, nil); ns != nil {
		tr.arrive(ns, p, 0)
	} else {
		t.Fatalf("tracer: no namespace owns %s or %s", src, dst)
	}
	return tr.matches, strings.Join(tr.outs, ", ")
}

func (n TraceNet) owner(a netip.Addr, except *TraceNS) *TraceNS {
	for _, ns := range n {
		if ns != except && slices.Contains(ns.Local, a) {
			return ns
		}
	}
	return nil
}

func (ns *TraceNS) isLocal(a netip.Addr) bool { return slices.Contains(ns.Local, a) }

func (ns *TraceNS) onLink(dst netip.Addr) bool {
	for pfx := range ns.Ifaces {
		if pfx.Contains(dst) {
			return true
		}
	}
	return false
}

func (ns *TraceNS) outIface(dst netip.Addr) Iface {
	for pfx, ifc := range ns.Ifaces {
		if pfx.Contains(dst) {
			return ifc
		}
	}
	return Iface{Name: "eth0"}
}

const maxHops = 8

// arrive is a packet entering ns from a link: mangle and nat PREROUTING,
// then routing. Marks and conntrack state do not cross namespaces.
func (tr *tracer) arrive(ns *TraceNS, p packet, hops int) {
	if hops > maxHops {
		tr.t.Fatalf("tracer: more than %d hops at %s", maxHops, ns.Name)
	}
	p.mark, p.dnat, p.ipvs = 0, false, false
	p.in = ns.outIface(p.src).Name
	for _, q := range tr.hook(ns, "mangle", "PREROUTING", p) {
		for _, r := range tr.hook(ns, "nat", "PREROUTING", q) {
			if ns.isLocal(r.dst) {
				tr.input(ns, r, hops)
			} else if f := tr.hook(ns, "filter", "FORWARD", r); len(f) > 0 {
				tr.leave(ns, f[0], hops)
			}
		}
	}
}

// output is a packet the namespace sends itself.
func (tr *tracer) output(ns *TraceNS, p packet, hops int) {
	for _, q := range tr.hook(ns, "mangle", "OUTPUT", p) {
		for _, r := range tr.hook(ns, "nat", "OUTPUT", q) {
			for _, s := range tr.hook(ns, "filter", "OUTPUT", r) {
				if ns.isLocal(s.dst) {
					tr.input(ns, s, hops)
				} else {
					tr.leave(ns, s, hops)
				}
			}
		}
	}
}

// input is local delivery: mangle and filter INPUT, then IPVS by mark.
func (tr *tracer) input(ns *TraceNS, p packet, hops int) {
	for _, q := range tr.hook(ns, "mangle", "INPUT", p) {
		for _, r := range tr.hook(ns, "filter", "INPUT", q) {
			dests, ok := []Destination(nil), false
			if ns.IPVS != nil && r.mark != 0 {
				dests, ok = ns.IPVS.lookup(r.mark)
			}
			switch {
			case ok && len(dests) == 0:
				tr.matches = append(tr.matches, fmt.Sprintf("%s ipvs: FWM %d, no destination", ns.Name, r.mark))
				tr.outs = append(tr.outs, "REJECT")
			case ok:
				for _, d := range dests {
					tr.matches = append(tr.matches, fmt.Sprintf("%s ipvs: FWM %d -> %s", ns.Name, r.mark, d.Addr))
					s := r
					s.dst, s.ipvs = d.Addr, true
					tr.leave(ns, s, hops)
				}
			case ns.Task:
				tr.outs = append(tr.outs, r.String())
			default:
				tr.outs = append(tr.outs, ns.Name+" "+r.String())
			}
		}
	}
}

// leave is nat POSTROUTING, then the next namespace, or the wire.
func (tr *tracer) leave(ns *TraceNS, p packet, hops int) {
	for _, q := range tr.hook(ns, "nat", "POSTROUTING", p) {
		if ns.Gateway != nil && !ns.onLink(q.dst) {
			tr.arrive(ns.Gateway, q, hops+1)
		} else if next := tr.net.owner(q.dst, ns); next != nil {
			tr.arrive(next, q, hops+1)
		} else {
			tr.outs = append(tr.outs, q.String())
		}
	}
}

// hook runs a built-in chain and returns the packets that go on (none if
// rejected; several where a rotation fans out).
func (tr *tracer) hook(ns *TraceNS, table, chain string, p packet) []packet {
	var out []packet
	for _, r := range tr.walk(ns, table, chain, p, 0) {
		if r.verdict == "REJECT" || r.verdict == "DROP" {
			tr.outs = append(tr.outs, r.verdict)
			continue
		}
		out = append(out, r.p)
	}
	return out
}

// result is one way a chain can end for a packet: verdict "" means it
// fell through (or returned).
type result struct {
	p       packet
	verdict string
}

func (tr *tracer) rulesOf(ns *TraceNS, table, chain string) []string {
	if ns.Rules == nil {
		return nil
	}
	s, ok := tr.saved[ns]
	if !ok {
		data, _ := ns.Rules.Save(context.Background())
		var err error
		if s, err = parseSave(data); err != nil {
			tr.t.Fatalf("tracer: %s: %v", ns.Name, err)
		}
		tr.saved[ns] = s
	}
	return s[table][chain]
}

func (tr *tracer) walk(ns *TraceNS, table, chain string, p packet, depth int) []result {
	if depth > 8 {
		tr.t.Fatalf("tracer: %s %s/%s: too deep", ns.Name, table, chain)
	}
	var out []result
	for _, rule := range tr.rulesOf(ns, table, chain) {
		a := tr.match(ns, rule, p)
		if a.kind == actNone {
			continue
		}
		tr.matches = append(tr.matches, fmt.Sprintf("%s %s/%s: %s", ns.Name, table, chain, rule))
		switch a.kind {
		case actMark:
			p.mark = a.mark
		case actJump:
			var through []result
			for _, r := range tr.walk(ns, table, a.chain, p, depth+1) {
				if r.verdict == "" {
					through = append(through, r)
				} else {
					out = append(out, r)
				}
			}
			if len(through) == 0 {
				return out
			}
			p = through[0].p // a jump that falls through changes nothing else
		case actMaybe: // one turn of a rotation: it ends here, or goes on
			out = append(out, result{a.p, a.verdict})
		case actFinal:
			return append(out, result{a.p, a.verdict})
		}
	}
	return append(out, result{p: p})
}

type actKind int

const (
	actNone  actKind = iota
	actMark          // set the mark, go on
	actJump          // enter chain
	actMaybe         // a rotation turn: ends with p, and also goes on
	actFinal         // ends with p and verdict
)

type action struct {
	kind    actKind
	mark    uint32
	chain   string
	p       packet
	verdict string
}

// shape is one rule shape the renderers emit, with what it does.
type shape struct {
	re *regexp.Regexp
	do func(tr *tracer, ns *TraceNS, m []string, p packet) action
}

var shapes = []shape{
	// A traced packet opens a connection: not RELATED or ESTABLISHED.
	{regexp.MustCompile(`^(-m addrtype --dst-type LOCAL |-m conntrack ! --ctstate RELATED,ESTABLISHED )?-j (MESH-[A-Z0-9-]+)$`), func(_ *tracer, ns *TraceNS, m []string, p packet) action {
		if m[1] == "-m addrtype --dst-type LOCAL " && !ns.isLocal(p.dst) {
			return action{}
		}
		return action{kind: actJump, chain: m[2]}
	}},
	{regexp.MustCompile(`^(?:-d ([\d.]+)/32 )?(?:-p (tcp|udp) -m (?:tcp|udp) --dport (\d+) )?-m comment --comment \S+ -j MARK --set-xmark (0x[0-9a-f]+)/0xffffffff$`), func(tr *tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || !portIs(m[2], m[3], p) {
			return action{}
		}
		return action{kind: actMark, mark: tr.mark(m[4])}
	}},
	{regexp.MustCompile(`^-d ([\d.]+)/32 -j (MESH-[A-Z-]+)$`), func(_ *tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) {
			return action{}
		}
		return action{kind: actJump, chain: m[2]}
	}},
	{regexp.MustCompile(`^-d ([\d.]+)/32 -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j DNAT --to-destination ([\d.]+):(\d+)$`), func(tr *tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || !portIs(m[2], m[3], p) {
			return action{}
		}
		p.dst, p.dport, p.dnat = netip.MustParseAddr(m[4]), tr.port(m[5]), true
		return action{kind: actFinal, p: p, verdict: "DNAT"}
	}},
	// The resolver's answers: never the first packet of a connection.
	{regexp.MustCompile(`^-s ([\d.]+)/32 -p (tcp|udp) -m (?:tcp|udp) --sport (\d+) -j SNAT --to-source :53$`), func(*tracer, *TraceNS, []string, packet) action {
		return action{}
	}},
	{regexp.MustCompile(`^-m mark --mark (0x[0-9a-f]+) -m comment --comment \S+ -j (MESH-SVC-[A-Z2-7]{8})$`), func(tr *tracer, _ *TraceNS, m []string, p packet) action {
		if p.mark != tr.mark(m[1]) {
			return action{}
		}
		return action{kind: actJump, chain: m[2]}
	}},
	{regexp.MustCompile(`^(-m statistic --mode nth --every \d+ --packet 0 )?-j DNAT --to-destination ([\d.]+)$`), func(_ *tracer, _ *TraceNS, m []string, p packet) action {
		p.dst, p.dnat = netip.MustParseAddr(m[2]), true
		if m[1] != "" {
			return action{kind: actMaybe, p: p, verdict: "DNAT"}
		}
		return action{kind: actFinal, p: p, verdict: "DNAT"}
	}},
	{regexp.MustCompile(`^-d ([\d./]+) -m (conntrack --ctstate DNAT|ipvs --ipvs) -j SNAT --to-source ([\d.]+)$`), func(_ *tracer, _ *TraceNS, m []string, p packet) action {
		if !netip.MustParsePrefix(m[1]).Contains(p.dst) || m[2] == "ipvs --ipvs" && !p.ipvs || m[2] != "ipvs --ipvs" && !p.dnat {
			return action{}
		}
		p.src = netip.MustParseAddr(m[3])
		return action{kind: actFinal, p: p, verdict: "SNAT"}
	}},
	{regexp.MustCompile(`^-m mark --mark (0x[0-9a-f]+) -m conntrack ! --ctstate DNAT -m comment --comment \S+ -j REJECT --reject-with icmp-port-unreachable$`), func(tr *tracer, _ *TraceNS, m []string, p packet) action {
		if p.mark != tr.mark(m[1]) || p.dnat {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "REJECT"}
	}},
	{regexp.MustCompile(`^-p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j DNAT --to-destination ([\d.]+):(\d+)$`), func(tr *tracer, _ *TraceNS, m []string, p packet) action {
		if !portIs(m[1], m[2], p) {
			return action{}
		}
		p.dst, p.dport, p.dnat = netip.MustParseAddr(m[3]), tr.port(m[4]), true
		return action{kind: actFinal, p: p, verdict: "DNAT"}
	}},
	{regexp.MustCompile(`^-d ([\d.]+)/32 -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j ACCEPT$`), func(_ *tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || !portIs(m[2], m[3], p) {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "ACCEPT"}
	}},
	// Into mesh_gwbridge after a DNAT, or out of it (a task reaching a
	// published port).
	{regexp.MustCompile(`^-(o|i) (\S+) -m conntrack --ctstate DNAT -j ACCEPT$`), func(_ *tracer, ns *TraceNS, m []string, p packet) action {
		if !p.dnat || m[1] == "o" && ns.outIface(p.dst).Name != m[2] || m[1] == "i" && p.in != m[2] {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "ACCEPT"}
	}},
	{regexp.MustCompile(`^-o (\S+) -m addrtype --src-type LOCAL -j MASQUERADE$`), func(_ *tracer, ns *TraceNS, m []string, p packet) action {
		out := ns.outIface(p.dst)
		if out.Name != m[1] || !ns.isLocal(p.src) {
			return action{}
		}
		p.src = out.Addr
		return action{kind: actFinal, p: p, verdict: "MASQUERADE"}
	}},
	// The tasks' way out: their gateway-bridge addresses leaving by
	// another interface.
	{regexp.MustCompile(`^-s ([\d./]+) ! -o (\S+) -j MASQUERADE$`), func(_ *tracer, ns *TraceNS, m []string, p packet) action {
		out := ns.outIface(p.dst)
		if !netip.MustParsePrefix(m[1]).Contains(p.src) || out.Name == m[2] {
			return action{}
		}
		p.src = out.Addr
		return action{kind: actFinal, p: p, verdict: "MASQUERADE"}
	}},
	// Local bridge networks (bridge.go), in Docker's shapes.
	{regexp.MustCompile(`^(?:-d ([\d.]+)/32 )?! -i (\S+) -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j DNAT --to-destination ([\d.]+):(\d+)$`), func(tr *tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || p.in == m[2] || !portIs(m[3], m[4], p) {
			return action{}
		}
		p.dst, p.dport, p.dnat = netip.MustParseAddr(m[5]), tr.port(m[6]), true
		return action{kind: actFinal, p: p, verdict: "DNAT"}
	}},
	{regexp.MustCompile(`^-d ([\d.]+)/32 ! -i (\S+) -o (\S+) -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j ACCEPT$`), func(_ *tracer, ns *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || p.in == m[2] || ns.outIface(p.dst).Name != m[3] || !portIs(m[4], m[5], p) {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "ACCEPT"}
	}},
	{regexp.MustCompile(`^-i (\S+) (! )?-o (\S+) -j (ACCEPT|MESH-[A-Z0-9-]+)$`), func(_ *tracer, ns *TraceNS, m []string, p packet) action {
		if p.in != m[1] || (ns.outIface(p.dst).Name == m[3]) == (m[2] != "") {
			return action{}
		}
		if m[4] == "ACCEPT" {
			return action{kind: actFinal, p: p, verdict: "ACCEPT"}
		}
		return action{kind: actJump, chain: m[4]}
	}},
	{regexp.MustCompile(`^-o (\S+) -j (DROP|MESH-[A-Z0-9-]+)$`), func(_ *tracer, ns *TraceNS, m []string, p packet) action {
		if ns.outIface(p.dst).Name != m[1] {
			return action{}
		}
		if m[2] == "DROP" {
			return action{kind: actFinal, p: p, verdict: "DROP"}
		}
		return action{kind: actJump, chain: m[2]}
	}},
	// --internal: nothing crosses the subnet's edge.
	{regexp.MustCompile(`^! -s ([\d./]+) -o (\S+) -j DROP$`), func(_ *tracer, ns *TraceNS, m []string, p packet) action {
		if netip.MustParsePrefix(m[1]).Contains(p.src) || ns.outIface(p.dst).Name != m[2] {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "DROP"}
	}},
	{regexp.MustCompile(`^! -d ([\d./]+) -i (\S+) -j DROP$`), func(_ *tracer, _ *TraceNS, m []string, p packet) action {
		if netip.MustParsePrefix(m[1]).Contains(p.dst) || p.in != m[2] {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "DROP"}
	}},
	// Replies into a bridge: never the first packet of a connection.
	{regexp.MustCompile(`^-o (\S+) -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT$`), func(*tracer, *TraceNS, []string, packet) action {
		return action{}
	}},
	{regexp.MustCompile(`^(?:-d ([\d.]+)/32 )?-p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j REDIRECT --to-ports (\d+)$`), func(tr *tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || !portIs(m[2], m[3], p) {
			return action{}
		}
		p.dport = tr.port(m[4])
		return action{kind: actFinal, p: p, verdict: "REDIRECT"}
	}},
}

func (tr *tracer) match(ns *TraceNS, rule string, p packet) action {
	for _, s := range shapes {
		if m := s.re.FindStringSubmatch(rule); m != nil {
			return s.do(tr, ns, m, p)
		}
	}
	tr.t.Fatalf("tracer: %s: unknown rule shape %q", ns.Name, rule)
	return action{}
}

// addrIs: an empty match matches any address.
func addrIs(want string, a netip.Addr) bool { return want == "" || want == a.String() }

// portIs: an empty protocol matches any packet.
func portIs(proto, port string, p packet) bool {
	return proto == "" || proto == p.proto && port == strconv.Itoa(int(p.dport))
}

func (tr *tracer) mark(s string) uint32 {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		tr.t.Fatalf("tracer: mark %q: %v", s, err)
	}
	return uint32(v)
}

func (tr *tracer) port(s string) uint16 {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		tr.t.Fatalf("tracer: port %q: %v", s, err)
	}
	return uint16(v)
}
