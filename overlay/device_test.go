package overlay

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEndpointAddRemove(t *testing.T) {
	f := newFakeOverlay(t)
	if err := f.o.EnsureNetwork(net1); err != nil {
		t.Fatal(err)
	}
	f.k.ResetCalls()
	e1 := ep("ep1", "10.0.0.2", "/sb/task1", "eth0")
	if err := f.o.EnsureEndpoint(net1.ID, e1); err != nil {
		t.Fatal(err)
	}
	v := vethName("ep1")
	want := `netns host
netns /ns/1-net1aaaaaa
  br0: mtu 1450 UP bridge inet 10.0.0.1/24
  ` + v + `: mtu 1450 master br0 UP veth peer eth0 in /sb/task1
  vxlan0: mtu 1450 master br0 UP vxlan id 4097 local 192.168.0.10 dstport 4789 nolearning proxy
  sysctl net/bridge/bridge-nf-call-arptables=0
  sysctl net/bridge/bridge-nf-call-ip6tables=0
  sysctl net/bridge/bridge-nf-call-iptables=0
netns /sb/task1
  eth0: mtu 1450 UP veth peer ` + v + ` in /ns/1-net1aaaaaa address 02:42:0a:00:00:02 inet 10.0.0.2/24
netns /sb/task2
`
	if diff := cmp.Diff(want, f.k.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"EnsureVeth /ns/1-net1aaaaaa " + v + " /sb/task1 eth0"}, f.k.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}

	f.k.ResetCalls()
	if err := f.o.EnsureEndpoint(net1.ID, e1); err != nil {
		t.Fatal(err)
	}
	f.mustNoCalls(t, "second EnsureEndpoint")

	if err := f.o.RemoveEndpoint(net1.ID, "ep1"); err != nil {
		t.Fatal(err)
	}
	if d := f.k.Dump(); strings.Contains(d, "veth") || strings.Contains(d, "eth0") {
		t.Errorf("after RemoveEndpoint got:\n%s\nwant no veth and no eth0", d)
	}
	f.k.ResetCalls()
	for _, netID := range []string{net1.ID, "nosuchnetwork"} {
		if err := f.o.RemoveEndpoint(netID, "ep1"); err != nil {
			t.Errorf("RemoveEndpoint(%s) of an absent endpoint = %v, want nil", netID, err)
		}
	}
	f.mustNoCalls(t, "removing absent endpoints")
}

func TestEndpointRepairs(t *testing.T) {
	e1 := ep("ep1", "10.0.0.2", "/sb/task1", "eth0")
	v := vethName("ep1")
	tests := []struct {
		name      string
		breakIt   func(k *FakeKernel) error
		wantCalls []string
		wantLog   string
	}{
		{
			name:      "sandbox end down",
			breakIt:   func(k *FakeKernel) error { return k.LinkSetDown("/sb/task1", "eth0") },
			wantCalls: []string{"EnsureVeth /ns/1-net1aaaaaa " + v + " /sb/task1 eth0"},
			wantLog:   "eth0 state: down vs up",
		},
		{
			name:      "pair deleted",
			breakIt:   func(k *FakeKernel) error { return k.RemoveLink("/sb/task1", "eth0") },
			wantCalls: []string{"EnsureVeth /ns/1-net1aaaaaa " + v + " /sb/task1 eth0"},
		},
		{
			name: "eth0 taken by another device",
			breakIt: func(k *FakeKernel) error {
				if err := k.RemoveLink("/sb/task1", "eth0"); err != nil {
					return err
				}
				return k.EnsureBridge(BridgeSpec{NS: "/sb/task1", Name: "eth0", MTU: 1500})
			},
			wantCalls: []string{"RemoveLink /sb/task1 eth0", "EnsureVeth /ns/1-net1aaaaaa " + v + " /sb/task1 eth0"},
			wantLog:   "eth0: present vs peer of absent " + v,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeOverlay(t)
			if err := f.o.EnsureNetwork(net1); err != nil {
				t.Fatal(err)
			}
			if err := f.o.EnsureEndpoint(net1.ID, e1); err != nil {
				t.Fatal(err)
			}
			want := f.k.Dump()
			if err := tt.breakIt(f.k); err != nil {
				t.Fatal(err)
			}
			f.k.ResetCalls()
			if err := f.o.EnsureEndpoint(net1.ID, e1); err != nil {
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

func TestEndpointRejects(t *testing.T) {
	f := newFakeOverlay(t)
	if err := f.o.EnsureEndpoint(net1.ID, ep("ep1", "10.0.0.2", "/sb/task1", "eth0")); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("before EnsureNetwork: got %v, want ErrUnknownNetwork", err)
	}
	if err := f.o.EnsureNetwork(net1); err != nil {
		t.Fatal(err)
	}
	before := f.k.Dump()
	f.k.ResetCalls()
	bad := []struct {
		name string
		ep   Endpoint
		want string
	}{
		{"outside the subnet", ep("ep1", "10.9.0.2", "/sb/task1", "eth0"), "not in 10.0.0.0/24"},
		{"the gateway", ep("ep1", "10.0.0.1", "/sb/task1", "eth0"), "gateway"},
		{"no sandbox", ep("ep1", "10.0.0.2", "", "eth0"), "Sandbox"},
		{"long ifname", ep("ep1", "10.0.0.2", "/sb/task1", "eth0123456789abcdef"), "IfName"},
		{"missing sandbox", ep("ep1", "10.0.0.2", "/sb/gone", "eth0"), "/sb/gone: no such file"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := f.o.EnsureEndpoint(net1.ID, tt.ep)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
	f.mustNoCalls(t, "rejected endpoints")
	if diff := cmp.Diff(before, f.k.Dump()); diff != "" {
		t.Errorf("rejected endpoints changed the kernel (-before +after):\n%s", diff)
	}
}

func TestSweep(t *testing.T) {
	f := newFakeOverlay(t)
	net2 := Network{ID: "net2bbbbbbbbbbbb", VNI: 4098, Subnet: net1.Subnet, Gateway: net1.Gateway}
	for _, n := range []Network{net1, net2} {
		if err := f.o.EnsureNetwork(n); err != nil {
			t.Fatal(err)
		}
	}
	// What a crashed run leaves: a sandbox and the ingress sandbox in the
	// same directory (not ours), and a vxlan device never moved, holding
	// VNI 4099.
	for _, ns := range []string{"/ns/ingress_sbox", "/ns/f9f4ceb4012b"} {
		if err := f.k.EnsureNS(ns); err != nil {
			t.Fatal(err)
		}
	}
	stray := VXLANSpec{Name: "vx-001003-beef", VNI: 4099, Port: 4789, Src: node1, MTU: 1450}
	if err := f.k.EnsureVXLAN(stray); err != nil {
		t.Fatal(err)
	}
	net3 := Network{ID: "net3cccccccccccc", VNI: 4099, Subnet: net1.Subnet, Gateway: net1.Gateway}
	err := f.o.EnsureNetwork(net3)
	if err == nil || !strings.Contains(err.Error(), "file exists") {
		t.Fatalf("EnsureNetwork with a stray vx device = %v, want \"file exists\"", err)
	}

	f.o = mustNew(t, f.k) // a restarted meshd
	if err := f.o.Sweep([]string{net2.ID}); err != nil {
		t.Fatal(err)
	}
	names, err := f.k.ListNS(testNSDir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1-net2bbbbbb", "f9f4ceb4012b", "ingress_sbox"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("namespaces after Sweep (-want +got):\n%s", diff)
	}
	if strings.Contains(f.k.Dump(), "vx-") {
		t.Errorf("stray vx device left:\n%s", f.k.Dump())
	}
	if err := f.o.EnsureNetwork(net3); err != nil {
		t.Errorf("EnsureNetwork after Sweep = %v, want nil", err)
	}
	f.k.ResetCalls()
	if err := f.o.Sweep([]string{net2.ID, net3.ID}); err != nil {
		t.Fatal(err)
	}
	f.mustNoCalls(t, "second Sweep")
}

func mustNew(t *testing.T, k Kernel) *Overlay {
	t.Helper()
	o, err := New(Config{NSDir: testNSDir, UnderlayAddr: node1, Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestFakeKernelRefuses checks the model refuses what the kernel would,
// and that a refused call changes nothing.
func TestFakeKernelRefuses(t *testing.T) {
	fk := NewFakeKernel()
	o := mustNew(t, fk)
	if err := o.EnsureNetwork(net1); err != nil {
		t.Fatal(err)
	}
	m := mac("02:42:0a:00:00:03")
	vx := VXLANSpec{NS: net1NS, Name: "vxlan1", VNI: 4097, Port: 4789, Src: node1, MTU: 1450}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"fdb on a missing device", func() error { return fk.SetFDB(net1NS, "vxlan9", m, node2) }, "no such device"},
		{"fdb in a missing namespace", func() error { return fk.SetFDB("/ns/1-gone", "vxlan0", m, node2) }, "no such file"},
		{"fdb on a bridge", func() error { return fk.SetFDB(net1NS, "br0", m, node2) }, "not supported"},
		{"neighbour on a missing device", func() error { return fk.SetARP(net1NS, "vxlan9", ip("10.0.0.3"), m) }, "no such device"},
		{"deleting an absent entry", func() error { return fk.DelFDB(net1NS, "vxlan0", m, node2) }, "no such file"},
		{"veth into a missing namespace", func() error {
			return fk.EnsureVeth(VethSpec{NS: net1NS, Name: "veth1", Master: "br0", MTU: 1450, PeerNS: "/sb/gone", PeerName: "eth0"})
		}, "/sb/gone: no such file"},
		{"port of a missing bridge", func() error {
			return fk.EnsureVeth(VethSpec{NS: net1NS, Name: "veth1", Master: "br9", MTU: 1450, PeerNS: net1NS, PeerName: "eth0"})
		}, "no such bridge"},
		{"second vxlan with the same VNI", func() error { return fk.EnsureVXLAN(vx) }, "file exists"},
		{"injected failure", func() error {
			fk.FailNext("SetARP", errors.New("boom"))
			return fk.SetARP(net1NS, "vxlan0", ip("10.0.0.3"), m)
		}, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fk.Dump()
			fk.ResetCalls()
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
			if diff := cmp.Diff(before, fk.Dump()); diff != "" {
				t.Errorf("a refused call changed the model (-before +after):\n%s", diff)
			}
			if calls := fk.Calls(); len(calls) != 0 {
				t.Errorf("got journal %q, want none", calls)
			}
		})
	}
}
