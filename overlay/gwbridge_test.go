package overlay

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The gateway bridge of the unit tests: gw0 in the host namespace,
// 172.18.0.0/16 with the gateway .1, as Swarm's docker_gwbridge; task
// sandboxes /sb/task1 and /sb/task2.
var gwSubnet = netip.MustParsePrefix("172.18.0.0/16")

// newFakeGatewayBridge wires a GatewayBridge to a fresh FakeKernel holding
// the sandboxes /sb/task1 and /sb/task2.
func newFakeGatewayBridge(t *testing.T) (*GatewayBridge, *FakeKernel) {
	t.Helper()
	fk := NewFakeKernel()
	for _, sb := range []string{"/sb/task1", "/sb/task2"} {
		if err := fk.EnsureNS(sb); err != nil {
			t.Fatal(err)
		}
	}
	g, err := NewGatewayBridge(GatewayBridgeConfig{Name: "gw0", Subnet: gwSubnet, Gateway: ip("172.18.0.1"), Kernel: fk})
	if err != nil {
		t.Fatal(err)
	}
	return g, fk
}

// attachTwo ensures the bridge and attaches both sandboxes.
func attachTwo(t *testing.T, g *GatewayBridge) {
	t.Helper()
	if err := g.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := g.Attach("/sb/task1", "eth1", "gwveth1", ip("172.18.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := g.Attach("/sb/task2", "eth2", "gwveth2", ip("172.18.0.3")); err != nil {
		t.Fatal(err)
	}
}

const twoAttached = `netns host
  gw0: mtu 1500 UP bridge address 02:42:ac:12:00:01 inet 172.18.0.1/16
  gwveth1: mtu 1500 master gw0 UP veth peer eth1 in /sb/task1
  gwveth2: mtu 1500 master gw0 UP veth peer eth2 in /sb/task2
  sysctl net/ipv4/conf/gw0/route_localnet=1
  sysctl net/ipv4/ip_forward=1
netns /sb/task1
  eth1: mtu 1500 UP veth peer gwveth1 in host address 02:42:ac:12:00:02 inet 172.18.0.2/16
  route default via 172.18.0.1 dev eth1
netns /sb/task2
  eth2: mtu 1500 UP veth peer gwveth2 in host address 02:42:ac:12:00:03 inet 172.18.0.3/16
  route default via 172.18.0.1 dev eth2
`

func TestGatewayBridgeEnsureAttach(t *testing.T) {
	g, fk := newFakeGatewayBridge(t)
	attachTwo(t, g)
	if diff := cmp.Diff(twoAttached, fk.Dump()); diff != "" {
		t.Fatalf("Dump (-want +got):\n%s", diff)
	}
	attachTwo(t, g) // idempotent
	if diff := cmp.Diff(twoAttached, fk.Dump()); diff != "" {
		t.Errorf("Dump after a second round (-want +got):\n%s", diff)
	}
}

// TestGatewayBridgeRepairs breaks one thing by hand after the bridge and
// two sandboxes are set up; Ensure and Attach again must restore it all.
func TestGatewayBridgeRepairs(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(*FakeKernel) error
	}{
		{"bridge down", func(k *FakeKernel) error { return k.LinkSetDown("", "gw0") }},
		{"bridge deleted", func(k *FakeKernel) error { return k.RemoveLink("", "gw0") }},
		{"ip_forward off", func(k *FakeKernel) error { return k.SetSysctl("", "net/ipv4/ip_forward", "0") }},
		{"sandbox end down", func(k *FakeKernel) error { return k.LinkSetDown("/sb/task1", "eth1") }},
		{"sandbox address gone", func(k *FakeKernel) error {
			return k.DelAddr("/sb/task1", "eth1", netip.MustParsePrefix("172.18.0.2/16"))
		}},
		{"veth deleted", func(k *FakeKernel) error { return k.RemoveLink("/sb/task2", "eth2") }},
		{"route elsewhere", func(k *FakeKernel) error { return k.SetDefaultRoute("/sb/task1", "eth1", ip("172.18.0.99")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, fk := newFakeGatewayBridge(t)
			attachTwo(t, g)
			if err := tt.breakIt(fk); err != nil {
				t.Fatal(err)
			}
			attachTwo(t, g)
			if diff := cmp.Diff(twoAttached, fk.Dump()); diff != "" {
				t.Errorf("Dump (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGatewayBridgeDetachSweep(t *testing.T) {
	g, fk := newFakeGatewayBridge(t)
	attachTwo(t, g)
	// Not ours to sweep: a veth outside the bridge, another bridge's port.
	for _, err := range []error{
		fk.EnsureVeth(VethSpec{Name: "other0", MTU: 1500, PeerNS: "/sb/task1", PeerName: "eth9"}),
		fk.EnsureBridge(BridgeSpec{Name: "br9", MTU: 1500}),
		fk.EnsureVeth(VethSpec{Name: "other1", Master: "br9", MTU: 1500, PeerNS: "/sb/task2", PeerName: "eth9"}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Detach("gwveth1"); err != nil {
		t.Fatal(err)
	}
	if err := g.Detach("gwveth1"); err != nil {
		t.Errorf("second Detach = %v, want nil", err)
	}
	dump := fk.Dump()
	if strings.Contains(dump, "gwveth1") || strings.Contains(dump, "eth1") || !strings.Contains(dump, "gwveth2") {
		t.Errorf("after Detach(gwveth1):\n%s\nwant gwveth2 only", dump)
	}
	if err := g.Sweep(); err != nil {
		t.Fatal(err)
	}
	want := `netns host
  br9: mtu 1500 UP bridge
  gw0: mtu 1500 UP bridge address 02:42:ac:12:00:01 inet 172.18.0.1/16
  other0: mtu 1500 UP veth peer eth9 in /sb/task1
  other1: mtu 1500 master br9 UP veth peer eth9 in /sb/task2
  sysctl net/ipv4/conf/gw0/route_localnet=1
  sysctl net/ipv4/ip_forward=1
netns /sb/task1
  eth9: mtu 1500 UP veth peer other0 in host
netns /sb/task2
  eth9: mtu 1500 UP veth peer other1 in host
`
	if diff := cmp.Diff(want, fk.Dump()); diff != "" {
		t.Errorf("Dump after Sweep (-want +got):\n%s", diff)
	}
}

func TestGatewayBridgeAttachFailures(t *testing.T) {
	tests := []struct {
		name     string
		noEnsure bool                // attach to a bridge never made
		setup    func(k *FakeKernel) // optional
		sandbox  string
		addr     string
		wantErr  string
	}{
		{name: "before Ensure", noEnsure: true, sandbox: "/sb/task1", addr: "172.18.0.2",
			wantErr: "master gw0 in host netns: no such bridge"},
		{name: "missing sandbox", sandbox: "/sb/gone", addr: "172.18.0.2",
			wantErr: "netns /sb/gone: no such file or directory"},
		{name: "address outside the subnet", sandbox: "/sb/task1", addr: "10.0.0.2",
			wantErr: "address 10.0.0.2: want one of 172.18.0.0/16 other than 172.18.0.1"},
		{name: "the gateway's address", sandbox: "/sb/task1", addr: "172.18.0.1",
			wantErr: "other than 172.18.0.1"},
		{name: "route refused", sandbox: "/sb/task1", addr: "172.18.0.2",
			setup:   func(k *FakeKernel) { k.FailNext("SetDefaultRoute", errors.New("injected")) },
			wantErr: "attach /sb/task1 to gw0: injected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, fk := newFakeGatewayBridge(t)
			if !tt.noEnsure {
				if err := g.Ensure(); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(fk)
			}
			before := fk.Dump()
			err := g.Attach(tt.sandbox, "eth1", "gwveth1", ip(tt.addr))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(before, fk.Dump()); diff != "" {
				t.Errorf("a failed Attach changed the kernel (-before +after):\n%s", diff)
			}
		})
	}
}

// TestGatewayBridgeLeftover: a bridge end left from an earlier attempt,
// whose sandbox has gone, is made again for the new sandbox.
// TestGatewayBridgeStrayAddrs puts on the bridge what earlier runs that
// picked other subnets left (one per restart) and checks that Ensure
// leaves the gateway's address alone on it, whatever the order.
func TestGatewayBridgeStrayAddrs(t *testing.T) {
	tests := []struct {
		name  string
		stray []string
	}{
		{"none", nil},
		{"next subnets", []string{"172.19.0.1/16", "172.20.0.1/16", "192.168.0.1/20"}},
		{"same subnet, other address", []string{"172.18.0.7/16"}},
		{"our address, other length", []string{"172.18.0.1/24"}},
		{"a host route", []string{"10.0.0.9/32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, fk := newFakeGatewayBridge(t)
			if err := g.Ensure(); err != nil {
				t.Fatal(err)
			}
			for _, a := range tt.stray {
				if err := fk.SetAddr("", "gw0", netip.MustParsePrefix(a)); err != nil {
					t.Fatal(err)
				}
			}
			attachTwo(t, g)
			if diff := cmp.Diff(twoAttached, fk.Dump()); diff != "" {
				t.Errorf("Dump (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGatewayBridgeLeftover(t *testing.T) {
	g, fk := newFakeGatewayBridge(t)
	if err := g.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := g.Attach("/sb/task2", "eth1", "gwveth1", ip("172.18.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := g.Attach("/sb/task1", "eth1", "gwveth1", ip("172.18.0.2")); err != nil {
		t.Fatal(err)
	}
	dump := fk.Dump()
	if !strings.Contains(dump, "gwveth1: mtu 1500 master gw0 UP veth peer eth1 in /sb/task1") ||
		strings.Contains(dump, "peer eth1 in /sb/task2") {
		t.Errorf("after attaching gwveth1 elsewhere:\n%s\nwant it to lead to /sb/task1 only", dump)
	}
}

func TestNewGatewayBridge(t *testing.T) {
	ok := GatewayBridgeConfig{Name: "gw0", Subnet: gwSubnet, Gateway: ip("172.18.0.1")}
	tests := []struct {
		name    string
		change  func(*GatewayBridgeConfig)
		wantErr string
	}{
		{"valid", func(*GatewayBridgeConfig) {}, ""},
		{"no name", func(c *GatewayBridgeConfig) { c.Name = "" }, "Name"},
		{"long name", func(c *GatewayBridgeConfig) { c.Name = "a_very_long_bridge" }, "Name"},
		{"no subnet", func(c *GatewayBridgeConfig) { c.Subnet = netip.Prefix{} }, "Subnet"},
		{"IPv6 subnet", func(c *GatewayBridgeConfig) { c.Subnet = netip.MustParsePrefix("fd00::/64") }, "Subnet"},
		{"gateway outside", func(c *GatewayBridgeConfig) { c.Gateway = ip("10.0.0.1") }, "Gateway"},
		{"tiny MTU", func(c *GatewayBridgeConfig) { c.MTU = 60 }, "MTU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			cfg.Kernel = NewFakeKernel()
			tt.change(&cfg)
			_, err := NewGatewayBridge(cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

// A second bridge network, or an internal one, gives a sandbox an
// interface and no default route.
func TestGatewayBridgeConnectWithoutRoute(t *testing.T) {
	g, fk := newFakeGatewayBridge(t)
	if err := g.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := g.Connect("/sb/task1", "eth1", "gwveth1", ip("172.18.0.2"), false); err != nil {
		t.Fatal(err)
	}
	want := `netns host
  gw0: mtu 1500 UP bridge address 02:42:ac:12:00:01 inet 172.18.0.1/16
  gwveth1: mtu 1500 master gw0 UP veth peer eth1 in /sb/task1
  sysctl net/ipv4/conf/gw0/route_localnet=1
  sysctl net/ipv4/ip_forward=1
netns /sb/task1
  eth1: mtu 1500 UP veth peer gwveth1 in host address 02:42:ac:12:00:02 inet 172.18.0.2/16
netns /sb/task2
`
	if diff := cmp.Diff(want, fk.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
}
