//go:build linux

package lb

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/meshd/meshd/mesh/nsfile"
	"github.com/vishvananda/netlink"
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
func TestKernelRoundRobin(t *testing.T) {
	ns := newNamespaces(t, "client", "sbox", "a", "b", "c")
	ctx := context.Background()
	buildRoundRobinNet(t, ns)

	dp, err := NewDataPlane(ModeIPTables, ns["sbox"])
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
	expectAnswers(t, "published port", ns["client"], published, "a b a b a b a b a b")
	expectAnswers(t, "VIP", ns["client"], vip, "a b a b")
	expectAnswers(t, "VIP from the sandbox", ns["sbox"], vip, "a b")

	www.Backends = backends("10.255.0.7", "10.255.0.5", "10.255.0.6")
	sb.Services = []Service{www}
	mustSync(t, dp, sb)
	expectAnswers(t, "three backends", ns["client"], published, "a b c a b c a b c")

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

func buildRoundRobinNet(t *testing.T, ns map[string]string) {
	t.Helper()
	h, err := nsfile.Handle(ns["sbox"])
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}); err != nil {
		t.Fatal(err)
	}
	configure(t, link{ns: ns["sbox"], name: "br0", addr: netip.MustParsePrefix("10.255.0.2/16")})
	configure(t, link{ns: ns["sbox"], name: "lo", addr: netip.MustParsePrefix("10.255.0.4/32")}) // the VIP
	addVeth(t, link{ns: ns["sbox"], name: "vcli", addr: netip.MustParsePrefix("203.0.113.1/24")},
		link{ns: ns["client"], name: "eth0", addr: netip.MustParsePrefix("203.0.113.7/24"), gw: addr("203.0.113.1")})
	for name, a := range map[string]string{"a": "10.255.0.5/16", "b": "10.255.0.6/16", "c": "10.255.0.7/16"} {
		addVeth(t, link{ns: ns["sbox"], name: "veth" + name, master: "br0"},
			link{ns: ns[name], name: "eth0", addr: netip.MustParsePrefix(a), gw: addr("10.255.0.2")})
	}
}
