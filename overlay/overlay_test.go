package overlay

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/ipam"
)

// Address plan of the unit tests: underlay 192.168.0.0/24 (this node .10,
// others .11 and .12); overlay network 10.0.0.0/24, gateway .1, VNI 4097;
// namespace files under /ns, task sandboxes under /sb.
var (
	node1 = netip.MustParseAddr("192.168.0.10")
	node2 = netip.MustParseAddr("192.168.0.11")
	node3 = netip.MustParseAddr("192.168.0.12")

	net1 = Network{ID: "net1aaaaaaaaaaaa", VNI: 4097,
		Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}
	net1NS = "/ns/1-net1aaaaaa"
)

const testNSDir = "/ns"

type fixture struct {
	o    *Overlay
	k    *FakeKernel
	logs *bytes.Buffer
}

// newFakeOverlay wires an Overlay for node1 to a fresh FakeKernel holding
// the sandboxes /sb/task1 and /sb/task2.
func newFakeOverlay(t *testing.T) fixture {
	t.Helper()
	fk := NewFakeKernel()
	for _, sb := range []string{"/sb/task1", "/sb/task2"} {
		if err := fk.EnsureNS(sb); err != nil {
			t.Fatal(err)
		}
	}
	fk.ResetCalls()
	logs := &bytes.Buffer{}
	o, err := New(Config{NSDir: testNSDir, UnderlayAddr: node1, Kernel: fk,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{o: o, k: fk, logs: logs}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ep(id, addr, sandbox, ifname string) Endpoint {
	return Endpoint{ID: id, IP: ip(addr), Sandbox: sandbox, IfName: ifname}
}

// peer is a remote endpoint at addr with Swarm's MAC, on node vtep.
func peer(addr string, vtep netip.Addr) Peer {
	return Peer{IP: ip(addr), MAC: ipam.MAC(ip(addr)), VTEP: vtep}
}

// mustNoCalls fails if the fake saw any changing call since the last reset.
func (f fixture) mustNoCalls(t *testing.T, what string) {
	t.Helper()
	if calls := f.k.Calls(); len(calls) != 0 {
		t.Errorf("%s: got calls %q, want none", what, calls)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Config{NSDir: "/ns", UnderlayAddr: node1, Kernel: NewFakeKernel()}
	tests := []struct {
		name string
		edit func(*Config)
		want string // substring of the error; "" = no error
	}{
		{"defaults", func(*Config) {}, ""},
		{"relative NSDir", func(c *Config) { c.NSDir = "netns" }, "NSDir"},
		{"no underlay", func(c *Config) { c.UnderlayAddr = netip.Addr{} }, "UnderlayAddr"},
		{"unspecified underlay", func(c *Config) { c.UnderlayAddr = ip("0.0.0.0") }, "UnderlayAddr"},
		{"tiny MTU", func(c *Config) { c.UnderlayMTU = 100 }, "UnderlayMTU"},
		{"port too low", func(c *Config) { c.VXLANPort = 80 }, "VXLANPort"},
		{"port too high", func(c *Config) { c.VXLANPort = 50000 }, "VXLANPort"},
		{"data path port", func(c *Config) { c.VXLANPort = 7789 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := New(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	f := newFakeOverlay(t)
	if got, want := f.o.NamespacePath("wi6xp5jnpkzp"), "/ns/1-wi6xp5jnpk"; got != want {
		t.Errorf("NamespacePath = %q, want %q", got, want)
	}
	if got, want := f.o.NamespacePath("short"), "/ns/1-short"; got != want {
		t.Errorf("NamespacePath = %q, want %q", got, want)
	}
	for _, id := range []string{"", "a", strings.Repeat("f", 64)} {
		n := vethName(id)
		if len(n) > maxIfName || !strings.HasPrefix(n, "veth") || n != vethName(id) {
			t.Errorf("vethName(%q) = %q, want veth+7 hex, ≤ 15 characters, stable", id, n)
		}
	}
}

func TestEnsureNetworkBuilds(t *testing.T) {
	f := newFakeOverlay(t)
	if err := f.o.EnsureNetwork(net1); err != nil {
		t.Fatal(err)
	}
	want := `netns host
netns /ns/1-net1aaaaaa
  br0: mtu 1450 UP bridge inet 10.0.0.1/24
  vxlan0: mtu 1450 master br0 UP vxlan id 4097 local 192.168.0.10 dstport 4789 nolearning proxy
  sysctl net/bridge/bridge-nf-call-arptables=0
  sysctl net/bridge/bridge-nf-call-ip6tables=0
  sysctl net/bridge/bridge-nf-call-iptables=0
netns /sb/task1
netns /sb/task2
`
	if diff := cmp.Diff(want, f.k.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	wantCalls := append(append([]string{"EnsureNS /ns/1-net1aaaaaa"}, sysctlCalls...),
		"EnsureBridge /ns/1-net1aaaaaa br0",
		"EnsureVXLAN /ns/1-net1aaaaaa vxlan0 4097",
	)
	if diff := cmp.Diff(wantCalls, f.k.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	f.k.ResetCalls()
	if err := f.o.EnsureNetwork(net1); err != nil {
		t.Fatal(err)
	}
	f.mustNoCalls(t, "second EnsureNetwork")
}

func TestEnsureNetworkPortAndMTU(t *testing.T) {
	fk := NewFakeKernel()
	o, err := New(Config{NSDir: testNSDir, UnderlayAddr: node1, UnderlayMTU: 9000, VXLANPort: 7789, Kernel: fk})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.EnsureNetwork(net1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"br0: mtu 8950 UP", "vxlan0: mtu 8950 master br0 UP vxlan id 4097 local 192.168.0.10 dstport 7789"} {
		if !strings.Contains(fk.Dump(), want) {
			t.Errorf("got:\n%s\nwant a line with %q", fk.Dump(), want)
		}
	}
}

func TestEnsureNetworkRejects(t *testing.T) {
	f := newFakeOverlay(t)
	bad := []Network{
		{},
		{ID: "x", VNI: 0, Subnet: net1.Subnet, Gateway: net1.Gateway},
		{ID: "x", VNI: 1 << 24, Subnet: net1.Subnet, Gateway: net1.Gateway},
		{ID: "x", VNI: 5, Gateway: net1.Gateway},
		{ID: "x", VNI: 5, Subnet: net1.Subnet, Gateway: ip("10.1.0.1")},
	}
	for _, n := range bad {
		if err := f.o.EnsureNetwork(n); err == nil {
			t.Errorf("EnsureNetwork(%+v) = nil, want an error", n)
		}
	}
	f.mustNoCalls(t, "invalid networks")
}

// TestEnsureNetworkRepairsDrift breaks a built network by hand and checks
// that the next EnsureNetwork restores exactly what a fresh build has,
// with the fewest calls.
func TestEnsureNetworkRepairsDrift(t *testing.T) {
	vx := VXLANSpec{NS: net1NS, Name: "vxlan0", Port: 4789, Src: node1, MTU: 1450, Master: "br0"}
	tests := []struct {
		name      string
		breakIt   func(k *FakeKernel) error
		wantCalls []string
		wantLog   string
	}{
		{
			name:      "vxlan0 deleted",
			breakIt:   func(k *FakeKernel) error { return k.RemoveLink(net1NS, "vxlan0") },
			wantCalls: []string{"EnsureVXLAN /ns/1-net1aaaaaa vxlan0 4097"},
		},
		{
			name:      "br0 down",
			breakIt:   func(k *FakeKernel) error { return k.LinkSetDown(net1NS, "br0") },
			wantCalls: []string{"EnsureBridge /ns/1-net1aaaaaa br0"},
			wantLog:   "state: down vs up",
		},
		{
			name:      "br0 deleted unenslaves vxlan0",
			breakIt:   func(k *FakeKernel) error { return k.RemoveLink(net1NS, "br0") },
			wantCalls: []string{"EnsureBridge /ns/1-net1aaaaaa br0", "EnsureVXLAN /ns/1-net1aaaaaa vxlan0 4097"},
			wantLog:   `master: \"\" vs \"br0\"`,
		},
		{
			name: "vxlan0 with another VNI",
			breakIt: func(k *FakeKernel) error {
				if err := k.RemoveLink(net1NS, "vxlan0"); err != nil {
					return err
				}
				spec := vx
				spec.VNI = 4096
				return k.EnsureVXLAN(spec)
			},
			wantCalls: []string{"RemoveLink /ns/1-net1aaaaaa vxlan0", "EnsureVXLAN /ns/1-net1aaaaaa vxlan0 4097"},
			wantLog:   "vni: 4096 vs 4097",
		},
		{
			name: "crash between move and rename",
			breakIt: func(k *FakeKernel) error {
				if err := k.RemoveLink(net1NS, "vxlan0"); err != nil {
					return err
				}
				spec := vx
				spec.Name, spec.VNI = "vx-001001-beef", 4097
				return k.EnsureVXLAN(spec)
			},
			wantCalls: []string{"RemoveLink /ns/1-net1aaaaaa vx-001001-beef", "EnsureVXLAN /ns/1-net1aaaaaa vxlan0 4097"},
			wantLog:   "removing stray vxlan device",
		},
		{
			name:    "namespace deleted",
			breakIt: func(k *FakeKernel) error { return k.RemoveNS(net1NS) },
			wantCalls: []string{"EnsureNS /ns/1-net1aaaaaa", sysctlCalls[0], sysctlCalls[1], sysctlCalls[2], "EnsureBridge /ns/1-net1aaaaaa br0",
				"EnsureVXLAN /ns/1-net1aaaaaa vxlan0 4097"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeOverlay(t)
			if err := f.o.EnsureNetwork(net1); err != nil {
				t.Fatal(err)
			}
			want := f.k.Dump()
			if err := tt.breakIt(f.k); err != nil {
				t.Fatal(err)
			}
			f.k.ResetCalls()
			if err := f.o.EnsureNetwork(net1); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantCalls, f.k.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, f.k.Dump()); diff != "" {
				t.Errorf("after repair (-want +got):\n%s", diff)
			}
			if !strings.Contains(f.logs.String(), tt.wantLog) {
				t.Errorf("logs:\n%s\nwant %q", f.logs, tt.wantLog)
			}
		})
	}
}

func TestRemoveNetwork(t *testing.T) {
	f := newFakeOverlay(t)
	if err := f.o.EnsureNetwork(net1); err != nil {
		t.Fatal(err)
	}
	if err := f.o.EnsureEndpoint(net1.ID, ep("ep1", "10.0.0.2", "/sb/task1", "eth0")); err != nil {
		t.Fatal(err)
	}
	f.k.ResetCalls()
	if err := f.o.RemoveNetwork(net1.ID); err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{
		"RemoveLink /ns/1-net1aaaaaa vxlan0", // first, so the VNI is free at once
		"RemoveLink /ns/1-net1aaaaaa br0",
		"RemoveLink /ns/1-net1aaaaaa " + vethName("ep1"),
		"RemoveNS /ns/1-net1aaaaaa",
	}
	if diff := cmp.Diff(wantCalls, f.k.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	want := "netns host\nnetns /sb/task1\nnetns /sb/task2\n"
	if diff := cmp.Diff(want, f.k.Dump()); diff != "" {
		t.Errorf("after RemoveNetwork (-want +got):\n%s", diff)
	}
	f.k.ResetCalls()
	if err := f.o.RemoveNetwork(net1.ID); err != nil {
		t.Errorf("second RemoveNetwork = %v, want nil", err)
	}
	f.mustNoCalls(t, "second RemoveNetwork")
	if err := f.o.SetPeers(net1.ID, nil); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("SetPeers after RemoveNetwork = %v, want ErrUnknownNetwork", err)
	}
	if err := f.o.EnsureNetwork(net1); err != nil {
		t.Errorf("EnsureNetwork after RemoveNetwork = %v, want nil (VNI free again)", err)
	}
}

// sysctlCalls are EnsureNetwork's calls turning the bridge's netfilter
// hooks off in a new overlay namespace.
var sysctlCalls = []string{
	"SetSysctl /ns/1-net1aaaaaa net/bridge/bridge-nf-call-iptables 0",
	"SetSysctl /ns/1-net1aaaaaa net/bridge/bridge-nf-call-ip6tables 0",
	"SetSysctl /ns/1-net1aaaaaa net/bridge/bridge-nf-call-arptables 0",
}
