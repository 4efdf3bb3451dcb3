//go:build linux

package lb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
)

// TestKernelRoundRobin sends real connections through the iptables data
// plane:
//
//	client 203.0.113.7 ── 203.0.113.1 sbox br0 10.255.0.2/16 (+VIP 10.255.0.4/32) ─┬─ a 10.255.0.5 (REDIRECT 8888→80, answers "a")
//	                                                                                 ├─ b 10.255.0.6 (same, "b")
//	                                                                                 └─ c 10.255.0.7 (same, "c"; a backend from step 4)
//
// New connections to the published port, to the VIP, and from the sandbox
// itself must alternate a, b, a, b (then a, b, c with a third backend); a
// drained backend gets none; without
// a backend a connection is refused even though the sandbox itself
// listens on the port.
//
// The IPVS plane runs the same test where the kernel has IPVS (not on the
// development machines); LB_REQUIRE_IPVS=1 makes its absence a failure.
func TestKernelRoundRobin(t *testing.T) {
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		t.Run(string(mode), func(t *testing.T) {
			if mode == ModeIPVS {
				needIPVS(t)
			}
			roundRobin(t, mode)
		})
	}
	// Every shared chain split: the marks come from ipsets, the iptables
	// plane's service chains from buckets picked by the mark.
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		t.Run(string(mode)+"/buckets", func(t *testing.T) {
			if mode == ModeIPVS {
				needIPVS(t)
			}
			withBucketThreshold(t, 1)
			roundRobin(t, mode)
		})
	}
}

// needIPVS skips (or with LB_REQUIRE_IPVS set, fails) without IPVS.
func needIPVS(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t)
	if !KernelHasIPVS() {
		if os.Getenv("LB_REQUIRE_IPVS") != "" {
			t.Fatal("LB_REQUIRE_IPVS is set but this kernel has no IPVS")
		}
		t.Skip("kernel has no IPVS (CONFIG_IP_VS unset)")
	}
}

func roundRobin(t *testing.T, mode Mode) {
	ns := newNamespaces(t, "client", "sbox", "a", "b", "c")
	ctx := context.Background()
	buildRoundRobinNet(t, ns)

	dp, err := NewDataPlane(mode, ns["sbox"])
	if err != nil {
		t.Fatal(err)
	}
	www := Service{Key: "www/ingress", Name: "www", FWMark: 0x100, VIP: addr("10.255.0.4"),
		Ports: []Port{{"tcp", 8888, 80}}, Backends: backends("10.255.0.5", "10.255.0.6")}
	sb := Sandbox{Kind: SandboxIngress, OwnAddr: addr("10.255.0.2"), Subnet: netip.MustParsePrefix("10.255.0.0/16"),
		Services: []Service{www}}
	mustSync(t, dp, sb)
	for name, task := range map[string]string{"a": "10.255.0.5", "b": "10.255.0.6", "c": "10.255.0.7"} {
		tr := TaskRules{Addr: addr(task), Redirects: []Port{{"tcp", 8888, 80}}}
		if err := NewTaskSyncer(IPTables{NetNS: ns[name]}).Sync(ctx, tr); err != nil {
			t.Fatal(err)
		}
		serveName(t, ns[name], name, 80)
	}
	serveName(t, ns["sbox"], "sandbox", 8888) // must never answer

	published := netip.MustParseAddrPort("203.0.113.1:8888")
	vip := netip.MustParseAddrPort("10.255.0.4:8888")
	expectRotation(t, "published port", ns["client"], published, 10, "a", "b")
	expectRotation(t, "VIP", ns["client"], vip, 4, "a", "b")
	if mode == ModeIPTables { // IPVS, as in Swarm, balances only what arrives
		expectRotation(t, "VIP from the sandbox", ns["sbox"], vip, 2, "a", "b")
	}

	www.Backends = backends("10.255.0.7", "10.255.0.5", "10.255.0.6")
	sb.Services = []Service{www}
	mustSync(t, dp, sb)
	expectRotation(t, "three backends", ns["client"], published, 9, "a", "b", "c")
	if mode == ModeIPVS {
		checkIPVSTable(t, dp, "10.255.0.5", "10.255.0.6", "10.255.0.7")
	}

	www.Backends = []Backend{{addr("10.255.0.5"), 1}, {addr("10.255.0.6"), 0}}
	sb.Services = []Service{www}
	mustSync(t, dp, sb)
	expectAnswers(t, "b draining", ns["client"], published, "a a a")

	www.Backends = nil
	sb.Services = []Service{www}
	mustSync(t, dp, sb)
	if got, err := dial(ns["client"], published); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("no backend: got %q, %v; want connection refused", got, err)
	}
	mustSync(t, dp, Sandbox{Kind: SandboxIngress})
	if table, err := dp.Table(); err != nil || table != ipvsHeader {
		t.Errorf("table after removing everything = %q, %v; want the header only", table, err)
	}
}

// checkIPVSTable compares the kernel's table with what FakeIPVS prints for
// one fwmark service 256 with these destinations.
func checkIPVSTable(t *testing.T, dp DataPlane, dests ...string) {
	t.Helper()
	want := ipvsHeader + "FWM  256 rr\n"
	for _, d := range dests {
		want += fmt.Sprintf("  -> %-28s %-7s %-6d %-10d %-10d\n", d+":0", "Masq", 1, 0, 0)
	}
	got, err := dp.Table()
	if err != nil {
		t.Fatal(err)
	}
	// Connection counters are live in the kernel: compare the rest.
	counters := regexp.MustCompile(`(Masq    \d+\s+)\d+\s+\d+\s*\n`)
	norm := func(s string) string { return counters.ReplaceAllString(s, "${1}C C\n") }
	if norm(got) != norm(want) {
		t.Errorf("ipvsadm table:\n%s\nwant:\n%s", got, want)
	}
}

// expectRotation checks strict round robin over n connections: every run
// of len(backends) consecutive answers holds each backend once, in the
// same order each time. Where the rotation starts is the data plane's
// business: the iptables plane starts with the first backend, IPVS's rr
// with the last one added.
func expectRotation(t *testing.T, what, from string, to netip.AddrPort, n int, backends ...string) {
	t.Helper()
	var got []string
	for range n {
		line, err := dial(from, to)
		if err != nil {
			t.Fatalf("%s: dial %s: %v (after %q)", what, to, err, got)
		}
		got = append(got, line)
	}
	k := len(backends)
	first := slices.Clone(got[:min(k, n)])
	slices.Sort(first)
	ok := slices.Equal(first, backends)
	for i := k; i < n && ok; i++ {
		ok = got[i] == got[i-k]
	}
	if !ok {
		t.Errorf("%s: answers %q, want a strict rotation over %q", what, strings.Join(got, " "), backends)
	}
}

func expectAnswers(t *testing.T, what, from string, to netip.AddrPort, want string) {
	t.Helper()
	var got []string
	for range strings.Fields(want) {
		line, err := dial(from, to)
		if err != nil {
			t.Fatalf("%s: dial %s: %v (after %q)", what, to, err, got)
		}
		got = append(got, line)
	}
	if strings.Join(got, " ") != want {
		t.Errorf("%s: answers %q, want %q", what, strings.Join(got, " "), want)
	}
}

func buildRoundRobinNet(t testing.TB, ns map[string]string) {
	t.Helper()
	addBridge(t, link{ns: ns["sbox"], name: "br0", addr: netip.MustParsePrefix("10.255.0.2/16")})
	configure(t, link{ns: ns["sbox"], name: "lo", addr: netip.MustParsePrefix("10.255.0.4/32")}) // the VIP
	addVeth(t, link{ns: ns["sbox"], name: "vcli", addr: netip.MustParsePrefix("203.0.113.1/24")},
		link{ns: ns["client"], name: "eth0", addr: netip.MustParsePrefix("203.0.113.7/24"), gw: addr("203.0.113.1")})
	for name, a := range map[string]string{"a": "10.255.0.5/16", "b": "10.255.0.6/16", "c": "10.255.0.7/16"} {
		addVeth(t, link{ns: ns["sbox"], name: "veth" + name, master: "br0"},
			link{ns: ns[name], name: "eth0", addr: netip.MustParsePrefix(a), gw: addr("10.255.0.2")})
	}
}
