package lb

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// Services of the traced node, besides www, api and web of the fixtures:
// idle publishes 9999 and has a VIP on ovnet but no task; dns publishes
// 5353/udp.
var (
	idleIngress = Service{Key: "idle/ingress", Name: "idle", FWMark: 0x104, Ports: []Port{{"tcp", 9999, 80}}}
	idleLB      = Service{Key: "idle/ovnet", Name: "idle", FWMark: 0x105, VIP: addr("10.0.0.11")}
	dns2Ingress = Service{Key: "dns/ingress", Name: "dns", FWMark: 0x106, Ports: []Port{{"udp", 5353, 53}},
		Backends: backends("10.255.0.8")}
)

// newFakeNode programs one node through the real syncers and data planes
// over fakes, and returns its namespaces for the tracer: the host, the
// ingress sandbox and lb_ovnet (data plane mode), task www.1 (10.255.0.5,
// 10.0.0.3, redirect 8888→80) and task web.1 (mode=host 8080:80 at
// 172.18.0.5). Other tasks are on other nodes.
func newFakeNode(t *testing.T, mode Mode) TraceNet {
	t.Helper()
	ctx := context.Background()
	host := &TraceNS{Name: "host", Rules: NewFakeRules(), Local: []netip.Addr{nodeIP, addr("127.0.0.1"), addr("172.18.0.1")},
		Ifaces: map[netip.Prefix]Iface{netip.MustParsePrefix("172.18.0.0/16"): {GatewayBridgeName, addr("172.18.0.1")}}}
	hr := HostRules{IngressGW: ingressGW, Egress: netip.MustParsePrefix("172.18.0.0/16"), Published: []Port{{"tcp", 8888, 80}, {"tcp", 9999, 80}, {"udp", 5353, 53}},
		HostPorts: []HostPort{{Port{"tcp", 8080, 80}, webTaskGW}}}
	if err := NewHostSyncer(host.Rules.(*FakeRules), WithConntrack(NewFakeConntrack())).Sync(ctx, hr); err != nil {
		t.Fatal(err)
	}
	sandbox := func(name string, sb Sandbox) *TraceNS {
		dp, rules, ipvs, _ := newFakePlane(t, mode)
		mustSync(t, dp, sb)
		ns := &TraceNS{Name: name, Rules: rules, Local: []netip.Addr{sb.OwnAddr}}
		if mode == ModeIPVS {
			ns.IPVS = ipvs
		}
		for _, s := range sb.Services {
			if s.VIP.IsValid() {
				ns.Local = append(ns.Local, s.VIP)
			}
		}
		return ns
	}
	ingress := sandbox("ingress_sbox", ingressSandbox(wwwIngress, idleIngress, dns2Ingress))
	ingress.Local = append(ingress.Local, ingressGW)
	lb := sandbox("lb_ovnet", lbSandbox(wwwLB, webLB, idleLB))
	www1 := &TraceNS{Name: "www.1", Rules: NewFakeRules(), Task: true,
		Local: []netip.Addr{addr("10.255.0.5"), addr("10.0.0.3"), addr("172.18.0.3"), addr("127.0.0.11")}}
	if err := NewTaskSyncer(www1.Rules.(*FakeRules)).Sync(ctx, worldOne.task); err != nil {
		t.Fatal(err)
	}
	web1 := &TraceNS{Name: "web.1", Task: true, Local: []netip.Addr{webTaskGW, addr("10.0.0.8")}}
	return TraceNet{host, ingress, lb, www1, web1}
}

func TestTrace(t *testing.T) {
	tests := []struct {
		name     string
		src      netip.Addr
		proto    string
		dst      netip.Addr
		port     uint16
		out      string
		want     []string // substrings of some match
		wantNone []string // substrings of no match
		// wantSplit are substrings of some match when the shared chains
		// are split (marks from sets, buckets by mark).
		wantSplit []string
	}{
		{name: "external to published port", src: extClient, proto: "tcp", dst: nodeIP, port: 8888,
			out:       "10.255.0.5:80, 10.255.0.6:8888",
			want:      []string{"host nat/MESH-INGRESS", "ingress_sbox mangle/MESH-PREROUTING", "SNAT --to-source 10.255.0.2", "www.1 nat/MESH-REDIRECT"},
			wantSplit: []string{`ingress_sbox ipset/MESH-PREROUTING-TCP: 8888 comment "www" skbmark 0x100`}},
		{name: "localhost to published port", src: addr("127.0.0.1"), proto: "tcp", dst: addr("127.0.0.1"), port: 8888,
			out:  "10.255.0.5:80, 10.255.0.6:8888",
			want: []string{"host nat/MESH-INGRESS-SNAT", "MASQUERADE"}},
		{name: "published udp", src: extClient, proto: "udp", dst: nodeIP, port: 5353,
			out: "10.255.0.8:5353"},
		{name: "tcp to the udp port", src: extClient, proto: "tcp", dst: nodeIP, port: 5353,
			out: "host 192.168.0.10:5353"},
		{name: "VIP from a task", src: addr("10.0.0.3"), proto: "tcp", dst: addr("10.0.0.2"), port: 80,
			out:       "10.0.0.3:80, 10.0.0.4:80",
			want:      []string{"lb_ovnet", "SNAT --to-source 10.0.0.6"},
			wantSplit: []string{`-VIP: 10.0.0.2 comment "www" skbmark 0x101`}},
		{name: "host-mode port keeps the client address", src: extClient, proto: "tcp", dst: nodeIP, port: 8080,
			out:      "172.18.0.5:80",
			want:     []string{"DNAT --to-destination 172.18.0.5:80"},
			wantNone: []string{"-j SNAT", "-j MASQUERADE", "ingress_sbox"}},
		{name: "published port without backend", src: extClient, proto: "tcp", dst: nodeIP, port: 9999,
			out: "REJECT"},
		{name: "VIP without backend", src: addr("10.0.0.3"), proto: "tcp", dst: addr("10.0.0.11"), port: 80,
			out: "REJECT"},
		{name: "DNS query in a task reaches its resolver", src: addr("10.0.0.3"), proto: "udp", dst: addr("127.0.0.11"), port: 53,
			out: "127.0.0.11:41234", want: []string{"www.1 nat/MESH-DNS-OUTPUT"}},
		{name: "unpublished port stays on the host", src: extClient, proto: "tcp", dst: nodeIP, port: 22,
			out: "host 192.168.0.10:22", wantNone: []string{"DNAT"}},
	}
	// "buckets": every shared chain of more than one entry in buckets, so
	// that the walk goes through their jumps.
	for _, layout := range []string{"", "buckets/"} {
		for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
			threshold := bucketThreshold
			if layout != "" {
				threshold = 1
			}
			old := bucketThreshold
			bucketThreshold = threshold
			node := newFakeNode(t, mode)
			bucketThreshold = old
			for _, tt := range tests {
				t.Run(layout+string(mode)+"/"+tt.name, func(t *testing.T) {
					matches, out := TracePacket(t, node, tt.src, tt.proto, tt.dst, tt.port)
					all := strings.Join(matches, "\n")
					if out != tt.out {
						t.Errorf("out = %q, want %q; matches:\n%s", out, tt.out, all)
					}
					checkHolds(t, "the matches", all, tt.want, tt.wantNone)
					if layout == "" {
						return
					}
					if strings.Contains(all, "-j MARK") {
						t.Errorf("a MARK rule in a split chain; matches:\n%s", all)
					}
					if strings.Contains(all, "--map-set") != strings.Contains(all, " skbmark 0x") {
						t.Errorf("a SET rule without the member it took its mark from; matches:\n%s", all)
					}
					for _, w := range tt.wantSplit {
						if !strings.Contains(all, w) {
							t.Errorf("no match contains %q; matches:\n%s", w, all)
						}
					}
					if mode == ModeIPTables && strings.Contains(all, "nat/MESH-SVC-") && !strings.Contains(all, "nat/MESH-SERVICES-") {
						t.Errorf("a service chain reached outside a bucket of MESH-SERVICES; matches:\n%s", all)
					}
				})
			}
		}
	}
}

// recordingT is a fataler that stops the trace like t.Fatalf would.
type recordingT struct{ msg string }

func (*recordingT) Helper() {}
func (r *recordingT) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(r)
}

func TestTraceRefusesUnknownShapes(t *testing.T) {
	rules := NewFakeRules()
	payload := "*nat\n:MESH-INGRESS - [0:0]\n-A MESH-INGRESS -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.1.1\n" +
		"-I PREROUTING 1 -j MESH-INGRESS\nCOMMIT\n"
	if err := rules.Apply(context.Background(), []byte(payload)); err != nil {
		t.Fatal(err)
	}
	node := TraceNet{{Name: "host", Rules: rules, Local: []netip.Addr{nodeIP}}}
	rec := &recordingT{}
	func() {
		defer func() {
			if r := recover(); r != nil && r != rec {
				panic(r)
			}
		}()
		TracePacket(rec, node, extClient, "tcp", nodeIP, 80)
	}()
	if !strings.Contains(rec.msg, "unknown rule shape") {
		t.Errorf("tracer said %q, want it to refuse the unknown shape", rec.msg)
	}
}
