package overlay

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFakeStackRefuses checks that the model refuses what the kernel
// would, and that a refused call changes nothing.
func TestFakeStackRefuses(t *testing.T) {
	p := netip.MustParsePrefix("10.255.0.9/32")
	tests := []struct {
		name    string
		call    func(k *FakeKernel) error
		wantErr string // "" for success without change
	}{
		{"addr on a missing device", func(k *FakeKernel) error { return k.SetAddr("/sb/task1", "eth7", p) }, "no such device"},
		{"addr in a missing namespace", func(k *FakeKernel) error { return k.SetAddr("/sb/gone", "eth1", p) }, "no such file"},
		{"del addr on a missing device", func(k *FakeKernel) error { return k.DelAddr("/sb/task1", "eth7", p) }, "no such device"},
		{"del an absent addr", func(k *FakeKernel) error { return k.DelAddr("/sb/task1", "eth1", p) }, ""},
		{"del the /16 as a /32", func(k *FakeKernel) error {
			return k.DelAddr("/sb/task1", "eth1", netip.MustParsePrefix("172.18.0.2/32"))
		}, ""},
		{"route via an unreachable gateway", func(k *FakeKernel) error {
			return k.SetDefaultRoute("/sb/task1", "eth1", ip("192.168.9.1"))
		}, "nexthop has invalid gateway"},
		{"route via its own address", func(k *FakeKernel) error {
			return k.SetDefaultRoute("/sb/task1", "eth1", ip("172.18.0.2"))
		}, "nexthop has invalid gateway"},
		{"unknown sysctl", func(k *FakeKernel) error { return k.SetSysctl("", "net/ipv4/no_such_knob", "1") }, "no such file"},
		{"sysctl of a missing device", func(k *FakeKernel) error {
			return k.SetSysctl("", "net/ipv4/conf/eth7/route_localnet", "1")
		}, "no such file"},
		{"sysctl in dots", func(k *FakeKernel) error { return k.SetSysctl("", "net.ipv4.ip_forward", "1") }, "want a path"},
		{"sysctl escaping /proc/sys", func(k *FakeKernel) error { return k.SetSysctl("", "../etc/passwd", "1") }, "want a path"},
		{"sysctl not a number", func(k *FakeKernel) error { return k.SetSysctl("", "net/ipv4/ip_forward", "yes") }, "invalid argument"},
		{"sysctl already so", func(k *FakeKernel) error { return k.SetSysctl("", "net/ipv4/ip_forward", "1") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, fk := newFakeGatewayBridge(t)
			attachTwo(t, g)
			fk.ResetCalls()
			before := fk.Dump()
			err := tt.call(fk)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if calls := fk.Calls(); len(calls) != 0 {
				t.Errorf("got calls %q, want none", calls)
			}
			if diff := cmp.Diff(before, fk.Dump()); diff != "" {
				t.Errorf("the kernel changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestFakeRouteNeedsDeviceUp(t *testing.T) {
	k := NewFakeKernel()
	if err := k.EnsureBridge(BridgeSpec{Name: "br1", MTU: 1500, Addr: netip.MustParsePrefix("10.1.0.1/24")}); err != nil {
		t.Fatal(err)
	}
	if err := k.LinkSetDown("", "br1"); err != nil {
		t.Fatal(err)
	}
	err := k.SetDefaultRoute("", "br1", ip("10.1.0.254"))
	if err == nil || !strings.Contains(err.Error(), "network is down") {
		t.Errorf("got error %v, want network is down", err)
	}
}

// TestFakeStackFollowsDevices: routes and per-device sysctls go with
// their device, and a route with the device's last address or its
// carrier, as IPv4 has it.
func TestFakeStackFollowsDevices(t *testing.T) {
	k := NewFakeKernel()
	a := netip.MustParsePrefix("10.1.0.1/24")
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"bridge with address, route, sysctls", func() error {
			return errors.Join(
				k.EnsureBridge(BridgeSpec{Name: "br1", MTU: 1500, Addr: a}),
				k.SetAddr("", "br1", netip.MustParsePrefix("10.2.0.1/32")),
				k.SetDefaultRoute("", "br1", ip("10.1.0.254")),
				k.SetSysctl("", "net/ipv4/conf/br1/route_localnet", "1"),
				k.SetSysctl("", "net/ipv4/ip_forward", "01"))
		}, `netns host
  br1: mtu 1500 UP bridge inet 10.1.0.1/24 inet 10.2.0.1/32
  route default via 10.1.0.254 dev br1
  sysctl net/ipv4/conf/br1/route_localnet=1
  sysctl net/ipv4/ip_forward=1
`},
		{"addresses removed", func() error {
			return errors.Join(k.DelAddr("", "br1", a), k.DelAddr("", "br1", netip.MustParsePrefix("10.2.0.1/32")))
		}, `netns host
  br1: mtu 1500 UP bridge
  sysctl net/ipv4/conf/br1/route_localnet=1
  sysctl net/ipv4/ip_forward=1
`},
		{"device removed", func() error { return k.RemoveLink("", "br1") }, `netns host
  sysctl net/ipv4/ip_forward=1
`},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, k.Dump()); diff != "" {
			t.Errorf("%s: Dump (-want +got):\n%s", st.name, diff)
		}
	}
}
