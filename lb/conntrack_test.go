package lb

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var netipEqual = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

// with returns s with the given backends.
func with(s Service, b ...Backend) Service {
	s.Backends = b
	return s
}

func live(a string) Backend     { return Backend{Addr: addr(a), Weight: 1} }
func draining(a string) Backend { return Backend{Addr: addr(a), Weight: 0} }

func replySrc(a string) ConntrackFilter { return ConntrackFilter{ReplySrc: addr(a)} }

// fakeConntrackOf is the FakeConntrack newFakePlane gave p.
func fakeConntrackOf(t *testing.T, p *plane) *FakeConntrack {
	t.Helper()
	f, ok := p.ct.ct.(*FakeConntrack)
	if !ok {
		t.Fatalf("plane conntrack is %T, want *FakeConntrack", p.ct.ct)
	}
	return f
}

// TestPlaneUDPConntrackCleanup checks which conntrack deletions a
// sequence of syncs makes: want[i] are the filters of the one DeleteUDP
// call sync i makes, nil for none.
func TestPlaneUDPConntrackCleanup(t *testing.T) {
	dnsPort := ConntrackFilter{OrigDstPort: 5353, NotNATed: true}
	dnsVIP := ConntrackFilter{OrigDst: dnsLB.VIP, NotNATed: true}
	for _, tt := range []struct {
		name  string
		steps []Sandbox
		want  [][]ConntrackFilter
	}{
		{name: "published udp: backend removed",
			steps: []Sandbox{ingressSandbox(dnsIngress), ingressSandbox(with(dnsIngress, live("10.255.0.6")))},
			want:  [][]ConntrackFilter{{dnsPort}, {replySrc("10.255.0.5")}}},
		{name: "draining backend is not removed yet",
			steps: []Sandbox{
				ingressSandbox(dnsIngress),
				ingressSandbox(with(dnsIngress, draining("10.255.0.5"), live("10.255.0.6"))),
				ingressSandbox(with(dnsIngress, live("10.255.0.6")))},
			want: [][]ConntrackFilter{{dnsPort}, nil, {replySrc("10.255.0.5")}}},
		{name: "vip: zero to one backend",
			steps: []Sandbox{lbSandbox(with(dnsLB)), lbSandbox(with(dnsLB, live("10.0.0.3")))},
			want:  [][]ConntrackFilter{nil, {dnsVIP}}},
		{name: "vip: backend replaced through zero",
			steps: []Sandbox{
				lbSandbox(with(dnsLB, live("10.0.0.3"))),
				lbSandbox(with(dnsLB)),
				lbSandbox(with(dnsLB, live("10.0.0.4")))},
			want: [][]ConntrackFilter{{dnsVIP}, {replySrc("10.0.0.3")}, {dnsVIP}}},
		{name: "vip: only draining backends, then a live one",
			steps: []Sandbox{
				lbSandbox(with(dnsLB, draining("10.0.0.3"))),
				lbSandbox(with(dnsLB, draining("10.0.0.3"), live("10.0.0.4")))},
			want: [][]ConntrackFilter{nil, {dnsVIP}}},
		{name: "published udp: backend replaced through zero",
			steps: []Sandbox{
				ingressSandbox(with(dnsIngress, live("10.255.0.5"))),
				ingressSandbox(with(dnsIngress)),
				ingressSandbox(with(dnsIngress, live("10.255.0.6")))},
			want: [][]ConntrackFilter{{dnsPort}, {replySrc("10.255.0.5")}, {dnsPort}}},
		{name: "service removed",
			steps: []Sandbox{lbSandbox(dnsLB, webLB), lbSandbox(webLB), lbSandbox()},
			want: [][]ConntrackFilter{
				{dnsVIP, {OrigDst: webLB.VIP, NotNATed: true}},
				{replySrc("10.0.0.3"), replySrc("10.0.0.4")},
				{replySrc("10.0.0.8")}}},
		{name: "tcp service: nothing",
			steps: []Sandbox{
				ingressSandbox(wwwIngress),
				ingressSandbox(with(wwwIngress, live("10.255.0.6"))),
				ingressSandbox(with(wwwIngress)),
				ingressSandbox(with(wwwIngress, live("10.255.0.5"))),
				ingressSandbox()},
			want: [][]ConntrackFilter{nil, nil, nil, nil, nil}},
		{name: "unchanged: nothing",
			steps: []Sandbox{lbSandbox(dnsLB), lbSandbox(dnsLB)},
			want:  [][]ConntrackFilter{{dnsVIP}, nil}},
	} {
		for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
			t.Run(tt.name+"/"+string(mode), func(t *testing.T) {
				dp, _, _, _ := newFakePlane(t, mode)
				ct := fakeConntrackOf(t, dp)
				for i, sb := range tt.steps {
					before := len(ct.Calls())
					mustSync(t, dp, sb)
					var got []ConntrackFilter
					switch calls := ct.Calls()[before:]; len(calls) {
					case 0:
					case 1:
						got = calls[0]
					default:
						t.Fatalf("sync %d: %d DeleteUDP calls, want at most 1", i, len(calls))
					}
					if diff := cmp.Diff(tt.want[i], got, netipEqual); diff != "" {
						t.Errorf("sync %d: deletions (-want +got):\n%s", i, diff)
					}
				}
			})
		}
	}
}

// TestPlaneConntrackModel runs the lab's failure on the fake table: a
// client on a fixed port whose backend is replaced through zero.
func TestPlaneConntrackModel(t *testing.T) {
	client := netip.AddrPortFrom(extClient, 40053)
	published := netip.AddrPortFrom(ingressGW, 5353)
	toOld := Flow{Proto: "udp", Src: client, Dst: published, ReplySrc: netip.AddrPortFrom(addr("10.255.0.5"), 5353)}
	tcpToOld := Flow{Proto: "tcp", Src: client, Dst: netip.AddrPortFrom(ingressGW, 8888), ReplySrc: netip.AddrPortFrom(addr("10.255.0.5"), 8888)}
	other := Flow{Proto: "udp", Src: netip.AddrPortFrom(extClient, 1000), Dst: published, ReplySrc: netip.AddrPortFrom(addr("10.255.0.6"), 5353)}
	unNATed := Flow{Proto: "udp", Src: client, Dst: published, ReplySrc: published}

	dp, _, _, _ := newFakePlane(t, ModeIPTables)
	ct := fakeConntrackOf(t, dp)
	mustSync(t, dp, ingressSandbox(dnsIngress))
	ct.Add(toOld, tcpToOld, other)
	mustSync(t, dp, ingressSandbox(with(dnsIngress, live("10.255.0.6"))))
	if diff := cmp.Diff([]Flow{tcpToOld, other}, ct.Flows(), netipEqual); diff != "" {
		t.Errorf("after the backend left (-want +got):\n%s", diff)
	}
	mustSync(t, dp, ingressSandbox(with(dnsIngress)))
	ct.Add(unNATed) // made while nothing answered
	mustSync(t, dp, ingressSandbox(with(dnsIngress, live("10.255.0.7"))))
	if diff := cmp.Diff([]Flow{tcpToOld}, ct.Flows(), netipEqual); diff != "" {
		t.Errorf("after the new backend came (-want +got):\n%s", diff)
	}
}

// TestPlaneConntrackRetry checks that a deletion that failed, or that a
// failed rules update kept from being tried, is made by the next sync,
// even when the model has moved on meanwhile.
func TestPlaneConntrackRetry(t *testing.T) {
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		t.Run(string(mode), func(t *testing.T) {
			dp, rules, _, _ := newFakePlane(t, mode)
			ct := fakeConntrackOf(t, dp)
			ctx := context.Background()
			mustSync(t, dp, lbSandbox(dnsLB, webLB))
			n := len(ct.Calls())

			ct.FailNext(syscall.ENOBUFS)
			err := dp.Sync(ctx, lbSandbox(with(dnsLB, live("10.0.0.4")), webLB))
			if !errors.Is(err, syscall.ENOBUFS) || !strings.Contains(err.Error(), "conntrack") {
				t.Fatalf("sync with failing conntrack = %v, want a conntrack error wrapping ENOBUFS", err)
			}
			rules.FailNext(errors.New("iptables-restore: resource problem"))
			if err := dp.Sync(ctx, lbSandbox(with(dnsLB, live("10.0.0.4")))); err == nil {
				t.Fatal("sync with failing rules: no error")
			}
			if got := len(ct.Calls()); got != n {
				t.Fatalf("conntrack called %d times while rules failed, want 0", got-n)
			}
			mustSync(t, dp, lbSandbox(with(dnsLB, live("10.0.0.4"))))
			want := [][]ConntrackFilter{{replySrc("10.0.0.3"), replySrc("10.0.0.8")}}
			if diff := cmp.Diff(want, ct.Calls()[n:], netipEqual); diff != "" {
				t.Errorf("deletions after the failures (-want +got):\n%s", diff)
			}
			mustSync(t, dp, lbSandbox(with(dnsLB, live("10.0.0.4"))))
			if got := len(ct.Calls()) - n; got != 1 {
				t.Errorf("%d DeleteUDP calls after the retry, want 1 (nothing left owed)", got)
			}
		})
	}
}

// TestHostSyncerUDPConntrack checks the host's deletions: a UDP port
// that starts being forwarded forgets the entries nothing NATed to it.
func TestHostSyncerUDPConntrack(t *testing.T) {
	ct := NewFakeConntrack()
	h := NewHostSyncer(NewFakeRules(), WithConntrack(ct))
	ctx := context.Background()
	tcp := HostRules{IngressGW: ingressGW, Published: []Port{{"tcp", 8888, 80}}}
	udp := HostRules{IngressGW: ingressGW, Published: []Port{{"tcp", 8888, 80}, {"udp", 5353, 53}},
		HostPorts: []HostPort{{Port: Port{"udp", 6000, 60}, Dest: webTaskGW}}}
	dns := ConntrackFilter{OrigDstPort: 5353, NotNATed: true}
	hostPort := ConntrackFilter{OrigDstPort: 6000, NotNATed: true}
	for i, step := range []struct {
		rules   HostRules
		failCT  bool
		failed  bool
		deleted []ConntrackFilter
	}{
		{rules: tcp},
		{rules: udp, deleted: []ConntrackFilter{dns, hostPort}},
		{rules: udp},
		{rules: tcp},
		{rules: udp, failCT: true, failed: true},
		{rules: udp, deleted: []ConntrackFilter{dns, hostPort}}, // the retry
		{rules: udp},
	} {
		if step.failCT {
			ct.FailNext(syscall.EPERM)
		}
		before := len(ct.Calls())
		err := h.Sync(ctx, step.rules)
		if (err != nil) != step.failed {
			t.Fatalf("step %d: sync = %v, want failure %v", i, err, step.failed)
		}
		var got []ConntrackFilter
		if calls := ct.Calls()[before:]; len(calls) > 0 {
			got = calls[len(calls)-1]
		}
		if diff := cmp.Diff(step.deleted, got, netipEqual); diff != "" {
			t.Errorf("step %d: deletions (-want +got):\n%s", i, diff)
		}
	}
}

func TestConntrackFilterRefusesEverything(t *testing.T) {
	ct := NewFakeConntrack()
	ct.Add(Flow{Proto: "udp", Src: netip.MustParseAddrPort("203.0.113.7:1"), Dst: netip.MustParseAddrPort("10.0.0.2:53")})
	for _, f := range []ConntrackFilter{{}, {OrigDst: addr("2001:db8::1")}} {
		if _, err := ct.DeleteUDP([]ConntrackFilter{f}); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("DeleteUDP(%v) = %v, want EINVAL", f, err)
		}
	}
	if got := len(ct.Flows()); got != 1 {
		t.Errorf("%d entries left after refused calls, want 1", got)
	}
}
