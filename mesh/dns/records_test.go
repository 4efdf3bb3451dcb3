package dns

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// recordCase is one query and what must come of it. Forwarded queries
// reach the fake upstream, which answers NXDOMAIN.
type recordCase struct {
	name      string
	networks  []string
	qname     string
	qtype     uint16
	want      []string // sorted answer, "A 10.0.0.2"
	rcode     int
	forwarded bool
}

func TestRecords(t *testing.T) {
	ov := []string{netOv}
	tests := []recordCase{
		{name: "service VIP", networks: ov, qname: "www.", qtype: dns.TypeA, want: []string{"A 10.0.0.2"}},
		{name: "tasks. gives task IPs", networks: ov, qname: "tasks.www.", qtype: dns.TypeA,
			want: []string{"A 10.0.0.3", "A 10.0.0.4"}},
		{name: "task name", networks: ov, qname: "www.2.bbbb.", qtype: dns.TypeA, want: []string{"A 10.0.0.4"}},
		{name: "dnsrr service gives task IPs", networks: ov, qname: "db.", qtype: dns.TypeA,
			want: []string{"A 10.0.0.5", "A 10.0.0.6", "A 10.0.0.7"}},
		{name: "alias shared by two services", networks: ov, qname: "front.", qtype: dns.TypeA,
			want: []string{"A 10.0.0.2", "A 10.0.0.8"}},
		{name: "tasks. of a shared alias", networks: ov, qname: "tasks.front.", qtype: dns.TypeA,
			want: []string{"A 10.0.0.3", "A 10.0.0.4", "A 10.0.0.9"}},
		{name: "qualified name", networks: ov, qname: "www.ovnet.", qtype: dns.TypeA, want: []string{"A 10.0.0.2"}},
		{name: "qualified tasks.", networks: ov, qname: "tasks.www.ovnet.", qtype: dns.TypeA,
			want: []string{"A 10.0.0.3", "A 10.0.0.4"}},
		{name: "qualified task name", networks: ov, qname: "www.1.aaaa.ovnet.", qtype: dns.TypeA,
			want: []string{"A 10.0.0.3"}},
		{name: "case-insensitive", networks: ov, qname: "WwW.OVNet.", qtype: dns.TypeA, want: []string{"A 10.0.0.2"}},
		{name: "case-insensitive tasks.", networks: ov, qname: "TASKS.DB.", qtype: dns.TypeA,
			want: []string{"A 10.0.0.5", "A 10.0.0.6", "A 10.0.0.7"}},
		{name: "PTR of a task IP", networks: ov, qname: "3.0.0.10.in-addr.arpa.", qtype: dns.TypePTR,
			want: []string{"PTR www.1.aaaa.ovnet."}},
		{name: "PTR of a VIP", networks: ov, qname: "2.0.0.10.in-addr.arpa.", qtype: dns.TypePTR,
			want: []string{"PTR www.ovnet."}},
		{name: "PTR of an anonymous task is its first alias", networks: []string{netProd},
			qname: "4.2.0.10.in-addr.arpa.", qtype: dns.TypePTR, want: []string{"PTR hello.prod."}},
		{name: "PTR of an unknown address is forwarded", networks: ov, qname: "99.0.0.10.in-addr.arpa.",
			qtype: dns.TypePTR, rcode: dns.RcodeNameError, forwarded: true},
		{name: "AAAA of a known name is empty", networks: ov, qname: "www.", qtype: dns.TypeAAAA},
		{name: "MX of a known name is empty", networks: ov, qname: "tasks.www.", qtype: dns.TypeMX},
		{name: "unknown name is forwarded", networks: ov, qname: "example.org.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, forwarded: true},
		{name: "unknown single label is forwarded", networks: ov, qname: "nosuch.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, forwarded: true},
		{name: "qualified with a wrong network is forwarded", networks: ov, qname: "www.dev.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, forwarded: true},
	}
	runRecordCases(t, tests)
}

func TestScoping(t *testing.T) {
	tests := []recordCase{
		{name: "name on another network is forwarded", networks: []string{netOv}, qname: "secret.",
			qtype: dns.TypeA, rcode: dns.RcodeNameError, forwarded: true},
		{name: "PTR on another network is forwarded", networks: []string{netOv}, qname: "3.3.0.10.in-addr.arpa.",
			qtype: dns.TypePTR, rcode: dns.RcodeNameError, forwarded: true},
		{name: "first attached network wins: dev", networks: []string{netDev, netProd}, qname: "es.",
			qtype: dns.TypeA, want: []string{"A 10.0.1.2"}},
		{name: "first attached network wins: prod", networks: []string{netProd, netDev}, qname: "es.",
			qtype: dns.TypeA, want: []string{"A 10.0.2.2", "A 10.0.2.3"}},
		{name: "qualified name picks the other network", networks: []string{netDev, netProd}, qname: "es.prod.",
			qtype: dns.TypeA, want: []string{"A 10.0.2.2", "A 10.0.2.3"}},
		{name: "PTR from the network that has the address", networks: []string{netDev, netProd},
			qname: "2.2.0.10.in-addr.arpa.", qtype: dns.TypePTR, want: []string{"PTR prod-es-1.prod."}},
		{name: "ingress has no records", networks: []string{netIngress}, qname: "www.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, forwarded: true},
		{name: "ingress skipped for the next network", networks: []string{netIngress, netOv}, qname: "www.",
			qtype: dns.TypeA, want: []string{"A 10.0.0.2"}},
		{name: "no PTR on ingress", networks: []string{netIngress, netOv}, qname: "5.0.255.10.in-addr.arpa.",
			qtype: dns.TypePTR, rcode: dns.RcodeNameError, forwarded: true},
		{name: "no networks: everything forwarded", qname: "www.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, forwarded: true},
	}
	runRecordCases(t, tests)
}

// runRecordCases asks each case over UDP and TCP, from a task attached
// to the case's networks.
func runRecordCases(t *testing.T, tests []recordCase) {
	t.Helper()
	for _, proto := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				up := startUpstream(t, answerRcode(dns.RcodeNameError))
				s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.addr}}, fixture())
				u, c := attach(t, s, Querier{Networks: tt.networks})
				addr := map[string]string{"udp": u, "tcp": c}[proto]
				resp := ask(t, addr, proto, tt.qname, tt.qtype)
				if resp.Rcode != tt.rcode {
					t.Errorf("rcode: got %s, want %s", rcode(resp), dns.RcodeToString[tt.rcode])
				}
				if diff := cmp.Diff(tt.want, rrs(resp)); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
				var want []string
				if tt.forwarded {
					want = []string{proto + " " + tt.qname}
				}
				if diff := cmp.Diff(want, up.queries()); diff != "" {
					t.Errorf("upstream queries (-want +got):\n%s", diff)
				}
				if !tt.forwarded && (resp.Truncated || !resp.RecursionAvailable) {
					t.Errorf("flags: got TC=%v RA=%v, want TC=false RA=true", resp.Truncated, resp.RecursionAvailable)
				}
			})
		}
	}
}

func TestAnswerKeepsQuestionCaseAndTTL(t *testing.T) {
	s := newTestServer(t, Config{TTL: 42 * 1e9}, fixture())
	u, _ := attach(t, s, Querier{Networks: []string{netOv}})
	resp := ask(t, u, "udp", "WWW.ovnet.", dns.TypeA)
	if len(resp.Answer) != 1 {
		t.Fatalf("answers: got %d, want 1", len(resp.Answer))
	}
	h := resp.Answer[0].Header()
	if h.Name != "WWW.ovnet." || h.Ttl != 42 {
		t.Errorf("got name %q ttl %d, want %q ttl 42", h.Name, h.Ttl, "WWW.ovnet.")
	}
}

func TestTableSwapIsVisibleToNextQuery(t *testing.T) {
	s := newTestServer(t, Config{}, fixture())
	u, _ := attach(t, s, Querier{Networks: []string{netOv}})
	if got := rrs(ask(t, u, "udp", "tasks.www.", dns.TypeA)); len(got) != 2 {
		t.Fatalf("before: got %v, want 2 records", got)
	}
	eps := append(fixture(), Endpoint{NetworkID: netOv, Network: "ovnet", Service: "www",
		TaskName: "www.3.zzzz", IP: ip("10.0.0.10"), VIP: ip("10.0.0.2")})
	s.SetTable(NewTable(eps))
	want := []string{"A 10.0.0.10", "A 10.0.0.3", "A 10.0.0.4"}
	if diff := cmp.Diff(want, rrs(ask(t, u, "udp", "tasks.www.", dns.TypeA))); diff != "" {
		t.Errorf("after swap (-want +got):\n%s", diff)
	}
	s.SetTable(nil)
	if resp := ask(t, u, "udp", "tasks.www.", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("empty table, no upstream: got %s, want SERVFAIL", rcode(resp))
	}
}

func TestSetQuerierFollowsConnect(t *testing.T) {
	s := newTestServer(t, Config{}, fixture())
	pc, ln := listenPair(t)
	r, err := s.Attach(Querier{Networks: []string{netOv}}, pc, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if resp := ask(t, pc.LocalAddr().String(), "udp", "es.", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("before connect: got %s %v, want SERVFAIL (forwarded, no upstream)", rcode(resp), rrs(resp))
	}
	nets := []string{netOv, netDev}
	r.SetQuerier(Querier{Networks: nets})
	nets[1] = netProd // the caller's slice is not kept
	if diff := cmp.Diff([]string{"A 10.0.1.2"}, rrs(ask(t, pc.LocalAddr().String(), "udp", "es.", dns.TypeA))); diff != "" {
		t.Errorf("after connect (-want +got):\n%s", diff)
	}
}

func TestParseReverse(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for not an address
	}{
		{"4.3.2.1.in-addr.arpa.", "1.2.3.4"},
		{"4.3.2.1.IN-ADDR.ARPA", "1.2.3.4"},
		{"3.2.1.in-addr.arpa.", ""},
		{"256.3.2.1.in-addr.arpa.", ""},
		{"04.3.2.1.in-addr.arpa.", ""},
		{"x.3.2.1.in-addr.arpa.", ""},
		{"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.", "4321:0:1:2:3:4:567:89ab"},
		{"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.ip6.arpa.", ""},
		{"www.example.org.", ""},
	}
	for _, tt := range tests {
		a, ok := parseReverse(tt.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("parseReverse(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A task connected to an overlay and to a bridge network resolves
// through one table joining the agent's and the container engine's.
func TestMergeJoinsTwoOwnersTables(t *testing.T) {
	var ovEps, devEps []Endpoint
	for _, e := range fixture() {
		switch e.NetworkID {
		case netOv:
			ovEps = append(ovEps, e)
		case netDev:
			devEps = append(devEps, e)
		}
	}
	if len(ovEps) == 0 || len(devEps) == 0 {
		t.Fatal("fixture: want endpoints on ovnet and on dev")
	}
	shadow := []Endpoint{{NetworkID: netOv, Network: "ovnet", TaskName: "www", IP: ip("10.0.0.99")}}
	merged := Merge(NewTable(ovEps), nil, NewTable(append(devEps, shadow...)))
	q := &Querier{Networks: []string{netOv, netDev}}
	for name, want := range map[string]string{"www": "10.0.0.2", "es": "10.0.1.2"} {
		addrs, found := merged.lookup(q, name)
		if !found || len(addrs) != 1 || addrs[0] != ip(want) {
			t.Errorf("%s: got %v (found %v), want %s", name, addrs, found, want)
		}
	}
	if addrs, found := merged.lookup(&Querier{Networks: []string{netOv}}, "es"); found {
		t.Errorf("es from ovnet alone: got %v, want not found (names are scoped per network)", addrs)
	}
	if got := len(Merge().nets); got != 0 {
		t.Errorf("Merge(): %d networks, want none", got)
	}
}
