//go:build linux

package lb

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// TestNftTakesOurScripts hands every script the flowtable code writes to
// the real nft in a namespace with the devices they name. The kernel may
// refuse the flowtable (this one may have none), but nft must parse each
// script, and where the kernel has flowtables, take it: a name nft reads
// as a keyword ("offload") once made every script fail to parse, and the
// probe with them, which then hid the failure as a kernel without
// flowtables. LB_REQUIRE_FLOWTABLES=1 (the test VM's stock kernel) makes
// a kernel that refuses the table a failure.
func TestNftTakesOurScripts(t *testing.T) {
	ns := newNamespaces(t, "sbox", "peer")
	addVeth(t, link{ns: ns["sbox"], name: "eth0", addr: netip.MustParsePrefix("10.255.0.2/16")},
		link{ns: ns["peer"], name: "p0", addr: netip.MustParsePrefix("10.255.0.3/16")})
	addVeth(t, link{ns: ns["sbox"], name: "eth1", addr: netip.MustParsePrefix("172.18.0.2/16")},
		link{ns: ns["peer"], name: "p1", addr: netip.MustParsePrefix("172.18.0.1/16")})
	n := Nft{NetNS: ns["sbox"]}
	ctx := context.Background()
	for name, script := range map[string]string{"table": renderFlowTable([]string{"eth0", "eth1"}), "removal": flowTableRemoval, "probe": flowProbe} {
		err := n.Apply(ctx, script, true)
		if err != nil && (strings.Contains(err.Error(), "syntax error") || !kernelLacks(err.Error())) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Written for real: the table, or nothing at all where the kernel
	// refuses it; then removed.
	f := flowOffload{ft: n}
	if err := f.sync(ctx, true, []string{"eth1", "eth0"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	have, err := n.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.lacking != nil && os.Getenv("LB_REQUIRE_FLOWTABLES") != "" {
		t.Fatalf("LB_REQUIRE_FLOWTABLES is set but the table was not written: %v", f.lacking)
	}
	if f.lacking == nil && !strings.Contains(have, "devices = { eth0, eth1 }") || f.lacking != nil && have != "" {
		t.Errorf("lacking %v, table:\n%s", f.lacking, have)
	}
	// The dry run finds nft's listing in step, both as compared with the
	// listing after the write and, by a plane that did not write it, with
	// the script.
	if f.lacking == nil {
		if got := OffloadDevices(have); !slices.Equal(got, []string{"eth0", "eth1"}) {
			t.Errorf("OffloadDevices of nft's listing: %q, want eth0, eth1; listing:\n%s", got, have)
		}
		for name, g := range map[string]*flowOffload{"writer": &f, "another": {ft: n}} {
			if diffs, err := g.check(ctx, true, []string{"eth0", "eth1"}); len(diffs) != 0 || err != nil {
				t.Errorf("%s's check: %v, %v; listing:\n%s", name, diffs, err, have)
			}
		}
	}
	if err := f.sync(ctx, false, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if have, err := n.List(ctx); have != "" || err != nil {
		t.Errorf("left after removal: %q, %v", have, err)
	}
	t.Logf("kernel: %v", f.state())
}

// BenchmarkFlowtablePacket measures what the iptables plane's flowtable
// saves the packets of an established connection through an ingress
// sandbox: round trips of 64 bytes over one TCP connection from a client
// to a published port (DNAT to the backend, SNAT back), the sandbox
// between two veths as in a node (vcli to the client, eth0 to the
// backend), through a sandbox with its flowtable and one without,
// alternately. rtt-rules-ns and rtt-offload-ns are the round trips' mean
// times, ratio is rules/offload (the round trips per second the flowtable
// gives, as a share of those without). It needs a kernel with flowtables:
// make bench-flow-vm runs it in the test VM's stock kernel.
//
//	go test ./lb -run '^$' -bench FlowtablePacket -benchtime 3x
func BenchmarkFlowtablePacket(b *testing.B) {
	testutil.RequireRoot(b)
	rules, offload := newFlowNet(b, false), newFlowNet(b, true)
	const n = 5000
	var tr, to time.Duration
	for range b.N {
		tr += rules.roundTrips(b, n)
		to += offload.roundTrips(b, n)
	}
	mr := float64(tr.Nanoseconds()) / float64(b.N*n)
	mo := float64(to.Nanoseconds()) / float64(b.N*n)
	b.ReportMetric(mr, "rtt-rules-ns")
	b.ReportMetric(mo, "rtt-offload-ns")
	b.ReportMetric(mr/mo, "ratio")
	b.ReportMetric(0, "ns/op")
}

// newFlowNet is a client, an ingress sandbox balancing one service to one
// backend, with or without its flowtable, and an echo connection open
// through it, the flow offloaded if it has one.
func newFlowNet(b *testing.B, offload bool) *walkNet {
	b.Helper()
	ns := newNamespaces(b, "client", "sbox", "a")
	addVeth(b, link{ns: ns["sbox"], name: "vcli", addr: netip.MustParsePrefix("203.0.113.1/24")},
		link{ns: ns["client"], name: "eth0", addr: netip.MustParsePrefix("203.0.113.7/24"), gw: addr("203.0.113.1")})
	addVeth(b, link{ns: ns["sbox"], name: "eth0", addr: netip.MustParsePrefix("10.255.0.2/16")},
		link{ns: ns["a"], name: "eth0", addr: netip.MustParsePrefix("10.255.0.5/16"), gw: addr("10.255.0.2")})
	ft := Nft{NetNS: ns["sbox"]}
	dp, err := NewDataPlane(ModeIPTables, ns["sbox"], WithFlowTables(ft, offload))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dp.Close() })
	sb := Sandbox{Kind: SandboxIngress, OwnAddr: addr("10.255.0.2"), Subnet: netip.MustParsePrefix("10.255.0.0/16"),
		Ifaces: []string{"vcli", "eth0"}, Services: []Service{{Key: "www/ingress", Name: "www", FWMark: 0x100,
			VIP: addr("10.255.0.4"), Ports: []Port{{"tcp", 8888, 8888}}, Backends: backends("10.255.0.5")}}}
	if err := dp.Sync(context.Background(), sb); err != nil {
		b.Fatal(err)
	}
	if have, err := ft.List(context.Background()); err != nil || strings.Contains(have, "flowtable") != offload {
		b.Fatalf("offload %v: %s; table %q (%v)", offload, dp.(*plane).flow.state(), have, err)
	}
	return dialEcho(b, ns)
}
