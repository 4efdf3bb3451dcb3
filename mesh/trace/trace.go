// Package trace follows a new connection hop by hop through the kernel
// snapshots of the nodes it crosses (meshctl trace, POST /v1/trace).
//
// The netfilter part of each namespace is lb's tracer, the one the agent's
// tests use on fakes, here reading the iptables-save -c text of the
// snapshots and following the backend the next connection gets. What lies
// between namespaces is read from the snapshots here: the route out, the
// veth and its peer (as "ip a" prints eth0@if12), the bridge port that
// leads to the next hop, and for an overlay the neighbour entry (IP to
// MAC) and the forwarding entry (MAC to VTEP) on vxlan0, then the node
// whose address is that VTEP and its namespace of the same VNI. The
// last hop names the socket the connection reaches and the process
// holding it, from the snapshot's listening sockets. A sandbox that
// DNATs the connection and forwards it, and whose nftables table
// (NetnsState.NFT) holds a flowtable a rule fills, gets a hop of its own
// after its rules: the connection's first packet walks them, as traced,
// but once it is established the kernel carries the later ones past
// them (see "Flow offload" in lb/doc.go). A path that cannot go on
// stops at that hop with the reason: no route, no backend (REJECT), no
// neighbour or FDB entry, a VTEP no node has, nothing listening.
package trace

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
)

// place is a namespace of a node, and the tracer's view of it.
type place struct {
	snap *api.KernelSnapshot
	ns   *api.NetnsState
	t    *lb.TraceNS
}

func (p *place) String() string { return p.snap.NodeName + " " + p.ns.Name }

type world struct {
	snaps  []api.KernelSnapshot
	places map[*lb.TraceNS]*place
	net    lb.TraceNet
	links  [][]api.TraceHop // the hops between namespaces, one group per leave
}

// Run traces req through snaps (req.Snapshots is ignored).
func Run(snaps []api.KernelSnapshot, req api.TraceRequest) (api.Trace, error) {
	if len(snaps) == 0 {
		return api.Trace{}, ErrNoSnapshots
	}
	dst, proto, err := ParseTarget(req.To)
	if err != nil {
		return api.Trace{}, err
	}
	w := newWorld(snaps)
	start, src, output, err := w.start(req, dst.Addr())
	if err != nil {
		return api.Trace{}, err
	}
	if dst.Addr().IsLoopback() && output {
		// 127.0.0.0/8 is the sender's own (the local table, which
		// snapshots leave out): the embedded resolver's 127.0.0.11.
		start.t.Local = append(start.t.Local, dst.Addr())
		src = netip.MustParseAddr("127.0.0.1")
	}
	out := api.Trace{From: req.From, Src: src.String(), To: dst.String(), Proto: proto}
	tr := &lb.Tracer{Net: w.net, Next: w.next, Follow: true}
	steps, err := tr.Trace(start.t, lb.TraceFlow{Src: src, Dst: dst.Addr(), Proto: proto, Port: dst.Port()}, output)
	w.hops(&out, steps, output)
	if err != nil {
		out.Stopped = err.Error()
		out.Hops = append(out.Hops, api.TraceHop{Kind: api.HopStop, Detail: err.Error()})
	}
	return out, nil
}

// ParseTarget reads ADDRESS:PORT[/udp].
func ParseTarget(s string) (netip.AddrPort, string, error) {
	proto := "tcp"
	if a, p, ok := strings.Cut(s, "/"); ok {
		if p != "tcp" && p != "udp" {
			return netip.AddrPort{}, "", fmt.Errorf("trace %s: protocol %q: want tcp or udp", api.Quote(s), p)
		}
		s, proto = a, p
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return netip.AddrPort{}, "", fmt.Errorf("trace %s: want IPv4ADDRESS:PORT[/udp]", api.Quote(s))
	}
	return ap, proto, nil
}

func newWorld(snaps []api.KernelSnapshot) *world {
	w := &world{snaps: snaps, places: map[*lb.TraceNS]*place{}}
	for i := range w.snaps {
		s := &w.snaps[i]
		for j := range s.Namespaces {
			ns := &s.Namespaces[j]
			t := &lb.TraceNS{Name: s.NodeName + " " + ns.Name, Task: ns.Kind == "task", Ifaces: map[netip.Prefix]lb.Iface{}}
			for _, l := range ns.Links {
				for _, a := range l.Addrs {
					t.Local = append(t.Local, a.Addr())
				}
			}
			for _, r := range ns.Routes {
				src := r.Src
				if !src.IsValid() {
					src = firstAddr(linkByName(ns, r.Dev))
				}
				t.Ifaces[r.Dst] = lb.Iface{Name: r.Dev, Addr: src}
			}
			var text []byte
			for _, table := range slices.Sorted(maps.Keys(ns.IPTables)) {
				text = append(text, ns.IPTables[table]...)
			}
			t.Rules = lb.SavedText(text)
			if ns.IPVS == api.IPVSRead && len(ns.Services) > 0 {
				t.IPVS = fakeIPVS(ns.Services)
			}
			w.places[t] = &place{snap: s, ns: ns, t: t}
			w.net = append(w.net, t)
		}
	}
	return w
}

// fakeIPVS is an IPVS table as a snapshot read it, for the tracer.
func fakeIPVS(svcs []api.KernelIPVS) *lb.FakeIPVS {
	f := lb.NewFakeIPVS()
	for _, s := range svcs {
		v := lb.VirtualService{FWMark: s.FWMark, Scheduler: s.Scheduler}
		if f.EnsureService(v) != nil {
			continue
		}
		for _, d := range s.Destinations {
			_ = f.EnsureDestination(v, lb.Destination{Addr: d.Addr, Port: d.Port, Weight: d.Weight})
		}
	}
	return f
}

// start finds where the trace begins, the source address and whether the
// namespace sends the packet (else it arrives from outside).
func (w *world) start(req api.TraceRequest, dst netip.Addr) (*place, netip.Addr, bool, error) {
	switch req.From {
	case "", "client":
		src, err := netip.ParseAddr(req.Src)
		if err != nil {
			return nil, src, false, fmt.Errorf("trace from the client: its address %s: %v", api.Quote(req.Src), err)
		}
		for _, s := range w.snaps {
			if p := w.holder(&s, dst); p != nil && p.ns.Name == api.HostNamespace {
				return p, src, false, nil
			}
		}
		return nil, src, false, fmt.Errorf("trace from the client: no node traced has %s", dst)
	}
	for i := range w.snaps {
		s := &w.snaps[i]
		for j := range s.Namespaces {
			ns := &s.Namespaces[j]
			host := s.NodeName == req.From && ns.Name == api.HostNamespace
			if host || ns.Kind == "task" && ns.Owner == req.From {
				p := w.placeOf(s, ns)
				src, ok := p.t.Ifaces[routeFor(ns, dst).Dst]
				if (!ok || !src.Addr.IsValid()) && !dst.IsLoopback() {
					return nil, netip.Addr{}, false, fmt.Errorf("trace from %s: no route to %s in %s", req.From, dst, p)
				}
				return p, src.Addr, true, nil
			}
		}
	}
	return nil, netip.Addr{}, false, fmt.Errorf("trace from %s: no such node or task in the snapshots", api.Quote(req.From))
}

func (w *world) placeOf(s *api.KernelSnapshot, ns *api.NetnsState) *place {
	for _, p := range w.places {
		if p.ns == ns {
			return p
		}
	}
	panic("trace: namespace of no place") // newWorld made one for each
}

// holder is the namespace of node s that holds a, or nil.
func (w *world) holder(s *api.KernelSnapshot, a netip.Addr) *place {
	for _, p := range w.places {
		if p.snap.NodeName == s.NodeName && slices.Contains(p.t.Local, a) {
			return p
		}
	}
	return nil
}

func (w *world) byName(s *api.KernelSnapshot, name string) *place {
	for _, p := range w.places {
		if p.snap.NodeName == s.NodeName && p.ns.Name == name {
			return p
		}
	}
	return nil
}

func (w *world) nodeByAddr(a netip.Addr) *api.KernelSnapshot {
	for i := range w.snaps {
		if w.snaps[i].NodeAddr == a.String() {
			return &w.snaps[i]
		}
	}
	return nil
}

// next is the tracer's Next: where a packet leaving t goes.
func (w *world) next(t *lb.TraceNS, f lb.TraceFlow) (*lb.TraceNS, error) {
	w.links = append(w.links, nil)
	p := w.places[t]
	r := routeFor(p.ns, f.Dst)
	if !r.Dst.IsValid() {
		return nil, fmt.Errorf("no route to %s in %s (ip route)", f.Dst, p)
	}
	via := f.Dst
	if r.Gateway.IsValid() {
		via = r.Gateway
	}
	l := linkByName(p.ns, r.Dev)
	if l == nil {
		return nil, fmt.Errorf("route to %s in %s by %s, which is not there", f.Dst, p, r.Dev)
	}
	return w.out(p, l, via)
}

// hop records a hop between namespaces.
func (w *world) hop(h api.TraceHop) {
	w.links[len(w.links)-1] = append(w.links[len(w.links)-1], h)
}

// out follows a packet for via leaving p by link l.
func (w *world) out(p *place, l *api.KernelLink, via netip.Addr) (*lb.TraceNS, error) {
	switch l.Kind {
	case "bridge":
		return w.bridge(p, l.Name, "", via)
	case "veth":
		peer := w.byName(p.snap, l.PeerNetns)
		if peer == nil {
			break // into a namespace meshd did not make: the underlay
		}
		pl := linkByIndex(peer.ns, l.PeerIndex)
		if pl == nil {
			return nil, fmt.Errorf("%s in %s: its peer if%d is not in %s", l.Name, p, l.PeerIndex, peer)
		}
		detail := fmt.Sprintf("%s@if%d → %s %s@if%d", l.Name, l.PeerIndex, peer.ns.Name, pl.Name, pl.PeerIndex)
		if pl.Master == "" {
			w.hop(linkHop(p, detail, l.Name))
			return peer.t, nil
		}
		w.hop(linkHop(p, detail+" → "+pl.Master, l.Name))
		return w.bridge(peer, pl.Master, pl.Name, via)
	}
	if s := w.nodeByAddr(via); s != nil && s.NodeName != p.snap.NodeName {
		if host := w.byName(s, api.HostNamespace); host != nil {
			w.hop(linkHop(p, fmt.Sprintf("%s → underlay → %s (%s)", l.Name, s.NodeName, via), l.Name))
			return host.t, nil
		}
	}
	w.hop(linkHop(p, fmt.Sprintf("%s → out of the nodes traced", l.Name), l.Name))
	return nil, nil
}

// bridge follows a packet for via entering bridge br of p by port in: to
// the bridge's own address, a veth port whose peer holds via, or the
// VXLAN port.
func (w *world) bridge(p *place, br, in string, via netip.Addr) (*lb.TraceNS, error) {
	if b := linkByName(p.ns, br); b != nil && slices.ContainsFunc(b.Addrs, func(a netip.Prefix) bool { return a.Addr() == via }) {
		return p.t, nil
	}
	for _, l := range p.ns.Links {
		if l.Master != br || l.Kind != "veth" || l.Name == in {
			continue
		}
		if peer := w.byName(p.snap, l.PeerNetns); peer != nil && slices.Contains(peer.t.Local, via) {
			pl := linkByIndex(peer.ns, l.PeerIndex)
			w.hop(linkHop(p, fmt.Sprintf("%s → %s@if%d → %s %s", br, l.Name, l.PeerIndex, peer.ns.Name, nameOf(pl)), l.Name))
			return peer.t, nil
		}
	}
	for i := range p.ns.Links {
		if vx := &p.ns.Links[i]; vx.Master == br && vx.Kind == "vxlan" {
			return w.vxlan(p, vx, via)
		}
	}
	return nil, fmt.Errorf("no port of %s in %s leads to %s", br, p, via)
}

// vxlan follows a packet for via out of VXLAN device vx of p: neighbour,
// FDB entry, VTEP, the remote node's namespace of the same VNI, and the
// port of its bridge that leads to via.
func (w *world) vxlan(p *place, vx *api.KernelLink, via netip.Addr) (*lb.TraceNS, error) {
	show := command(p.ns, "bridge fdb show dev "+vx.Name)
	i := slices.IndexFunc(p.ns.Neighbours, func(n api.KernelNeigh) bool { return n.IP == via && n.Dev == vx.Name && n.MAC != "" })
	if i < 0 {
		return nil, fmt.Errorf("%s: no neighbour entry for %s on %s (VNI %d): %s", p, via, vx.Name, vx.VNI, command(p.ns, "ip neigh show dev "+vx.Name))
	}
	mac := p.ns.Neighbours[i].MAC
	j := slices.IndexFunc(p.ns.FDB, func(e api.KernelFDB) bool { return e.MAC == mac && e.Dev == vx.Name && e.Master == "" })
	if j < 0 {
		w.hop(api.TraceHop{Node: p.snap.NodeName, Netns: p.ns.Name, Kind: api.HopVXLAN, Command: show,
			Detail: fmt.Sprintf("%s VNI %d: %s lladdr %s, no FDB entry", vx.Name, vx.VNI, via, mac)})
		return nil, fmt.Errorf("%s: no FDB entry for %s (%s) on %s (VNI %d): the packet has no VTEP to go to", p, mac, via, vx.Name, vx.VNI)
	}
	vtep := p.ns.FDB[j].Dst
	remote := w.nodeByAddr(vtep)
	if remote == nil {
		return nil, fmt.Errorf("%s: %s (%s) is behind VTEP %s, no node traced", p, via, mac, vtep)
	}
	w.hop(api.TraceHop{Node: p.snap.NodeName, Netns: p.ns.Name, Kind: api.HopVXLAN, Command: show,
		Detail: fmt.Sprintf("%s VNI %d: %s lladdr %s → VTEP %s (%s) udp/%d from %s; %s", vx.Name, vx.VNI, via, mac, vtep, remote.NodeName, vx.Port, vx.Local, bridgeEntry(p.ns, vx, mac))})
	for _, rp := range w.places {
		if rp.snap != remote {
			continue
		}
		for k := range rp.ns.Links {
			if rvx := &rp.ns.Links[k]; rvx.Kind == "vxlan" && rvx.VNI == vx.VNI {
				w.hop(linkHop(rp, fmt.Sprintf("%s VNI %d → %s", rvx.Name, rvx.VNI, rvx.Master), rvx.Name))
				return w.bridge(rp, rvx.Master, rvx.Name, via)
			}
		}
	}
	return nil, fmt.Errorf("%s has no VXLAN device of VNI %d", remote.NodeName, vx.VNI)
}

// bridgeEntry says how the bridge vx is a port of sends frames for mac:
// to vx alone by its static entry, or, without one, to every port, each
// local task of the network taking a copy.
func bridgeEntry(ns *api.NetnsState, vx *api.KernelLink, mac string) string {
	if slices.ContainsFunc(ns.FDB, func(e api.KernelFDB) bool { return e.MAC == mac && e.Dev == vx.Name && e.Master == vx.Master }) {
		return fmt.Sprintf("%s: %s master %s static", vx.Name, mac, vx.Master)
	}
	return fmt.Sprintf("%s has no entry for %s: flooded to every port", vx.Master, mac)
}

func linkHop(p *place, detail, dev string) api.TraceHop {
	return api.TraceHop{Node: p.snap.NodeName, Netns: p.ns.Name, Kind: api.HopLink, Detail: detail,
		Command: command(p.ns, "ip -d link show "+dev)}
}

// command is how to run cmd in ns on the machine: through its file, or
// as it is in a node's own namespace.
func command(ns *api.NetnsState, cmd string) string {
	if ns.Path == "" {
		return cmd
	}
	return "nsenter --net=" + ns.Path + " " + cmd
}

func routeFor(ns *api.NetnsState, dst netip.Addr) api.KernelRoute {
	var best api.KernelRoute
	for _, r := range ns.Routes {
		if r.Dst.Contains(dst) && (!best.Dst.IsValid() || r.Dst.Bits() > best.Dst.Bits()) {
			best = r
		}
	}
	return best
}

func linkByName(ns *api.NetnsState, name string) *api.KernelLink {
	for i := range ns.Links {
		if ns.Links[i].Name == name {
			return &ns.Links[i]
		}
	}
	return nil
}

func linkByIndex(ns *api.NetnsState, index int) *api.KernelLink {
	for i := range ns.Links {
		if ns.Links[i].Index == index {
			return &ns.Links[i]
		}
	}
	return nil
}

func nameOf(l *api.KernelLink) string {
	if l == nil {
		return "?"
	}
	return l.Name
}

func firstAddr(l *api.KernelLink) netip.Addr {
	if l == nil || len(l.Addrs) == 0 {
		return netip.Addr{}
	}
	return l.Addrs[0].Addr()
}

// hops turns the tracer's steps, with the hops between namespaces, into
// the trace's hops.
func (w *world) hops(out *api.Trace, steps []lb.Step, output bool) {
	group := 0
	links := func() {
		if group < len(w.links) {
			out.Hops = append(out.Hops, w.links[group]...)
			group++
		}
	}
	// The namespace the packet last arrived in, and whether it was
	// DNATed there: a flowtable takes forwarded connections only.
	var in *place
	dnat := false
	forwarded := func(from *place) {
		if from == in && dnat {
			if h, ok := flowHop(from); ok {
				out.Hops = append(out.Hops, h)
			}
		}
	}
	for i, s := range steps {
		p := w.places[s.NS]
		h := api.TraceHop{Node: p.snap.NodeName, Netns: p.ns.Name, Packet: packetString(s.Flow)}
		switch s.Kind {
		case lb.StepArrive:
			if i > 0 {
				forwarded(w.places[steps[i-1].NS])
			}
			if i > 0 || output { // a trace from outside starts arriving
				links()
			}
			in, dnat = p, false
			h.Kind, h.Detail = api.HopArrive, "in "+s.Note
		case lb.StepRule:
			if s.Table == "ipset" { // the member of a mark set (lb/sets.go)
				h.Kind, h.Detail = api.HopSet, s.Chain+" "+s.Rule
				h.Command = command(p.ns, "ipset list "+s.Chain)
				break
			}
			if target := jumpRE.FindStringSubmatch(s.Rule); target != nil && !(i+1 < len(steps) && steps[i+1].Kind == lb.StepRule && steps[i+1].Chain == target[1]) {
				continue // a jump to a chain where nothing matched: no hop
			}
			h.Kind, h.Table, h.Rule = api.HopRule, s.Table, "-A "+s.Chain+" "+s.Rule
			h.Packets, h.Bytes = s.Counter.Packets, s.Counter.Bytes
			dnat = dnat || s.Table == "nat" && dnatRE.MatchString(s.Rule)
			h.Command = command(p.ns, fmt.Sprintf("iptables -t %s -nvL %s", s.Table, s.Chain))
			if strings.HasPrefix(s.Chain, "MESH-SVC-") {
				out.Backends = rotation(p.ns.IPTables["nat"], s.Chain)
				h.Detail = fmt.Sprintf("the next connection's turn, of %d backends", len(out.Backends))
			}
		case lb.StepIPVS:
			h.Kind, h.Detail, h.Command = api.HopIPVS, s.Note, command(p.ns, "ipvsadm -Ln")
		case lb.StepDeliver:
			h.Command = command(p.ns, "ss -l"+s.Flow.Proto[:1]+"np")
			out.Backend = netip.AddrPortFrom(s.Flow.Dst, s.Flow.Port).String()
			listener, ok := deliver(p, s.Flow)
			if !ok {
				h.Kind, h.Detail = api.HopStop, listener
				out.Stopped = fmt.Sprintf("%s: %s", p, listener)
				break
			}
			h.Kind, h.Detail = api.HopDeliver, fmt.Sprintf("delivered to %s:%d/%s in %s%s", s.Flow.Dst, s.Flow.Port, s.Flow.Proto, p.ns.Name, listener)
			out.Reached = true
		case lb.StepVerdict:
			links()
			h.Kind, h.Detail = api.HopStop, s.Note+": no backend takes it"
			out.Stopped = fmt.Sprintf("%s: %s", p, h.Detail)
		case lb.StepStop:
			if group < len(w.links) && len(w.links[group]) > 0 { // it got out, and stopped further on
				forwarded(p)
			}
			links()
			if n := len(out.Hops); n > 0 { // it stops where the last hop got to
				h.Node, h.Netns = out.Hops[n-1].Node, out.Hops[n-1].Netns
			}
			h.Kind, h.Detail = api.HopStop, s.Note
			out.Stopped = s.Note
		case lb.StepLeave:
			forwarded(p)
			links()
			h.Kind, h.Detail = api.HopLeave, "left the nodes traced"
			out.Backend = netip.AddrPortFrom(s.Flow.Dst, s.Flow.Port).String()
		}
		out.Hops = append(out.Hops, h)
	}
}

// deliver names the socket of p that flow f is delivered to, as ": CMD
// (pid N) listening on ADDR:PORT" to follow the delivery; false, with
// why, when nothing listens there and the connection is refused.
func deliver(p *place, f lb.TraceFlow) (string, bool) {
	if p.ns.Sockets == nil { // not read: an error of the snapshot says why
		return " (its sockets were not read)", true
	}
	dst := netip.AddrPortFrom(f.Dst, f.Port)
	s, ok := p.ns.Listener(f.Proto, dst)
	if !ok {
		if f.Proto == "udp" {
			return fmt.Sprintf("no socket is bound to %s/udp: the datagram is refused (ICMP port unreachable)", dst), false
		}
		return fmt.Sprintf("nothing listens on %s/tcp: the connection is refused (RST)", dst), false
	}
	addr := netip.AddrPortFrom(s.Addr, s.Port).String()
	if s.Wildcard() {
		addr = fmt.Sprintf("*:%d", s.Port)
	}
	verb := "listening on"
	if s.Proto == "udp" {
		verb = "bound to"
	}
	if s.PID == 0 {
		return fmt.Sprintf(": a socket of no process found (inode %d) %s %s", s.Inode, verb, addr), true
	}
	return fmt.Sprintf(": %s (pid %d) %s %s", s.Command, s.PID, verb, addr), true
}

// flowHop is the hop of a connection DNATed in p and forwarded out of
// it, which p's flowtable carries once established; false when p holds
// none that a rule fills.
func flowHop(p *place) (api.TraceHop, bool) {
	devices := lb.OffloadDevices(p.ns.NFT)
	if len(devices) == 0 {
		return api.TraceHop{}, false
	}
	return api.TraceHop{Node: p.snap.NodeName, Netns: p.ns.Name, Kind: api.HopFlow,
		Detail: fmt.Sprintf("%s (%s): once established, later packets of this connection skip %s's rules",
			lb.Flowtable, strings.Join(devices, ", "), p.ns.Name),
		Command: command(p.ns, "nft list table inet meshd")}, true
}

// dnatRE is a rule that DNATs (a REDIRECT is delivered locally, which a
// flowtable does not take).
var dnatRE = regexp.MustCompile(`(^| )-j DNAT( |$)`)

// jumpRE is a rule that jumps to one of the mesh's chains.
var jumpRE = regexp.MustCompile(`-j (MESH-[A-Z0-9-]+)$`)

// rotation lists the backends of a rotation chain in its nat text.
func rotation(nat, chain string) []string {
	re := regexp.MustCompile(`-A ` + regexp.QuoteMeta(chain) + ` .*-j DNAT --to-destination (\S+)`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(nat, -1) {
		out = append(out, m[1])
	}
	return out
}

func packetString(f lb.TraceFlow) string {
	s := fmt.Sprintf("%s > %s:%d/%s", f.Src, f.Dst, f.Port, f.Proto)
	if f.Mark != 0 {
		s += " mark 0x" + strconv.FormatUint(uint64(f.Mark), 16)
	}
	return s
}

// ErrNoSnapshots is Run's error with none.
var ErrNoSnapshots = errors.New("trace: no kernel snapshot")
