package overlay

import (
	"net/netip"
	"strings"
	"testing"
)

// TestKernelGatewayBridge builds the gateway bridge in a namespace of its
// own with the real kernel, attaches a sandbox, breaks things by hand and
// checks that Ensure repairs them; it also puts a VIP on the sandbox's
// interface and takes it off again.
func TestKernelGatewayBridge(t *testing.T) {
	l := newTestLab(t)
	host, sb := l.netns(t, "host"), l.netns(t, "sb")
	g, err := NewGatewayBridge(GatewayBridgeConfig{Name: "mesh_gwbridge", NS: host,
		Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: ip("172.18.0.1"), MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second round must change nothing and not fail
		if err := g.Ensure(); err != nil {
			t.Fatal(err)
		}
		if err := g.Attach(sb, "eth1", "gwveth0", ip("172.18.0.2")); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		mustHaveLine(t, when+": bridge", run(t, host, "ip", "-o", "addr", "show", "mesh_gwbridge"), "inet 172.18.0.1/16")
		mustHaveLine(t, when+": bridge", run(t, host, "ip", "-o", "link", "show", "mesh_gwbridge"), ",UP", "mtu 1400",
			"link/ether 02:42:ac:12:00:01 ")
		mustHaveLine(t, when+": host end", run(t, host, "ip", "-o", "link", "show", "gwveth0"), ",UP", "mtu 1400", "master mesh_gwbridge")
		mustHaveLine(t, when+": sandbox end", run(t, sb, "ip", "-o", "link", "show", "eth1"), ",UP", "mtu 1400")
		mustHaveLine(t, when+": sandbox end", run(t, sb, "ip", "-o", "addr", "show", "eth1"), "inet 172.18.0.2/16")
		mustHaveLine(t, when+": sandbox routes", run(t, sb, "ip", "route"), "default via 172.18.0.1 dev eth1")
		for _, f := range []string{"ip_forward", "conf/mesh_gwbridge/route_localnet"} {
			if got := strings.TrimSpace(run(t, host, "cat", "/proc/sys/net/ipv4/"+f)); got != "1" {
				t.Errorf("%s: %s = %q, want 1", when, f, got)
			}
		}
		run(t, sb, "ping", "-c1", "-W2", "172.18.0.1")
	}
	check("after Ensure and Attach")

	// A port with a lower address than the bridge's does not give the
	// bridge its address, as it would a bridge whose address the kernel
	// picked: check() wants it unchanged.
	run(t, host, "ip", "link", "set", "gwveth0", "address", "02:00:00:00:00:01")
	check("with a port of a lower address")

	run(t, host, "ip", "link", "set", "mesh_gwbridge", "down")
	run(t, host, "sh", "-c", "echo 0 >/proc/sys/net/ipv4/conf/mesh_gwbridge/route_localnet")
	run(t, sb, "ip", "route", "del", "default")
	if err := g.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := g.Attach(sb, "eth1", "gwveth0", ip("172.18.0.2")); err != nil {
		t.Fatal(err)
	}
	check("after repair")

	vip := netip.MustParsePrefix("10.255.0.9/32")
	for range 2 {
		if err := g.k.SetAddr(sb, "eth1", vip); err != nil {
			t.Fatal(err)
		}
	}
	mustHaveLine(t, "VIP set", run(t, sb, "ip", "-o", "addr", "show", "eth1"), "inet 10.255.0.9/32")
	for range 2 {
		if err := g.k.DelAddr(sb, "eth1", vip); err != nil {
			t.Fatal(err)
		}
	}
	mustNotContain(t, "VIP removed", run(t, sb, "ip", "-o", "addr", "show", "eth1"), "10.255.0.9")
	if err := g.k.SetAddr(sb, "eth7", vip); !isNotFound(err) {
		t.Errorf("SetAddr on a missing device = %v, want a not-found error", err)
	}

	for range 2 {
		if err := g.Detach("gwveth0"); err != nil {
			t.Fatal(err)
		}
	}
	mustNotContain(t, "after Detach", run(t, sb, "ip", "-o", "link"), "eth1")
	if err := g.Attach(sb, "eth1", "gwveth0", ip("172.18.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := g.Sweep(); err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, "after Sweep", run(t, host, "ip", "-o", "link"), "gwveth0")
	mustHaveLine(t, "after Sweep", run(t, host, "ip", "-o", "link"), "mesh_gwbridge")
}

// TestKernelGatewayBridgeStrayAddrs leaves on a bridge of the right name
// what earlier runs that picked other subnets would have left, with the
// gateway's own address a secondary of another address of its subnet
// (deleting that primary takes the secondary with it), and checks that
// Ensure leaves exactly the gateway's address.
func TestKernelGatewayBridgeStrayAddrs(t *testing.T) {
	l := newTestLab(t)
	host := l.netns(t, "host")
	run(t, host, "ip", "link", "add", "mesh_gwbridge", "type", "bridge")
	for _, a := range []string{"172.18.0.7/16", "172.19.0.1/16", "192.168.0.1/20", "172.18.0.1/16"} {
		run(t, host, "ip", "addr", "add", a, "dev", "mesh_gwbridge")
	}
	g, err := NewGatewayBridge(GatewayBridgeConfig{Name: "mesh_gwbridge", NS: host,
		Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: ip("172.18.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second round must change nothing and not fail
		if err := g.Ensure(); err != nil {
			t.Fatal(err)
		}
		out := run(t, host, "ip", "-o", "-4", "addr", "show", "mesh_gwbridge")
		if n := strings.Count(out, " inet "); n != 1 || !strings.Contains(out, "inet 172.18.0.1/16") {
			t.Errorf("after Ensure, mesh_gwbridge holds:\n%s\nwant 172.18.0.1/16 alone", out)
		}
	}
}
