package lb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// TracePacket, the packet tracer, follows the first packet of a new
// connection through network namespaces, reading each namespace's
// iptables-save text: the rules the syncers left in a FakeRules (the
// agent's tests use it to follow a packet from the client to a task), or
// the text a real kernel printed with its counters (meshctl trace, over
// the nodes' kernel snapshots). It understands only the rule shapes the
// renderers emit (as iptables-save spells them) and fails on any other.
// Without a [Tracer.Pick], a fwmark lookup in IPVS and a rotation chain
// both fan out to every backend, so one trace shows every place a
// connection can end; with one, it follows the backend the next
// connection gets.

// TraceNS is one network namespace as the tracer sees it.
type TraceNS struct {
	Name  string
	Rules Saver     // nil: no rules
	IPVS  *FakeIPVS // nil: no IPVS
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

// Saver is where a namespace's rules are read: iptables-save text, with
// or without counters. *FakeRules and [IPTables] are Savers.
type Saver interface {
	Save(ctx context.Context) ([]byte, error)
}

// SavedText is rules already saved, e.g. a kernel snapshot's.
type SavedText []byte

// Save returns the text.
func (t SavedText) Save(context.Context) ([]byte, error) { return t, nil }

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

func (p packet) flow() TraceFlow {
	return TraceFlow{Src: p.src, Dst: p.dst, Proto: p.proto, Port: p.dport, Mark: p.mark}
}

// TraceFlow is a traced packet as it is at one step.
type TraceFlow struct {
	Src, Dst netip.Addr
	Proto    string
	Port     uint16 // destination port
	Mark     uint32
}

// Fataler is the part of testing.TB the tracer needs.
type Fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Step kinds.
const (
	StepRule    = "rule"    // a rule matched
	StepIPVS    = "ipvs"    // an IPVS service took the connection
	StepArrive  = "arrive"  // the packet entered a namespace
	StepDeliver = "deliver" // delivered to a local socket
	StepLeave   = "leave"   // left the traced namespaces
	StepVerdict = "verdict" // REJECT or DROP
	StepStop    = "stop"    // the trace cannot go on: Note says why
)

// Step is one thing that happened to the packet, in order.
type Step struct {
	Kind  string
	NS    *TraceNS
	Table string // StepRule
	Chain string // StepRule
	Index int    // StepRule: the rule's place in its chain, from 0
	Rule  string // StepRule: as iptables -S prints it after "-A CHAIN "
	// Counter is the rule's counts in the saved text (StepRule).
	Counter Counter
	Flow    TraceFlow // the packet after the step
	Note    string    // StepIPVS, StepVerdict, StepStop: what happened
}

// Tracer follows packets through a TraceNet.
type Tracer struct {
	Net TraceNet
	// Next, when set, is where a packet leaving ns goes: the namespace
	// it arrives in next, or nil when it leaves the traced namespaces; an
	// error stops the trace there, its text the reason. Nil: the
	// namespace that owns the destination, through ns.Gateway when it is
	// not on one of ns.Ifaces.
	Next func(ns *TraceNS, f TraceFlow) (*TraceNS, error)
	// Follow follows one backend rather than fanning out: the turn of a
	// rotation chain that takes the next connection, read from the
	// chain's counters ([NextTurn]), and an IPVS service's first
	// destination (which one rr gives next is not visible from outside
	// the kernel).
	Follow bool

	t     Fataler
	saved map[*TraceNS]savedRules
	steps []Step
	outs  []string
}

type savedRules struct {
	rules saved
	count counters
}

// TracePacket traces a new connection from src to dst:port. It starts in
// the namespace that owns src (OUTPUT) or else in the one that owns dst
// (PREROUTING). matches lists every rule that matched, as "ns table/chain:
// rule"; out lists where the connection ends: "addr:port" in a task (or on
// a node outside rules), "REJECT", "DROP", or "<ns> addr:port" when it is
// delivered to a namespace that is not a task.
func TracePacket(t Fataler, rules TraceNet, src netip.Addr, proto string, dst netip.Addr, port uint16) (matches []string, out string) {
	t.Helper()
	tr := &Tracer{Net: rules}
	p := packet{src: src, dst: dst, proto: proto, dport: port}
	var steps []Step
	if ns := rules.owner(src, nil); ns != nil {
		steps = tr.trace(t, ns, p, true)
	} else if ns := rules.owner(dst, nil); ns != nil {
		steps = tr.trace(t, ns, p, false)
	} else {
		t.Fatalf("tracer: no namespace owns %s or %s", src, dst)
	}
	for _, s := range steps {
		switch s.Kind {
		case StepRule:
			matches = append(matches, fmt.Sprintf("%s %s/%s: %s", s.NS.Name, s.Table, s.Chain, s.Rule))
		case StepIPVS:
			matches = append(matches, s.NS.Name+" ipvs: "+s.Note)
		}
	}
	return matches, strings.Join(tr.outs, ", ")
}

// Trace follows a new connection from f.Src to f.Dst:f.Port starting in
// start: sent by it when output, else arriving in it from a link. A rule
// the tracer does not understand, or a namespace whose rules do not
// parse, is an error; the steps up to there are returned with it.
func (tr *Tracer) Trace(start *TraceNS, f TraceFlow, output bool) (steps []Step, err error) {
	var fe fatalErr
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalErr); !ok {
				panic(r)
			}
			steps, err = tr.steps, errors.New(fe.msg)
		}
	}()
	return tr.trace(&fe, start, packet{src: f.Src, dst: f.Dst, proto: f.Proto, dport: f.Port}, output), nil
}

// fatalErr turns the tracer's Fatalf into an error for Trace.
type fatalErr struct{ msg string }

func (*fatalErr) Helper() {}
func (f *fatalErr) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalErr{})
}

func (tr *Tracer) trace(t Fataler, start *TraceNS, p packet, output bool) []Step {
	tr.t, tr.saved, tr.steps, tr.outs = t, map[*TraceNS]savedRules{}, nil, nil
	if output {
		tr.output(start, p, 0)
	} else {
		tr.arrive(start, p, 0)
	}
	return tr.steps
}

func (tr *Tracer) step(s Step) { tr.steps = append(tr.steps, s) }

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
	best := Iface{Name: "eth0"}
	bits := -1
	for pfx, ifc := range ns.Ifaces {
		if pfx.Contains(dst) && pfx.Bits() > bits {
			best, bits = ifc, pfx.Bits()
		}
	}
	return best
}

const maxHops = 16

// arrive is a packet entering ns from a link: mangle and nat PREROUTING,
// then routing. Marks and conntrack state do not cross namespaces.
func (tr *Tracer) arrive(ns *TraceNS, p packet, hops int) {
	if hops > maxHops {
		tr.t.Fatalf("tracer: more than %d hops at %s", maxHops, ns.Name)
	}
	p.mark, p.dnat, p.ipvs = 0, false, false
	p.in = ns.outIface(p.src).Name
	tr.step(Step{Kind: StepArrive, NS: ns, Flow: p.flow(), Note: p.in})
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
func (tr *Tracer) output(ns *TraceNS, p packet, hops int) {
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
func (tr *Tracer) input(ns *TraceNS, p packet, hops int) {
	for _, q := range tr.hook(ns, "mangle", "INPUT", p) {
		for _, r := range tr.hook(ns, "filter", "INPUT", q) {
			dests, ok := []Destination(nil), false
			if ns.IPVS != nil && r.mark != 0 {
				dests, ok = ns.IPVS.lookup(r.mark)
			}
			switch {
			case ok && len(dests) == 0:
				tr.step(Step{Kind: StepIPVS, NS: ns, Flow: r.flow(), Note: fmt.Sprintf("FWM %d, no destination", r.mark)})
				tr.step(Step{Kind: StepVerdict, NS: ns, Flow: r.flow(), Note: "REJECT"})
				tr.outs = append(tr.outs, "REJECT")
			case ok:
				if tr.Follow {
					dests = dests[:1]
				}
				for _, d := range dests {
					s := r
					s.dst, s.ipvs = d.Addr, true
					tr.step(Step{Kind: StepIPVS, NS: ns, Flow: s.flow(), Note: fmt.Sprintf("FWM %d -> %s", r.mark, d.Addr)})
					tr.leave(ns, s, hops)
				}
			case ns.Task:
				tr.step(Step{Kind: StepDeliver, NS: ns, Flow: r.flow()})
				tr.outs = append(tr.outs, r.String())
			default:
				tr.step(Step{Kind: StepDeliver, NS: ns, Flow: r.flow()})
				tr.outs = append(tr.outs, ns.Name+" "+r.String())
			}
		}
	}
}

// leave is nat POSTROUTING, then the next namespace, or the wire.
func (tr *Tracer) leave(ns *TraceNS, p packet, hops int) {
	for _, q := range tr.hook(ns, "nat", "POSTROUTING", p) {
		next, err := tr.next(ns, q)
		switch {
		case err != nil:
			tr.step(Step{Kind: StepStop, NS: ns, Flow: q.flow(), Note: err.Error()})
			tr.outs = append(tr.outs, "STOP")
		case next != nil:
			tr.arrive(next, q, hops+1)
		default:
			tr.step(Step{Kind: StepLeave, NS: ns, Flow: q.flow()})
			tr.outs = append(tr.outs, q.String())
		}
	}
}

func (tr *Tracer) next(ns *TraceNS, p packet) (*TraceNS, error) {
	if tr.Next != nil {
		return tr.Next(ns, p.flow())
	}
	if ns.Gateway != nil && !ns.onLink(p.dst) {
		return ns.Gateway, nil
	}
	return tr.Net.owner(p.dst, ns), nil
}

// hook runs a built-in chain and returns the packets that go on (none if
// rejected; several where a rotation fans out).
func (tr *Tracer) hook(ns *TraceNS, table, chain string, p packet) []packet {
	var out []packet
	for _, r := range tr.walk(ns, table, chain, p, 0) {
		if r.verdict == "REJECT" || r.verdict == "DROP" {
			tr.step(Step{Kind: StepVerdict, NS: ns, Flow: r.p.flow(), Note: r.verdict})
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

func (tr *Tracer) rulesOf(ns *TraceNS, table, chain string) ([]string, []Counter) {
	if ns.Rules == nil {
		return nil, nil
	}
	if f, ok := ns.Rules.(*FakeRules); ok && f == nil {
		return nil, nil
	}
	s, ok := tr.saved[ns]
	if !ok {
		data, err := ns.Rules.Save(context.Background())
		if err == nil {
			s.rules, s.count, err = parseSaveCounters(data)
		}
		if err != nil {
			tr.t.Fatalf("tracer: %s: %v", ns.Name, err)
		}
		tr.saved[ns] = s
	}
	return s.rules[table][chain], s.count[table][chain]
}

func (tr *Tracer) walk(ns *TraceNS, table, chain string, p packet, depth int) []result {
	if depth > 8 {
		tr.t.Fatalf("tracer: %s %s/%s: too deep", ns.Name, table, chain)
	}
	var out []result
	rules, counts := tr.rulesOf(ns, table, chain)
	turn := -1
	for i, rule := range rules {
		a := tr.match(ns, rule, p)
		if a.kind == actMaybe && tr.Follow {
			if turn < 0 {
				turn = NextTurn(rules, counts)
			}
			if i != turn {
				continue
			}
			a.kind = actFinal
		}
		if a.kind == actNone {
			continue
		}
		after := p
		if a.kind == actMaybe || a.kind == actFinal {
			after = a.p
		} else if a.kind == actMark {
			after.mark = a.mark
		}
		tr.step(Step{Kind: StepRule, NS: ns, Table: table, Chain: chain, Index: i, Rule: rule, Counter: counts[i], Flow: after.flow()})
		if a.set != "" {
			tr.step(Step{Kind: StepRule, NS: ns, Table: setTable, Chain: a.set, Index: a.index, Rule: a.member, Flow: after.flow()})
		}
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

// everyRE finds a rotation turn's period.
var everyRE = regexp.MustCompile(`-m statistic --mode nth --every (\d+) --packet 0 `)

// NextTurn returns the index of the rule of a rotation chain (the
// renderers' MESH-SVC-… chains: "-m statistic --mode nth --every N
// --packet 0 -j DNAT" turns, then one plain DNAT) that the next new
// connection matches, from the rules' packet counters. The kernel's nth
// match counts the packets that reach its rule and matches the first and
// every Nth after; each packet reaching the chain (the nat table sees a
// connection's first packet only) ends at one of its rules, so the
// chain's total is how many arrived, and the turns before a rule took
// theirs. Counters and nth state are reset together when the chain is
// rewritten, so they stay in step. -1 for a chain with no rule.
func NextTurn(rules []string, counts []Counter) int {
	var arrived uint64
	for _, c := range counts {
		arrived += c.Packets
	}
	for i, r := range rules {
		m := everyRE.FindStringSubmatch(r)
		if m == nil {
			return i
		}
		every, _ := strconv.ParseUint(m[1], 10, 64)
		if every == 0 || arrived%every == 0 {
			return i
		}
		if i < len(counts) {
			arrived -= min(arrived, counts[i].Packets)
		}
	}
	return len(rules) - 1
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
	kind actKind
	mark uint32
	// set and member are the ipset member a SET rule took the mark from
	// (actMark), at index in its set.
	set, member string
	index       int
	chain       string
	p           packet
	verdict     string
}

// shape is one rule shape the renderers emit, with what it does.
type shape struct {
	re *regexp.Regexp
	do func(tr *Tracer, ns *TraceNS, m []string, p packet) action
}

var shapes = []shape{
	// A traced packet opens a connection: not RELATED or ESTABLISHED.
	{regexp.MustCompile(`^(-m addrtype --dst-type LOCAL |-m conntrack ! --ctstate RELATED,ESTABLISHED )?-j (MESH-[A-Z0-9-]+)$`), func(_ *Tracer, ns *TraceNS, m []string, p packet) action {
		if m[1] == "-m addrtype --dst-type LOCAL " && !ns.isLocal(p.dst) {
			return action{}
		}
		return action{kind: actJump, chain: m[2]}
	}},
	{regexp.MustCompile(`^(?:-d ([\d.]+)/32 )?(?:-p (tcp|udp) -m (?:tcp|udp) --dport (\d+) )?-m comment --comment \S+ -j MARK --set-xmark (0x[0-9a-f]+)/0xffffffff$`), func(tr *Tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || !portIs(m[2], m[3], p) {
			return action{}
		}
		return action{kind: actMark, mark: tr.mark(m[4])}
	}},
	// A large mark chain's lookup (buckets.go): the member of the set
	// keyed by the destination address or port holds the mark.
	{regexp.MustCompile(`^(?:-p (tcp|udp) )?-j SET --map-set (\S+) dst --map-mark$`), func(tr *Tracer, ns *TraceNS, m []string, p packet) action {
		if m[1] != "" && m[1] != p.proto {
			return action{}
		}
		key := p.dst.String()
		if m[1] != "" {
			key = strconv.Itoa(int(p.dport))
		}
		members, _ := tr.rulesOf(ns, setTable, m[2])
		for i, member := range members {
			mm := setMemberRE.FindStringSubmatch(member)
			if mm == nil {
				tr.t.Fatalf("tracer: %s: set %s: unknown member %q", ns.Name, m[2], member)
			}
			if mm[1] == key {
				return action{kind: actMark, mark: tr.mark(mm[3]), set: m[2], member: member, index: i}
			}
		}
		return action{}
	}},
	{regexp.MustCompile(`^-m mark --mark (0x[0-9a-f]+)/(0x[0-9a-f]+) -j (MESH-[A-Z-]+-[0-9A-F])$`), func(tr *Tracer, _ *TraceNS, m []string, p packet) action {
		if p.mark&tr.mark(m[2]) != tr.mark(m[1]) {
			return action{}
		}
		return action{kind: actJump, chain: m[3]}
	}},
	{regexp.MustCompile(`^-d ([\d.]+)/32 -j (MESH-[A-Z-]+)$`), func(_ *Tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) {
			return action{}
		}
		return action{kind: actJump, chain: m[2]}
	}},
	{regexp.MustCompile(`^-d ([\d.]+)/32 -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j DNAT --to-destination ([\d.]+):(\d+)$`), func(tr *Tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || !portIs(m[2], m[3], p) {
			return action{}
		}
		p.dst, p.dport, p.dnat = netip.MustParseAddr(m[4]), tr.port(m[5]), true
		return action{kind: actFinal, p: p, verdict: "DNAT"}
	}},
	// The resolver's answers: never the first packet of a connection.
	{regexp.MustCompile(`^-s ([\d.]+)/32 -p (tcp|udp) -m (?:tcp|udp) --sport (\d+) -j SNAT --to-source :53$`), func(*Tracer, *TraceNS, []string, packet) action {
		return action{}
	}},
	{regexp.MustCompile(`^-m mark --mark (0x[0-9a-f]+) -m comment --comment \S+ -j (MESH-SVC-[A-Z2-7]{8})$`), func(tr *Tracer, _ *TraceNS, m []string, p packet) action {
		if p.mark != tr.mark(m[1]) {
			return action{}
		}
		return action{kind: actJump, chain: m[2]}
	}},
	{regexp.MustCompile(`^(-m statistic --mode nth --every \d+ --packet 0 )?-j DNAT --to-destination ([\d.]+)$`), func(_ *Tracer, _ *TraceNS, m []string, p packet) action {
		p.dst, p.dnat = netip.MustParseAddr(m[2]), true
		if m[1] != "" {
			return action{kind: actMaybe, p: p, verdict: "DNAT"}
		}
		return action{kind: actFinal, p: p, verdict: "DNAT"}
	}},
	{regexp.MustCompile(`^-d ([\d./]+) -m (conntrack --ctstate DNAT|ipvs --ipvs) -j SNAT --to-source ([\d.]+)$`), func(_ *Tracer, _ *TraceNS, m []string, p packet) action {
		if !netip.MustParsePrefix(m[1]).Contains(p.dst) || m[2] == "ipvs --ipvs" && !p.ipvs || m[2] != "ipvs --ipvs" && !p.dnat {
			return action{}
		}
		p.src = netip.MustParseAddr(m[3])
		return action{kind: actFinal, p: p, verdict: "SNAT"}
	}},
	{regexp.MustCompile(`^-m mark --mark (0x[0-9a-f]+) -m conntrack ! --ctstate DNAT -m comment --comment \S+ -j REJECT --reject-with icmp-port-unreachable$`), func(tr *Tracer, _ *TraceNS, m []string, p packet) action {
		if p.mark != tr.mark(m[1]) || p.dnat {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "REJECT"}
	}},
	{regexp.MustCompile(`^-p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j DNAT --to-destination ([\d.]+):(\d+)$`), func(tr *Tracer, _ *TraceNS, m []string, p packet) action {
		if !portIs(m[1], m[2], p) {
			return action{}
		}
		p.dst, p.dport, p.dnat = netip.MustParseAddr(m[3]), tr.port(m[4]), true
		return action{kind: actFinal, p: p, verdict: "DNAT"}
	}},
	{regexp.MustCompile(`^-d ([\d.]+)/32 -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j ACCEPT$`), func(_ *Tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || !portIs(m[2], m[3], p) {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "ACCEPT"}
	}},
	// Into mesh_gwbridge after a DNAT, or out of it (a task reaching a
	// published port).
	{regexp.MustCompile(`^-(o|i) (\S+) -m conntrack --ctstate DNAT -j ACCEPT$`), func(_ *Tracer, ns *TraceNS, m []string, p packet) action {
		if !p.dnat || m[1] == "o" && ns.outIface(p.dst).Name != m[2] || m[1] == "i" && p.in != m[2] {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "ACCEPT"}
	}},
	{regexp.MustCompile(`^-o (\S+) -m addrtype --src-type LOCAL -j MASQUERADE$`), func(_ *Tracer, ns *TraceNS, m []string, p packet) action {
		out := ns.outIface(p.dst)
		if out.Name != m[1] || !ns.isLocal(p.src) {
			return action{}
		}
		p.src = out.Addr
		return action{kind: actFinal, p: p, verdict: "MASQUERADE"}
	}},
	// The tasks' way out: their gateway-bridge addresses leaving by
	// another interface.
	{regexp.MustCompile(`^-s ([\d./]+) ! -o (\S+) -j MASQUERADE$`), func(_ *Tracer, ns *TraceNS, m []string, p packet) action {
		out := ns.outIface(p.dst)
		if !netip.MustParsePrefix(m[1]).Contains(p.src) || out.Name == m[2] {
			return action{}
		}
		p.src = out.Addr
		return action{kind: actFinal, p: p, verdict: "MASQUERADE"}
	}},
	// Local bridge networks (bridge.go), in Docker's shapes.
	{regexp.MustCompile(`^(?:-d ([\d.]+)/32 )?! -i (\S+) -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j DNAT --to-destination ([\d.]+):(\d+)$`), func(tr *Tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || p.in == m[2] || !portIs(m[3], m[4], p) {
			return action{}
		}
		p.dst, p.dport, p.dnat = netip.MustParseAddr(m[5]), tr.port(m[6]), true
		return action{kind: actFinal, p: p, verdict: "DNAT"}
	}},
	{regexp.MustCompile(`^-d ([\d.]+)/32 ! -i (\S+) -o (\S+) -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j ACCEPT$`), func(_ *Tracer, ns *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || p.in == m[2] || ns.outIface(p.dst).Name != m[3] || !portIs(m[4], m[5], p) {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "ACCEPT"}
	}},
	// Isolation; mesh_gwbridge's rules leave published ports (DNAT) out.
	{regexp.MustCompile(`^-i (\S+) (! )?-o (\S+)( -m conntrack ! --ctstate DNAT)? -j (ACCEPT|MESH-[A-Z0-9-]+)$`), func(_ *Tracer, ns *TraceNS, m []string, p packet) action {
		if p.in != m[1] || (ns.outIface(p.dst).Name == m[3]) == (m[2] != "") || (m[4] != "" && p.dnat) {
			return action{}
		}
		if m[5] == "ACCEPT" {
			return action{kind: actFinal, p: p, verdict: "ACCEPT"}
		}
		return action{kind: actJump, chain: m[5]}
	}},
	{regexp.MustCompile(`^-o (\S+)( -m conntrack ! --ctstate DNAT)? -j (DROP|MESH-[A-Z0-9-]+)$`), func(_ *Tracer, ns *TraceNS, m []string, p packet) action {
		if ns.outIface(p.dst).Name != m[1] || (m[2] != "" && p.dnat) {
			return action{}
		}
		if m[3] == "DROP" {
			return action{kind: actFinal, p: p, verdict: "DROP"}
		}
		return action{kind: actJump, chain: m[3]}
	}},
	// --internal: nothing crosses the subnet's edge.
	{regexp.MustCompile(`^! -s ([\d./]+) -o (\S+) -j DROP$`), func(_ *Tracer, ns *TraceNS, m []string, p packet) action {
		if netip.MustParsePrefix(m[1]).Contains(p.src) || ns.outIface(p.dst).Name != m[2] {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "DROP"}
	}},
	{regexp.MustCompile(`^! -d ([\d./]+) -i (\S+) -j DROP$`), func(_ *Tracer, _ *TraceNS, m []string, p packet) action {
		if netip.MustParsePrefix(m[1]).Contains(p.dst) || p.in != m[2] {
			return action{}
		}
		return action{kind: actFinal, p: p, verdict: "DROP"}
	}},
	// Replies into a bridge: never the first packet of a connection.
	{regexp.MustCompile(`^-o (\S+) -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT$`), func(*Tracer, *TraceNS, []string, packet) action {
		return action{}
	}},
	{regexp.MustCompile(`^(?:-d ([\d.]+)/32 )?-p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j REDIRECT --to-ports (\d+)$`), func(tr *Tracer, _ *TraceNS, m []string, p packet) action {
		if !addrIs(m[1], p.dst) || !portIs(m[2], m[3], p) {
			return action{}
		}
		p.dport = tr.port(m[4])
		return action{kind: actFinal, p: p, verdict: "REDIRECT"}
	}},
}

func (tr *Tracer) match(ns *TraceNS, rule string, p packet) action {
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

func (tr *Tracer) mark(s string) uint32 {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		tr.t.Fatalf("tracer: mark %q: %v", s, err)
	}
	return uint32(v)
}

func (tr *Tracer) port(s string) uint16 {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		tr.t.Fatalf("tracer: port %q: %v", s, err)
	}
	return uint16(v)
}
