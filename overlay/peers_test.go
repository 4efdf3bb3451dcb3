package overlay

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/ipam"
)

// newPeeredOverlay returns a fixture with net1 built and peers set.
func newPeeredOverlay(t *testing.T, peers []Peer) fixture {
	t.Helper()
	f := newFakeOverlay(t)
	if err := f.o.EnsureNetwork(net1); err != nil {
		t.Fatal(err)
	}
	if err := f.o.SetPeers(net1.ID, peers); err != nil {
		t.Fatal(err)
	}
	f.k.ResetCalls()
	return f
}

func TestSetPeersDiff(t *testing.T) {
	const ns = "/ns/1-net1aaaaaa vxlan0"
	p3, p4 := peer("10.0.0.3", node2), peer("10.0.0.4", node3)
	moved := p3
	moved.VTEP = node3
	remac := p3
	remac.MAC = mac("02:42:de:ad:be:ef")
	tests := []struct {
		name      string
		before    []Peer
		after     []Peer
		wantCalls []string
	}{
		{
			name:  "add to empty, ARP then FDB then br0's entry, in IP order",
			after: []Peer{p4, p3},
			wantCalls: []string{
				"SetARP " + ns + " 10.0.0.3 02:42:0a:00:00:03",
				"SetFDB " + ns + " 02:42:0a:00:00:03 192.168.0.11",
				"SetBridgeFDB " + ns + " 02:42:0a:00:00:03",
				"SetARP " + ns + " 10.0.0.4 02:42:0a:00:00:04",
				"SetFDB " + ns + " 02:42:0a:00:00:04 192.168.0.12",
				"SetBridgeFDB " + ns + " 02:42:0a:00:00:04",
			},
		},
		{
			name:   "unchanged makes no calls",
			before: []Peer{p3, p4},
			after:  []Peer{p4, p3},
		},
		{
			name:      "VTEP changed replaces the FDB entry only",
			before:    []Peer{p3, p4},
			after:     []Peer{moved, p4},
			wantCalls: []string{"SetFDB " + ns + " 02:42:0a:00:00:03 192.168.0.12"},
		},
		{
			name:   "MAC changed drops the old FDB entry and replaces the neighbour",
			before: []Peer{p3},
			after:  []Peer{remac},
			wantCalls: []string{
				"DelBridgeFDB " + ns + " 02:42:0a:00:00:03",
				"DelFDB " + ns + " 02:42:0a:00:00:03 192.168.0.11",
				"SetARP " + ns + " 10.0.0.3 02:42:de:ad:be:ef",
				"SetFDB " + ns + " 02:42:de:ad:be:ef 192.168.0.11",
				"SetBridgeFDB " + ns + " 02:42:de:ad:be:ef",
			},
		},
		{
			name:   "removed, br0's entry, then FDB, then ARP",
			before: []Peer{p3, p4},
			after:  []Peer{p4},
			wantCalls: []string{
				"DelBridgeFDB " + ns + " 02:42:0a:00:00:03",
				"DelFDB " + ns + " 02:42:0a:00:00:03 192.168.0.11",
				"DelARP " + ns + " 10.0.0.3",
			},
		},
		{
			name:   "all removed",
			before: []Peer{p3, p4},
			after:  nil,
			wantCalls: []string{
				"DelBridgeFDB " + ns + " 02:42:0a:00:00:03",
				"DelBridgeFDB " + ns + " 02:42:0a:00:00:04",
				"DelFDB " + ns + " 02:42:0a:00:00:03 192.168.0.11",
				"DelFDB " + ns + " 02:42:0a:00:00:04 192.168.0.12",
				"DelARP " + ns + " 10.0.0.3",
				"DelARP " + ns + " 10.0.0.4",
			},
		},
		{
			name:   "local endpoints and duplicates are skipped",
			before: []Peer{p3},
			after:  []Peer{p3, p3, peer("10.0.0.2", node1), {IP: ip("10.0.0.4"), VTEP: node3}},
			wantCalls: []string{
				"SetARP " + ns + " 10.0.0.4 02:42:0a:00:00:04",
				"SetFDB " + ns + " 02:42:0a:00:00:04 192.168.0.12",
				"SetBridgeFDB " + ns + " 02:42:0a:00:00:04",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newPeeredOverlay(t, tt.before)
			if err := f.o.SetPeers(net1.ID, tt.after); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantCalls, f.k.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			// Whatever the path, the result is what a fresh SetPeers makes.
			fresh := newPeeredOverlay(t, tt.after)
			if diff := cmp.Diff(fresh.k.Dump(), f.k.Dump()); diff != "" {
				t.Errorf("kernel (-fresh +got):\n%s", diff)
			}
			f.k.ResetCalls()
			if err := f.o.SetPeers(net1.ID, tt.after); err != nil {
				t.Fatal(err)
			}
			f.mustNoCalls(t, "second SetPeers")
		})
	}
}

func TestSetPeersDump(t *testing.T) {
	f := newPeeredOverlay(t, []Peer{peer("10.0.0.3", node2)})
	want := `netns host
netns /ns/1-net1aaaaaa
  br0: mtu 1450 UP bridge inet 10.0.0.1/24
  vxlan0: mtu 1450 master br0 UP vxlan id 4097 local 192.168.0.10 dstport 4789 nolearning proxy
  fdb 02:42:0a:00:00:03 dev vxlan0 master br0 static
  fdb 02:42:0a:00:00:03 dev vxlan0 dst 192.168.0.11 self permanent
  neigh 10.0.0.3 dev vxlan0 lladdr 02:42:0a:00:00:03 PERMANENT
  sysctl net/bridge/bridge-nf-call-arptables=0
  sysctl net/bridge/bridge-nf-call-ip6tables=0
  sysctl net/bridge/bridge-nf-call-iptables=0
netns /sb/task1
netns /sb/task2
`
	if diff := cmp.Diff(want, f.k.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
}

func TestSetPeersRepairsDrift(t *testing.T) {
	const ns, dev = "/ns/1-net1aaaaaa", "vxlan0"
	peers := []Peer{peer("10.0.0.3", node2), peer("10.0.0.4", node3)}
	m3 := ipam.MAC(ip("10.0.0.3"))
	tests := []struct {
		name      string
		breakIt   func(k *FakeKernel) error
		wantCalls []string
	}{
		{
			name:      "neighbour deleted by hand",
			breakIt:   func(k *FakeKernel) error { return k.DelARP(ns, dev, ip("10.0.0.3")) },
			wantCalls: []string{"SetARP /ns/1-net1aaaaaa vxlan0 10.0.0.3 02:42:0a:00:00:03"},
		},
		{
			name:      "FDB entry pointed elsewhere by hand",
			breakIt:   func(k *FakeKernel) error { return k.SetFDB(ns, dev, m3, ip("192.168.0.99")) },
			wantCalls: []string{"SetFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:03 192.168.0.11"},
		},
		{
			name: "foreign entries added by hand",
			breakIt: func(k *FakeKernel) error {
				return errors.Join(k.SetFDB(ns, dev, mac("02:42:0a:00:00:09"), node2),
					k.SetARP(ns, dev, ip("10.0.0.9"), mac("02:42:0a:00:00:09")))
			},
			wantCalls: []string{
				"DelFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:09 192.168.0.11",
				"DelARP /ns/1-net1aaaaaa vxlan0 10.0.0.9",
			},
		},
		{
			name:    "vxlan0 recreated empty",
			breakIt: func(k *FakeKernel) error { return k.RemoveLink(ns, dev) },
			wantCalls: []string{
				"EnsureVXLAN /ns/1-net1aaaaaa vxlan0 4097",
				"SetARP /ns/1-net1aaaaaa vxlan0 10.0.0.3 02:42:0a:00:00:03",
				"SetFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:03 192.168.0.11",
				"SetBridgeFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:03",
				"SetARP /ns/1-net1aaaaaa vxlan0 10.0.0.4 02:42:0a:00:00:04",
				"SetFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:04 192.168.0.12",
				"SetBridgeFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:04",
			},
		},
		{
			name:      "br0's entry removed by hand",
			breakIt:   func(k *FakeKernel) error { return k.DelBridgeFDB(ns, dev, m3) },
			wantCalls: []string{"SetBridgeFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:03"},
		},
		{
			name:      "a foreign br0 entry added by hand",
			breakIt:   func(k *FakeKernel) error { return k.SetBridgeFDB(ns, dev, mac("02:42:0a:00:00:09")) },
			wantCalls: []string{"DelBridgeFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:09"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newPeeredOverlay(t, peers)
			want := f.k.Dump()
			if err := tt.breakIt(f.k); err != nil {
				t.Fatal(err)
			}
			f.k.ResetCalls()
			// What the node agent's reconcile pass does.
			if err := errors.Join(f.o.EnsureNetwork(net1), f.o.SetPeers(net1.ID, peers)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantCalls, f.k.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, f.k.Dump()); diff != "" {
				t.Errorf("after repair (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetPeersRollsBackHalfAddedPeer(t *testing.T) {
	f := newPeeredOverlay(t, nil)
	peers := []Peer{peer("10.0.0.3", node2), peer("10.0.0.4", node3)}
	f.k.FailNext("SetFDB", errors.New("set fdb: no buffer space available"))
	err := f.o.SetPeers(net1.ID, peers)
	if err == nil || !strings.Contains(err.Error(), "no buffer space") {
		t.Fatalf("got %v, want the SetFDB error", err)
	}
	wantCalls := []string{
		"SetARP /ns/1-net1aaaaaa vxlan0 10.0.0.3 02:42:0a:00:00:03",
		// SetFDB of 10.0.0.3 failed here.
		"DelARP /ns/1-net1aaaaaa vxlan0 10.0.0.3",
		"SetARP /ns/1-net1aaaaaa vxlan0 10.0.0.4 02:42:0a:00:00:04",
		"SetFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:04 192.168.0.12",
		"SetBridgeFDB /ns/1-net1aaaaaa vxlan0 02:42:0a:00:00:04",
	}
	if diff := cmp.Diff(wantCalls, f.k.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if d := f.k.Dump(); strings.Contains(d, "10.0.0.3") || strings.Contains(d, "02:42:0a:00:00:03") {
		t.Errorf("half-added peer left behind:\n%s", d)
	}
	if err := f.o.SetPeers(net1.ID, peers); err != nil {
		t.Fatal(err)
	}
	fresh := newPeeredOverlay(t, peers)
	if diff := cmp.Diff(fresh.k.Dump(), f.k.Dump()); diff != "" {
		t.Errorf("retry (-want +got):\n%s", diff)
	}
}

func TestSetPeersReportsInvalid(t *testing.T) {
	f := newPeeredOverlay(t, nil)
	p3 := peer("10.0.0.3", node2)
	clash := peer("10.0.0.3", node3)
	err := f.o.SetPeers(net1.ID, []Peer{p3, clash, {IP: ip("10.0.0.5")}, {IP: ip("fd00::5"), VTEP: node2}})
	for _, want := range []string{"listed twice", "invalid address", "MAC"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error with %q", err, want)
		}
	}
	if !strings.Contains(f.k.Dump(), "neigh 10.0.0.3 dev vxlan0 lladdr 02:42:0a:00:00:03 PERMANENT") {
		t.Errorf("the valid peer was not applied:\n%s", f.k.Dump())
	}
	if err := f.o.SetPeers("nosuchnet", nil); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("unknown network: got %v, want ErrUnknownNetwork", err)
	}
}

// TestDiffPeersExtraRemotes covers what the fake cannot hold: a MAC with
// two remotes ("bridge fdb append" by hand) and non-permanent entries.
func TestDiffPeersExtraRemotes(t *testing.T) {
	p3 := peer("10.0.0.3", node2)
	m3 := p3.MAC
	got := diffPeers([]Peer{p3},
		[]ARPEntry{{IP: p3.IP, MAC: m3, Permanent: false}},
		[]FDBEntry{{MAC: m3, Dst: node3, Permanent: true}, {MAC: m3, Dst: node2, Permanent: true}},
		[]net.HardwareAddr{m3}, nil)
	want := peerPlan{
		delFDB: []FDBEntry{{MAC: m3, Dst: node3, Permanent: true}},
		set:    []peerSet{{Peer: p3, arp: true}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(peerPlan{}, peerSet{}),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

// TestCheckPeers: CheckPeers names what SetPeers would change, changes
// nothing, and finds nothing once SetPeers has run.
func TestCheckPeers(t *testing.T) {
	const ns, dev = "/ns/1-net1aaaaaa", "vxlan0"
	peers := []Peer{peer("10.0.0.3", node2), peer("10.0.0.4", node3)}
	m3 := ipam.MAC(ip("10.0.0.3"))
	tests := []struct {
		name    string
		breakIt func(k *FakeKernel) error
		want    []PeerDiff
	}{
		{name: "in step", breakIt: func(*FakeKernel) error { return nil }},
		{
			name:    "FDB entry deleted by hand",
			breakIt: func(k *FakeKernel) error { return k.DelFDB(ns, dev, m3, node2) },
			want:    []PeerDiff{{Kind: "fdb", State: "missing", Entry: "02:42:0a:00:00:03 dst 192.168.0.11"}},
		},
		{
			name:    "FDB entry pointed elsewhere",
			breakIt: func(k *FakeKernel) error { return k.SetFDB(ns, dev, m3, ip("192.168.0.99")) },
			want: []PeerDiff{{Kind: "fdb", State: "differs", Entry: "02:42:0a:00:00:03 dst 192.168.0.11",
				Have: "02:42:0a:00:00:03 dst 192.168.0.99"}},
		},
		{
			name:    "neighbour deleted",
			breakIt: func(k *FakeKernel) error { return k.DelARP(ns, dev, ip("10.0.0.4")) },
			want:    []PeerDiff{{Kind: "neigh", State: "missing", Entry: "10.0.0.4 lladdr 02:42:0a:00:00:04"}},
		},
		{
			name:    "neighbour with another MAC",
			breakIt: func(k *FakeKernel) error { return k.SetARP(ns, dev, ip("10.0.0.4"), mac("02:42:de:ad:be:ef")) },
			want: []PeerDiff{{Kind: "neigh", State: "differs", Entry: "10.0.0.4 lladdr 02:42:0a:00:00:04",
				Have: "10.0.0.4 lladdr 02:42:de:ad:be:ef"}},
		},
		{
			name:    "vxlan0 deleted",
			breakIt: func(k *FakeKernel) error { return k.RemoveLink(ns, dev) },
			want:    []PeerDiff{{Kind: "link", State: "missing", Entry: "vxlan0"}},
		},
		{
			name:    "br0's entry deleted by hand",
			breakIt: func(k *FakeKernel) error { return k.DelBridgeFDB(ns, dev, m3) },
			want:    []PeerDiff{{Kind: "fdb", State: "missing", Entry: "02:42:0a:00:00:03 master br0 static"}},
		},
		{
			name: "foreign entries",
			breakIt: func(k *FakeKernel) error {
				return errors.Join(k.SetFDB(ns, dev, mac("02:42:0a:00:00:09"), node2),
					k.SetARP(ns, dev, ip("10.0.0.9"), mac("02:42:0a:00:00:09")))
			},
			want: []PeerDiff{
				{Kind: "fdb", State: "extra", Entry: "02:42:0a:00:00:09 dst 192.168.0.11"},
				{Kind: "neigh", State: "extra", Entry: "10.0.0.9 lladdr 02:42:0a:00:00:09"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newPeeredOverlay(t, peers)
			if err := tt.breakIt(f.k); err != nil {
				t.Fatal(err)
			}
			f.k.ResetCalls()
			got, err := f.o.CheckPeers(net1.ID, peers)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CheckPeers (-want +got):\n%s", diff)
			}
			if calls := f.k.Calls(); slices.ContainsFunc(calls, func(c string) bool { return !strings.HasPrefix(c, "List") }) {
				t.Errorf("CheckPeers changed the kernel: %v", calls)
			}
			// What the node agent's reconcile pass does.
			if err := errors.Join(f.o.EnsureNetwork(net1), f.o.SetPeers(net1.ID, peers)); err != nil {
				t.Fatal(err)
			}
			if (len(f.k.Calls()) > 0) != (len(tt.want) > 0) {
				t.Errorf("SetPeers made calls %v, CheckPeers found %d differences", f.k.Calls(), len(tt.want))
			}
			if got, err := f.o.CheckPeers(net1.ID, peers); err != nil || len(got) > 0 {
				t.Errorf("after SetPeers: got %v, %v, want no difference", got, err)
			}
		})
	}
	f := newFakeOverlay(t)
	if _, err := f.o.CheckPeers(net1.ID, peers); err == nil {
		t.Error("CheckPeers on a network never built: no error")
	}
}

// TestLocalEndpointKeepsItsMAC: an address freed by a remote task and
// given to a local one brings its MAC here while the stale peer may still
// be listed. br0 must deliver that MAC to the local veth, not to vxlan0:
// EnsureEndpoint removes br0's entry for it, SetPeers does not put it
// back while the endpoint is local, and does once it has gone.
func TestLocalEndpointKeepsItsMAC(t *testing.T) {
	const ns = "/ns/1-net1aaaaaa vxlan0"
	stale := peer("10.0.0.3", node2)
	f := newPeeredOverlay(t, []Peer{stale})
	if !strings.Contains(f.k.Dump(), "fdb 02:42:0a:00:00:03 dev vxlan0 master br0 static") {
		t.Fatalf("no br0 entry for the remote peer:\n%s", f.k.Dump())
	}
	if err := f.o.EnsureEndpoint(net1.ID, ep("ep3", "10.0.0.3", "/sb/task1", "eth0")); err != nil {
		t.Fatal(err)
	}
	if err := f.o.SetPeers(net1.ID, []Peer{stale}); err != nil {
		t.Fatal(err)
	}
	if d := f.k.Dump(); strings.Contains(d, "02:42:0a:00:00:03 dev vxlan0 master br0") {
		t.Errorf("br0 still sends the local endpoint's MAC to vxlan0:\n%s", d)
	}
	f.k.ResetCalls()
	if err := f.o.EnsureEndpoint(net1.ID, ep("ep3", "10.0.0.3", "/sb/task1", "eth0")); err != nil {
		t.Fatal(err)
	}
	f.mustNoCalls(t, "second EnsureEndpoint")
	if err := f.o.RemoveEndpoint(net1.ID, "ep3"); err != nil {
		t.Fatal(err)
	}
	f.k.ResetCalls()
	if err := f.o.SetPeers(net1.ID, []Peer{stale}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"SetBridgeFDB " + ns + " 02:42:0a:00:00:03"}, f.k.Calls()); diff != "" {
		t.Errorf("calls once the endpoint left (-want +got):\n%s", diff)
	}
}
