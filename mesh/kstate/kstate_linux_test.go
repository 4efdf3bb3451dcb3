//go:build linux

package kstate

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

// TestReadKernel reads two real namespaces joined by a veth, one with a
// VXLAN device, a forwarding entry, a neighbour and a rule, and never
// touches the machine's own namespace.
func TestReadKernel(t *testing.T) {
	dir := testutil.NetNSDir(t)
	for _, tool := range []string{"nsenter", "ip", "bridge", "iptables-save", "iptables"} {
		testutil.RequireTool(t, tool)
	}
	a, b := testutil.NetNS(t, dir, "a"), testutil.NetNS(t, dir, "b")
	in := func(ns string, argv ...string) {
		t.Helper()
		if out, err := exec.Command("nsenter", append([]string{"--net=" + ns, "--"}, argv...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	in(a, "ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "eth0", "netns", b)
	in(a, "ip", "link", "set", "veth-a", "up")
	in(a, "ip", "addr", "add", "10.9.0.1/24", "dev", "veth-a")
	in(b, "ip", "addr", "add", "10.9.0.2/24", "dev", "eth0")
	in(b, "ip", "link", "set", "eth0", "up")
	in(a, "ip", "link", "add", "vxlan0", "type", "vxlan", "id", "42", "local", "10.9.0.1", "dstport", "4789", "nolearning", "proxy")
	in(a, "ip", "link", "add", "br0", "type", "bridge")
	in(a, "ip", "link", "set", "vxlan0", "master", "br0")
	in(a, "ip", "link", "set", "vxlan0", "up")
	in(a, "bridge", "fdb", "add", "02:42:0a:00:00:05", "dev", "vxlan0", "dst", "10.9.0.2", "self", "permanent")
	in(a, "bridge", "fdb", "add", "02:42:0a:00:00:05", "dev", "vxlan0", "master", "static")
	in(a, "ip", "neigh", "add", "10.0.0.5", "lladdr", "02:42:0a:00:00:05", "dev", "vxlan0", "nud", "permanent")
	in(a, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "8888", "-j", "DNAT", "--to-destination", "10.9.0.2:8888")
	// a (named as a sandbox is, lb_a) holds meshd's nftables table, b none. A table without a
	// flowtable, which any kernel with nftables takes.
	_, nftErr := exec.LookPath("nft")
	if nftErr == nil {
		in(a, "nft", "add table inet meshd; add chain inet meshd balanced { type filter hook forward priority filter; }")
	}
	// b listens on 10.9.0.2:8080/tcp and any :5353/udp, this process
	// holding both sockets; a has only its VXLAN device's, which no
	// process holds.
	err := nsfile.Do(b, func() error {
		ln, err := net.Listen("tcp4", "10.9.0.2:8080")
		if err != nil {
			return err
		}
		t.Cleanup(func() { ln.Close() })
		pc, err := net.ListenPacket("udp4", "0.0.0.0:5353")
		if err != nil {
			return err
		}
		t.Cleanup(func() { pc.Close() })
		return nil
	})
	if err != nil {
		t.Fatalf("listen in b: %v", err)
	}

	snap := Read(context.Background(), NewKernel(nil), []Namespace{{Name: "lb_a", Path: a}, {Name: "b", Path: b}})
	sa, sb := snap.Netns("lb_a"), snap.Netns("b")
	if len(sa.Errors)+len(sb.Errors) > 0 {
		t.Fatalf("errors: %v %v", sa.Errors, sb.Errors)
	}
	link := func(ns *api.NetnsState, name string) api.KernelLink {
		for _, l := range ns.Links {
			if l.Name == name {
				return l
			}
		}
		t.Fatalf("no %s in %s: %+v", name, ns.Name, ns.Links)
		return api.KernelLink{}
	}
	va, eth0 := link(sa, "veth-a"), link(sb, "eth0")
	if va.PeerNetns != "b" || va.PeerIndex != eth0.Index || eth0.PeerNetns != "lb_a" || eth0.PeerIndex != va.Index {
		t.Errorf("veth-a = %+v, eth0 = %+v: want each the other's peer", va, eth0)
	}
	// The operational state follows the carrier a moment later (linkwatch).
	if !eth0.Up || eth0.State == "" || len(eth0.Addrs) != 1 || eth0.Addrs[0] != netip.MustParsePrefix("10.9.0.2/24") {
		t.Errorf("eth0 = %+v, want up with 10.9.0.2/24", eth0)
	}
	if vx := link(sa, "vxlan0"); vx.VNI != 42 || vx.Port != 4789 || vx.Local != netip.MustParseAddr("10.9.0.1") {
		t.Errorf("vxlan0 = %+v, want VNI 42 port 4789 local 10.9.0.1", vx)
	}
	wantFDB := []api.KernelFDB{{MAC: "02:42:0a:00:00:05", Dev: "vxlan0", Dst: netip.MustParseAddr("10.9.0.2"), Permanent: true},
		{MAC: "02:42:0a:00:00:05", Dev: "vxlan0", Master: "br0"}} // not the port's own MAC, which br0 holds too
	if diff := cmp.Diff(wantFDB, sa.FDB, netipEqual); diff != "" {
		t.Errorf("fdb (-want +got):\n%s", diff)
	}
	var neigh bool
	for _, n := range sa.Neighbours {
		neigh = neigh || n.IP == netip.MustParseAddr("10.0.0.5") && n.State == "PERMANENT" && n.Dev == "vxlan0"
	}
	if !neigh {
		t.Errorf("neighbours = %+v, want 10.0.0.5 PERMANENT on vxlan0", sa.Neighbours)
	}
	var route bool
	for _, r := range sb.Routes {
		route = route || r.Dst == netip.MustParsePrefix("10.9.0.0/24") && r.Dev == "eth0" && r.Scope == "link"
	}
	if !route {
		t.Errorf("routes of b = %+v, want 10.9.0.0/24 dev eth0 scope link", sb.Routes)
	}
	if nat := sa.IPTables["nat"]; !strings.Contains(nat, "[0:0] -A PREROUTING -p tcp -m tcp --dport 8888 -j DNAT --to-destination 10.9.0.2:8888") {
		t.Errorf("nat of a:\n%s\nwant the DNAT with its counters", nat)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	me := strings.TrimSpace(string(comm))
	if len(sa.Sockets) != 1 || sa.Sockets[0] != (api.KernelSocket{Proto: "udp", Addr: netip.IPv4Unspecified(), Port: 4789, Inode: sa.Sockets[0].Inode}) {
		t.Errorf("sockets of a = %+v, want vxlan0's *:4789/udp alone, no process", sa.Sockets)
	}
	want := map[string]bool{"tcp 10.9.0.2:8080": false, "udp 0.0.0.0:5353": false}
	for _, s := range sb.Sockets {
		k := s.Proto + " " + netip.AddrPortFrom(s.Addr, s.Port).String()
		if _, ok := want[k]; ok {
			want[k] = true
			if s.PID != os.Getpid() || s.Command != me || s.Inode == 0 {
				t.Errorf("%s = %+v, want held by pid %d (%s)", k, s, os.Getpid(), me)
			}
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no %s in b's sockets %+v", k, sb.Sockets)
		}
	}
	if nftErr == nil && (!strings.HasPrefix(sa.NFT, "table inet meshd {\n") || !strings.Contains(sa.NFT, "chain balanced {") || sb.NFT != "") {
		t.Errorf("nft: a %q, b %q; want a's table, none in b", sa.NFT, sb.NFT)
	}
	if lbIPVS := sa.IPVS; lbIPVS != api.IPVSNone && lbIPVS != api.IPVSRead {
		t.Errorf("ipvs = %q", lbIPVS)
	}
}
