package lb

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
)

// The renderers turn the model into a ruleset (pure data); the syncer
// diffs rulesets and writes payloads. Rules are spelled as iptables-save
// prints them (-m tcp after -p tcp, -d with /32, matches in save order),
// except "MARK --set-mark" and a bare "REJECT", which read better and which
// iptables-save expands to --set-xmark M/0xffffffff and --reject-with
// icmp-port-unreachable.

// sandboxRules is what a load-balancing sandbox needs under mode.
func sandboxRules(mode Mode, sb Sandbox) (ruleset, error) {
	rs, _, _, err := newSandboxRenderer(mode).rules(sb)
	return rs, err
}

// sandboxRenderer renders sandboxes and keeps each service's unit, so that
// a sync renders only the services that changed and hands the syncer the
// very same *unit for the others: with 1000 services, rendering and
// comparing them all again costs more than the iptables-restore of one.
type sandboxRenderer struct {
	mode  Mode
	kind  string             // the sandbox kind the cache was made for
	cache map[string]svcUnit // by Service.Key
	snat  *unit              // the sandbox-wide unit ("" key)
}

type svcUnit struct {
	svc   Service // a private copy
	chain string  // svcChain(svc.Key)
	u     *unit
}

func newSandboxRenderer(mode Mode) *sandboxRenderer {
	return &sandboxRenderer{mode: mode, cache: map[string]svcUnit{}}
}

// rules renders sb. fresh are the services rendered anew (new or
// changed since the last call); gone says whether a service went away.
// A failed call leaves the renderer as it was.
func (r *sandboxRenderer) rules(sb Sandbox) (rs ruleset, fresh []Service, gone bool, err error) {
	old := r.cache
	if sb.Kind != r.kind {
		old = nil
	}
	rs = make(ruleset, len(sb.Services)+1)
	cache := make(map[string]svcUnit, len(sb.Services))
	owners := make(map[string]string, len(sb.Services))
	for _, s := range sb.Services {
		su, ok := old[s.Key]
		if !ok || !su.svc.equal(s) {
			su = svcUnit{svc: s.clone(), chain: svcChain(s.Key)}
			su.u = r.service(sb.Kind, s, su.chain)
			fresh = append(fresh, s)
		}
		if other, dup := owners[su.chain]; dup {
			return nil, nil, false, fmt.Errorf("service %s: chain name %s collides with %s", s.Key, su.chain, other)
		}
		owners[su.chain] = s.Key
		cache[s.Key], rs[s.Key] = su, su.u
	}
	gone = len(old) > len(cache)-countNew(fresh, old) || sb.Kind != r.kind && len(r.cache) > 0
	r.kind, r.cache = sb.Kind, cache
	if len(sb.Services) > 0 {
		match := "-m conntrack --ctstate DNAT"
		if r.mode == ModeIPVS {
			match = "-m ipvs --ipvs"
		}
		rule := fmt.Sprintf("-d %s %s -j SNAT --to-source %s", sb.Subnet.Masked(), match, sb.OwnAddr)
		if r.snat == nil || r.snat.entries[0].rule != rule {
			r.snat = newUnit()
			r.snat.add("nat", chainSNAT, rule)
		}
		rs[""] = r.snat
	}
	return rs, fresh, gone, nil
}

// countNew is how many of fresh old does not know.
func countNew(fresh []Service, old map[string]svcUnit) int {
	n := 0
	for _, s := range fresh {
		if _, ok := old[s.Key]; !ok {
			n++
		}
	}
	return n
}

// services are the services last rendered, sorted by mark (private
// copies).
func (r *sandboxRenderer) services() []Service {
	out := make([]Service, 0, len(r.cache))
	for _, su := range r.cache {
		out = append(out, su.svc)
	}
	slices.SortFunc(out, func(a, b Service) int { return cmp.Compare(a.FWMark, b.FWMark) })
	return out
}

// service renders one service in a sandbox of the given kind.
func (r *sandboxRenderer) service(kind string, s Service, chain string) *unit {
	u := newUnit()
	mark := fmt.Sprintf("%#x", s.FWMark)
	tag := "-m comment --comment " + comment(s.Name)
	if kind == SandboxIngress {
		for _, p := range s.Ports {
			u.add("mangle", chainMarkPre, fmt.Sprintf("-p %s -m %s --dport %d %s -j MARK --set-mark %s",
				p.Proto, p.Proto, p.Published, tag, mark))
		}
	}
	if s.VIP.IsValid() {
		vip := fmt.Sprintf("-d %s/32 %s -j MARK --set-mark %s", s.VIP, tag, mark)
		if r.mode == ModeIPVS {
			u.add("mangle", chainMarkIn, vip)
		} else {
			u.add("mangle", chainMarkPre, vip)
			u.add("mangle", chainMarkOut, vip)
		}
	}
	if r.mode == ModeIPVS {
		return u
	}
	live := liveBackends(s)
	if len(live) == 0 {
		u.add("filter", chainReject, fmt.Sprintf("-m mark --mark %s -m conntrack ! --ctstate DNAT %s -j REJECT", mark, tag))
		return u
	}
	u.own[chainKey{"nat", chain}] = rotation(live)
	u.add("nat", chainServices, fmt.Sprintf("-m mark --mark %s %s -j %s", mark, tag, chain))
	return u
}

// rotation is a service chain: new connections go to the live backends in
// strict turn, like IPVS rr. Rule i of n matches every (n-i)th connection
// that reaches it, counting from the first; the last takes the rest. With
// A,B,C: A takes connections 1,4,7…; B every 2nd of the rest from the first
// (2,5,8…); C the others (3,6,9…).
// Only the address is rewritten, so the port is kept, as IPVS fwmark
// services with port 0 do.
func rotation(live []netip.Addr) []string {
	out := make([]string, len(live))
	for i, a := range live {
		if i < len(live)-1 {
			out[i] = fmt.Sprintf("-m statistic --mode nth --every %d --packet 0 -j DNAT --to-destination %s", len(live)-i, a)
		} else {
			out[i] = "-j DNAT --to-destination " + a.String()
		}
	}
	return out
}

// hostRules is what the node's own namespace needs.
func hostRules(h HostRules) ruleset {
	rs := newUnit()
	forward := func(p Port, dest netip.Addr, port uint16) {
		rs.add("nat", chainIngress, fmt.Sprintf("-p %s -m %s --dport %d -j DNAT --to-destination %s:%d",
			p.Proto, p.Proto, p.Published, dest, port))
	}
	for _, p := range h.Published {
		forward(p, h.IngressGW, p.Published)
	}
	for _, hp := range h.HostPorts {
		forward(hp.Port, hp.Dest, hp.Target)
	}
	if len(h.Published)+len(h.HostPorts) > 0 {
		// What these DNATs send into mesh_gwbridge, and its way back: two
		// rules whatever the number of ports, as conntrack knows which
		// connections were DNATed (rules per port would be walked by
		// every forwarded packet).
		rs.add("filter", chainIngress, fmt.Sprintf("-o %s -m conntrack --ctstate DNAT -j ACCEPT", GatewayBridgeName))
		rs.add("filter", chainIngress, fmt.Sprintf("-i %s -m conntrack --ctstate DNAT -j ACCEPT", GatewayBridgeName))
		rs.add("nat", chainIngressSNAT, fmt.Sprintf("-o %s -m addrtype --src-type LOCAL -j MASQUERADE", GatewayBridgeName))
	}
	out := ruleset{"host": rs}
	if h.Egress.IsValid() {
		eg := newUnit()
		eg.add("nat", chainEgress, fmt.Sprintf("-s %s ! -o %s -j MASQUERADE", h.Egress.Masked(), GatewayBridgeName))
		out["egress"] = eg
	}
	return out
}

// taskRules is what one task sandbox needs.
func taskRules(t TaskRules) ruleset {
	rs := newUnit()
	dst := ""
	if t.Addr.IsValid() {
		dst = fmt.Sprintf("-d %s/32 ", t.Addr)
	}
	for _, p := range t.Redirects {
		if p.Published == p.Target {
			continue
		}
		rs.add("nat", chainRedirect, fmt.Sprintf("%s-p %s -m %s --dport %d -j REDIRECT --to-ports %d",
			dst, p.Proto, p.Proto, p.Published, p.Target))
	}
	out := ruleset{"task": rs}
	if t.DNS != (DNSPorts{}) {
		out["dns"] = dnsRules(t.DNS)
	}
	return out
}

// dnsRules make the resolver's sockets answer on 127.0.0.11:53.
func dnsRules(d DNSPorts) *unit {
	u := newUnit()
	for _, r := range []struct {
		proto string
		port  uint16
	}{{"udp", d.UDP}, {"tcp", d.TCP}} {
		u.add("nat", chainDNSOut, fmt.Sprintf("-d %s/32 -p %s -m %s --dport 53 -j DNAT --to-destination %s:%d",
			embeddedDNS, r.proto, r.proto, embeddedDNS, r.port))
		u.add("nat", chainDNSPost, fmt.Sprintf("-s %s/32 -p %s -m %s --sport %d -j SNAT --to-source :53",
			embeddedDNS, r.proto, r.proto, r.port))
	}
	return u
}

// RenderSandbox writes the iptables-restore payload that takes an empty
// namespace to what sb needs under mode (the syncer's first payload).
func RenderSandbox(w io.Writer, mode Mode, sb Sandbox) error {
	if err := checkPlane(mode); err != nil {
		return err
	}
	if err := sb.validate(); err != nil {
		return err
	}
	rs, err := sandboxRules(mode, sb)
	if err != nil {
		return err
	}
	p, _ := fullPlan(nil, rs, sandboxOwner)
	return p.write(w)
}

// RenderHost writes the payload that takes an empty host namespace to h.
func RenderHost(w io.Writer, h HostRules) error {
	if err := h.validate(); err != nil {
		return err
	}
	p, _ := fullPlan(nil, hostRules(h), hostOwner)
	return p.write(w)
}

// RenderTask writes the payload that takes an empty task sandbox to t.
func RenderTask(w io.Writer, t TaskRules) error {
	if err := t.validate(); err != nil {
		return err
	}
	p, _ := fullPlan(nil, taskRules(t), taskOwner)
	return p.write(w)
}

func checkPlane(m Mode) error {
	if !slices.Contains([]Mode{ModeIPVS, ModeIPTables}, m) {
		return fmt.Errorf("lb mode %q: want %q or %q (resolve %q with ChooseMode)", m, ModeIPVS, ModeIPTables, ModeAuto)
	}
	return nil
}
