package lb

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const ipvsHeader = "IP Virtual Server version 1.2.1 (size=4096)\n" +
	"Prot LocalAddress:Port Scheduler Flags\n" +
	"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"

func TestIPVSPlaneFollowsBackends(t *testing.T) {
	dp, _, ipvs, _ := newFakePlane(t, ModeIPVS)
	// A service of an earlier run that no longer exists.
	if err := ipvs.EnsureService(VirtualService{FWMark: 0x1ff, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	www := wwwIngress
	www.Backends = []Backend{{addr("10.255.0.5"), 1}, {addr("10.255.0.6"), 0}, {addr("10.255.0.9"), 1}}
	mustSync(t, dp, ingressSandbox(www))
	want := ipvsHeader + "FWM  256 rr\n" +
		"  -> 10.255.0.5:0                 Masq    1      0          0         \n" +
		"  -> 10.255.0.6:0                 Masq    0      0          0         \n" +
		"  -> 10.255.0.9:0                 Masq    1      0          0         \n"
	if diff := cmp.Diff(want, ipvs.Dump()); diff != "" {
		t.Errorf("after the first sync (-want +got):\n%s", diff)
	}
	table, err := dp.Table()
	if err != nil || table != ipvs.Dump() {
		t.Errorf("Table() = %q, %v; want the IPVS dump", table, err)
	}
	calls := ipvs.Calls()
	mustSync(t, dp, ingressSandbox(www))
	if ipvs.Calls() != calls {
		t.Errorf("an identical sync made %d IPVS calls, want 0", ipvs.Calls()-calls)
	}
	www.Backends = backends("10.255.0.5")
	mustSync(t, dp, ingressSandbox(www))
	want = ipvsHeader + "FWM  256 rr\n" +
		"  -> 10.255.0.5:0                 Masq    1      0          0         \n"
	if diff := cmp.Diff(want, ipvs.Dump()); diff != "" {
		t.Errorf("after removing backends (-want +got):\n%s", diff)
	}
	mustSync(t, dp, ingressSandbox())
	if diff := cmp.Diff(ipvsHeader, ipvs.Dump()); diff != "" {
		t.Errorf("after removing the service (-want +got):\n%s", diff)
	}
}

func TestIPTablesPlaneTable(t *testing.T) {
	dp, _, _, _ := newFakePlane(t, ModeIPTables)
	if got, _ := dp.Table(); got != ipvsHeader {
		t.Errorf("Table() before any sync = %q, want the header only", got)
	}
	www := wwwIngress
	www.Backends = []Backend{{addr("10.255.0.6"), 0}, {addr("10.255.0.5"), 1}}
	mustSync(t, dp, ingressSandbox(www, idleIngress))
	want := ipvsHeader + "FWM  256 rr\n" +
		"  -> 10.255.0.5:0                 Masq    1      0          0         \n" +
		"  -> 10.255.0.6:0                 Masq    0      0          0         \n" +
		"FWM  260 rr\n"
	got, err := dp.Table()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Table (-want +got):\n%s", diff)
	}
}

func TestPlaneSysctls(t *testing.T) {
	for _, tt := range []struct {
		mode Mode
		want []string
	}{
		{ModeIPTables, []string{"net/ipv4/ip_forward=1", "net/ipv4/tcp_early_demux=0", "net/ipv4/udp_early_demux=0"}},
		{ModeIPVS, []string{"net/ipv4/ip_forward=1", "net/ipv4/tcp_early_demux=0", "net/ipv4/udp_early_demux=0", "net/ipv4/vs/conntrack=1", "net/ipv4/vs/conn_reuse_mode=0",
			"net/ipv4/vs/expire_nodest_conn=1", "net/ipv4/vs/expire_quiescent_template=1"}},
	} {
		sys := &FakeSysctls{AnyKey: true}
		opts := []Option{WithRules(NewFakeRules()), WithIPVS(NewFakeIPVS()), WithConntrack(NewFakeConntrack()), WithSysctls(sys)}
		dp, err := NewDataPlane(tt.mode, "", opts...)
		if err != nil {
			t.Fatal(err)
		}
		mustSync(t, dp, ingressSandbox())
		if len(sys.Writes) != 0 {
			t.Errorf("%s: sysctls set for an empty sandbox: %v", tt.mode, sys.Writes)
		}
		mustSync(t, dp, worldOne.ingress)
		mustSync(t, dp, worldTwo.ingress)
		if diff := cmp.Diff(tt.want, sys.Writes); diff != "" {
			t.Errorf("%s: sysctls (-want +got):\n%s", tt.mode, diff)
		}
	}
}

// TestPlaneSysctlRefused: a sysctl the namespace refuses fails the sync
// with the key and the namespace named, and the next sync tries again.
func TestPlaneSysctlRefused(t *testing.T) {
	sys := &FakeSysctls{AnyKey: true, ReadOnly: []string{"net/ipv4/ip_forward"}}
	dp, err := NewDataPlane(ModeIPTables, "/run/meshd/netns/ingress_sbox", WithRules(NewFakeRules()), WithConntrack(NewFakeConntrack()), WithSysctls(sys))
	if err != nil {
		t.Fatal(err)
	}
	err = dp.Sync(context.Background(), worldOne.ingress)
	if err == nil || !strings.Contains(err.Error(), `set sysctl net/ipv4/ip_forward=1 in "/run/meshd/netns/ingress_sbox"`) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("sync with ip_forward refused: %v, want the key, the namespace and a permission error", err)
	}
	sys.ReadOnly = nil
	mustSync(t, dp, worldOne.ingress)
	if got := sys.Vals["net/ipv4/ip_forward"]; got != "1" {
		t.Errorf("ip_forward after the refusal ended: %q, want 1", got)
	}
}

func TestNewDataPlaneRefusesAuto(t *testing.T) {
	if _, err := NewDataPlane(ModeAuto, ""); err == nil || !strings.Contains(err.Error(), "ChooseMode") {
		t.Errorf("NewDataPlane(auto) = %v, want an error pointing to ChooseMode", err)
	}
}

func TestSandboxValidate(t *testing.T) {
	dupPort := apiIngress
	dupPort.Ports = []Port{{"tcp", 8888, 80}}
	dupMark := apiIngress
	dupMark.FWMark = wwwIngress.FWMark
	badBackend := wwwIngress
	badBackend.Backends = []Backend{{addr("10.255.0.5"), -1}}
	badProto := wwwIngress
	badProto.Ports = []Port{{"sctp", 80, 80}}
	tests := []struct {
		name string
		sb   Sandbox
	}{
		{"kind", Sandbox{Kind: "bridge"}},
		{"port published twice", ingressSandbox(wwwIngress, dupPort)},
		{"fwmark used twice", ingressSandbox(wwwIngress, dupMark)},
		{"negative weight", ingressSandbox(badBackend)},
		{"protocol", ingressSandbox(badProto)},
		{"no own address", Sandbox{Kind: SandboxLB, Services: []Service{wwwLB}}},
	}
	for _, tt := range tests {
		dp, _, _, _ := newFakePlane(t, ModeIPTables)
		if err := dp.Sync(context.Background(), tt.sb); err == nil {
			t.Errorf("%s: Sync = nil, want an error", tt.name)
		}
	}
}

// TestBackendListedTwice: overlapping endpoint records do not block the
// sandbox; the highest weight counts.
func TestBackendListedTwice(t *testing.T) {
	www := wwwIngress
	www.Backends = []Backend{{addr("10.255.0.5"), 0}, {addr("10.255.0.6"), 1}, {addr("10.255.0.5"), 1}}
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		dp, rules, ipvs, _ := newFakePlane(t, mode)
		mustSync(t, dp, ingressSandbox(www))
		if mode == ModeIPVS {
			if diff := cmp.Diff(testdataText(t, "one_ingress_ipvs.ipvsadm"), ipvs.Dump()); diff != "" {
				t.Errorf("ipvs (-want +got):\n%s", diff)
			}
			continue
		}
		if diff := cmp.Diff(testdataText(t, "one_ingress_iptables"), lastPayload(rules)); diff != "" {
			t.Errorf("payload (-want +got):\n%s", diff)
		}
	}
}

func TestPlaneTimeouts(t *testing.T) {
	ipvs := NewFakeIPVS()
	want := Timeouts{TCP: 3600 * time.Second, UDP: 60 * time.Second}
	dp, err := NewDataPlane(ModeIPVS, "", WithRules(NewFakeRules()), WithIPVS(ipvs), WithTimeouts(want), WithConntrack(NewFakeConntrack()),
		WithSysctls(&FakeSysctls{AnyKey: true}))
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, dp, worldOne.ingress)
	if got := ipvs.Timeouts(); got != want {
		t.Errorf("timeouts = %+v, want %+v", got, want)
	}
}
