package trace

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

// The address plan is the tutorial's: nodes at 192.168.33.10-12, the
// client at .1, the ingress network 10.255.0.0/16 on VNI 4096. node3 is
// the entry node (ingress_sbox at 10.255.0.4, 172.18.0.2 on
// mesh_gwbridge); node2 runs www.2 at 10.255.0.7, whose sandbox
// redirects 8888 to 80. www.1 at 10.255.0.6 is on node1, whose snapshot
// the tests leave out unless they need it.

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func link(index int, name, kind, master string, addrs ...string) api.KernelLink {
	l := api.KernelLink{Index: index, Name: name, Kind: kind, Master: master, State: "UP", Up: true, Addrs: []netip.Prefix{}}
	for _, a := range addrs {
		l.Addrs = append(l.Addrs, pfx(a))
	}
	return l
}

func veth(index int, name, master string, peerNS string, peerIndex int, addrs ...string) api.KernelLink {
	l := link(index, name, "veth", master, addrs...)
	l.PeerNetns, l.PeerIndex = peerNS, peerIndex
	return l
}

func vxlan(index int, local string) api.KernelLink {
	l := link(index, "vxlan0", "vxlan", "br0")
	l.VNI, l.Port, l.Local = 4096, 4789, ip(local)
	return l
}

func route(dst, dev, src string) api.KernelRoute {
	r := api.KernelRoute{Dst: pfx(dst), Dev: dev, Scope: "link"}
	if src != "" {
		r.Src = ip(src)
	}
	return r
}

const hostNat = `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:MESH-INGRESS - [0:0]
[3:180] -A PREROUTING -m addrtype --dst-type LOCAL -j MESH-INGRESS
[3:180] -A MESH-INGRESS -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.18.0.2:8888
COMMIT
`

const sboxMangle = `*mangle
:PREROUTING ACCEPT [0:0]
:MESH-PREROUTING - [0:0]
[20:1200] -A PREROUTING -j MESH-PREROUTING
[20:1200] -A MESH-PREROUTING -p tcp -m tcp --dport 8888 -m comment --comment www -j MARK --set-xmark 0x100/0xffffffff
COMMIT
`

// sboxMangleSets is sboxMangle in a sandbox past 64 entries: the port's
// mark comes from an ipset (lb/sets.go), read with the tables.
const sboxMangleSets = `*mangle
:PREROUTING ACCEPT [0:0]
:MESH-PREROUTING - [0:0]
[20:1200] -A PREROUTING -j MESH-PREROUTING
[20:1200] -A MESH-PREROUTING -p tcp -j SET --map-set MESH-PREROUTING-TCP dst --map-mark
COMMIT
`

const sboxSets = `*ipset
:MESH-PREROUTING-TCP - [0:0]
-A MESH-PREROUTING-TCP 9000 comment "other" skbmark 0x101
-A MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x100
COMMIT
`

// sboxNat is the rotation with the counters given: which turn the next
// connection takes follows from them.
func sboxNat(first, second string) string {
	return `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:MESH-SERVICES - [0:0]
:MESH-SNAT - [0:0]
:MESH-SVC-3ZWH5QO3 - [0:0]
[3:180] -A PREROUTING -j MESH-SERVICES
[3:180] -A POSTROUTING -j MESH-SNAT
[3:180] -A MESH-SERVICES -m mark --mark 0x100 -m comment --comment www -j MESH-SVC-3ZWH5QO3
[3:180] -A MESH-SNAT -d 10.255.0.0/16 -m conntrack --ctstate DNAT -j SNAT --to-source 10.255.0.4
[` + first + `] -A MESH-SVC-3ZWH5QO3 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.255.0.6
[` + second + `] -A MESH-SVC-3ZWH5QO3 -j DNAT --to-destination 10.255.0.7
COMMIT
`
}

const taskNat = `*nat
:PREROUTING ACCEPT [0:0]
:MESH-REDIRECT - [0:0]
[1:60] -A PREROUTING -j MESH-REDIRECT
[1:60] -A MESH-REDIRECT -d 10.255.0.7/32 -p tcp -m tcp --dport 8888 -j REDIRECT --to-ports 80
COMMIT
`

// overlayNS is a node's 1-ingress namespace: br0, vxlan0 and the veth
// ports given, with permanent neighbours and FDB entries for the remote
// endpoints.
func overlayNS(local string, ports []api.KernelLink, remote map[string]string) api.NetnsState {
	ns := api.NetnsState{Name: "1-cg9cj6u9yy", Path: "/run/meshd/netns/1-cg9cj6u9yy", Kind: "overlay", Owner: "ingress", IPVS: api.IPVSNone,
		Links:  append([]api.KernelLink{link(2, "br0", "bridge", "", "10.255.0.1/16"), vxlan(5, local)}, ports...),
		Routes: []api.KernelRoute{route("10.255.0.0/16", "br0", "10.255.0.1")}}
	for _, a := range slices.Sorted(func(yield func(string) bool) {
		for a := range remote {
			if !yield(a) {
				return
			}
		}
	}) {
		mac := "02:42:0a:ff:00:0" + a[len(a)-1:]
		ns.Neighbours = append(ns.Neighbours, api.KernelNeigh{IP: ip(a), MAC: mac, Dev: "vxlan0", State: "PERMANENT"})
		ns.FDB = append(ns.FDB, api.KernelFDB{MAC: mac, Dev: "vxlan0", Dst: ip(remote[a]), Permanent: true},
			api.KernelFDB{MAC: mac, Dev: "vxlan0", Master: "br0"})
	}
	return ns
}

func sock(proto, addr string, port uint16, pid int, cmd string) api.KernelSocket {
	return api.KernelSocket{Proto: proto, Addr: ip(addr), Port: port, Inode: uint32(1000 + port), PID: pid, Command: cmd}
}

func node3(first, second string) api.KernelSnapshot {
	return api.KernelSnapshot{NodeID: "n3", NodeName: "node3", NodeAddr: "192.168.33.12", DataPlane: "iptables", Dir: "/run/meshd/netns",
		Namespaces: []api.NetnsState{
			{Name: "host", Kind: "host", IPVS: api.IPVSNone, IPTables: map[string]string{"nat": hostNat},
				Links: []api.KernelLink{link(1, "lo", "device", "", "127.0.0.1/8"), link(2, "eth0", "veth", "", "192.168.33.12/24"),
					link(4, "mesh_gwbridge", "bridge", "", "172.18.0.1/16"), veth(6, "gwingress", "mesh_gwbridge", "ingress_sbox", 3)},
				Routes:  []api.KernelRoute{route("172.18.0.0/16", "mesh_gwbridge", "172.18.0.1"), route("192.168.33.0/24", "eth0", "192.168.33.12")},
				Sockets: []api.KernelSocket{sock("tcp", "0.0.0.0", 22, 612, "sshd"), sock("udp", "0.0.0.0", 4789, 0, "")}},
			overlayNS("192.168.33.12", []api.KernelLink{veth(3, "veth7e2c411", "br0", "ingress_sbox", 2)},
				map[string]string{"10.255.0.6": "192.168.33.10", "10.255.0.7": "192.168.33.11"}),
			{Name: "ingress_sbox", Path: "/run/meshd/netns/ingress_sbox", Kind: "ingress", Owner: "ingress", IPVS: api.IPVSNone,
				IPTables: map[string]string{"mangle": sboxMangle, "nat": sboxNat(first, second)},
				Links: []api.KernelLink{veth(2, "eth0", "", "1-cg9cj6u9yy", 3, "10.255.0.4/16"),
					veth(3, "eth1", "", "host", 6, "172.18.0.2/16")},
				Routes: []api.KernelRoute{{Dst: pfx("0.0.0.0/0"), Gateway: ip("172.18.0.1"), Dev: "eth1", Scope: "universe"},
					route("10.255.0.0/16", "eth0", "10.255.0.4"), route("172.18.0.0/16", "eth1", "172.18.0.2")},
				Sockets: []api.KernelSocket{}},
		}}
}

func node2() api.KernelSnapshot {
	return api.KernelSnapshot{NodeID: "n2", NodeName: "node2", NodeAddr: "192.168.33.11", DataPlane: "iptables", Dir: "/run/meshd/netns",
		Namespaces: []api.NetnsState{
			{Name: "host", Kind: "host", IPVS: api.IPVSNone, Links: []api.KernelLink{link(2, "eth0", "veth", "", "192.168.33.11/24")},
				Routes: []api.KernelRoute{route("192.168.33.0/24", "eth0", "192.168.33.11")}},
			overlayNS("192.168.33.11", []api.KernelLink{veth(7, "veth3153f9d", "br0", "49b862773ddd", 2)},
				map[string]string{"10.255.0.6": "192.168.33.10", "10.255.0.4": "192.168.33.12"}),
			{Name: "49b862773ddd", Path: "/run/meshd/netns/49b862773ddd", Kind: "task", Owner: "www.2", IPVS: api.IPVSNone,
				IPTables: map[string]string{"nat": taskNat},
				Links:    []api.KernelLink{veth(2, "eth0", "", "1-cg9cj6u9yy", 7, "10.255.0.7/16")},
				Routes:   []api.KernelRoute{route("10.255.0.0/16", "eth0", "10.255.0.7")},
				Sockets:  []api.KernelSocket{sock("tcp", "::", 80, 4242, "whoami"), sock("udp", "127.0.0.11", 41234, 3105, "meshd")}},
		}}
}

// hopLine is a hop as the tests compare it.
func hopLine(h api.TraceHop) string {
	s := h.Node + " " + h.Netns + " " + h.Kind
	if h.Kind == api.HopRule {
		return s + " " + h.Table + " " + h.Rule
	}
	return s + " " + h.Detail
}

func TestRun(t *testing.T) {
	fdbDeleted := node3("1:60", "0:0")
	ovl := fdbDeleted.Netns("1-cg9cj6u9yy")
	ovl.FDB = slices.DeleteFunc(ovl.FDB, func(e api.KernelFDB) bool { return e.MAC == "02:42:0a:ff:00:07" && e.Master == "" })
	brDeleted := node3("1:60", "0:0")
	brOvl := brDeleted.Netns("1-cg9cj6u9yy")
	brOvl.FDB = slices.DeleteFunc(brOvl.FDB, func(e api.KernelFDB) bool { return e.MAC == "02:42:0a:ff:00:07" && e.Master != "" })
	noRoute := node3("1:60", "0:0")
	noRoute.Netns("ingress_sbox").Routes = noRoute.Netns("ingress_sbox").Routes[:1]
	noRoute.Netns("ingress_sbox").Routes[0].Dev = "eth9"
	notRead := node3("1:60", "0:0")
	notRead.Netns("host").Sockets = nil
	sets := node3("1:60", "0:0")
	sets.Netns("ingress_sbox").IPTables["mangle"] = sboxMangleSets
	sets.Netns("ingress_sbox").IPTables["ipset"] = sboxSets
	tests := []struct {
		name    string
		snaps   []api.KernelSnapshot
		from    string
		to      string
		want    []string // hop lines, in order (substrings: each must start one hop, after the last)
		backend string
		stopped string // substring; "" for reached
	}{
		{name: "second turn: to www.2 on node2", snaps: []api.KernelSnapshot{node3("1:60", "0:0"), node2()}, to: "192.168.33.12:8888",
			want: []string{
				"node3 host in in eth0",
				"node3 host rule nat -A MESH-INGRESS -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.18.0.2:8888",
				"node3 host link mesh_gwbridge → gwingress@if3 → ingress_sbox eth1",
				"node3 ingress_sbox in in eth1",
				"node3 ingress_sbox rule mangle -A MESH-PREROUTING -p tcp -m tcp --dport 8888 -m comment --comment www -j MARK --set-xmark 0x100/0xffffffff",
				"node3 ingress_sbox rule nat -A MESH-SVC-3ZWH5QO3 -j DNAT --to-destination 10.255.0.7",
				"node3 ingress_sbox rule nat -A MESH-SNAT -d 10.255.0.0/16 -m conntrack --ctstate DNAT -j SNAT --to-source 10.255.0.4",
				"node3 ingress_sbox link eth0@if3 → 1-cg9cj6u9yy veth7e2c411@if2 → br0",
				"node3 1-cg9cj6u9yy vxlan vxlan0 VNI 4096: 10.255.0.7 lladdr 02:42:0a:ff:00:07 → VTEP 192.168.33.11 (node2) udp/4789 from 192.168.33.12; vxlan0: 02:42:0a:ff:00:07 master br0 static",
				"node2 1-cg9cj6u9yy link vxlan0 VNI 4096 → br0",
				"node2 1-cg9cj6u9yy link br0 → veth3153f9d@if2 → 49b862773ddd eth0",
				"node2 49b862773ddd in in eth0",
				"node2 49b862773ddd rule nat -A MESH-REDIRECT -d 10.255.0.7/32 -p tcp -m tcp --dport 8888 -j REDIRECT --to-ports 80",
				"node2 49b862773ddd deliver delivered to 10.255.0.7:80/tcp in 49b862773ddd: whoami (pid 4242) listening on *:80",
			}, backend: "10.255.0.7:80"},
		{name: "the mark from an ipset", snaps: []api.KernelSnapshot{sets, node2()}, to: "192.168.33.12:8888",
			want: []string{
				"node3 ingress_sbox rule mangle -A MESH-PREROUTING -p tcp -j SET --map-set MESH-PREROUTING-TCP dst --map-mark",
				`node3 ingress_sbox ipset MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x100`,
				"node3 ingress_sbox rule nat -A MESH-SVC-3ZWH5QO3 -j DNAT --to-destination 10.255.0.7",
			}, backend: "10.255.0.7:80"},
		{name: "first turn: to www.1 on node1, not traced", snaps: []api.KernelSnapshot{node3("1:60", "1:60"), node2()}, to: "192.168.33.12:8888",
			want:    []string{"node3 ingress_sbox rule nat -A MESH-SVC-3ZWH5QO3 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.255.0.6"},
			stopped: "10.255.0.6 (02:42:0a:ff:00:06) is behind VTEP 192.168.33.10, no node traced"},
		{name: "FDB entry deleted: stops at vxlan0", snaps: []api.KernelSnapshot{fdbDeleted, node2()}, to: "192.168.33.12:8888",
			want: []string{"node3 ingress_sbox link eth0@if3 → 1-cg9cj6u9yy veth7e2c411@if2 → br0",
				"node3 1-cg9cj6u9yy vxlan vxlan0 VNI 4096: 10.255.0.7 lladdr 02:42:0a:ff:00:07, no FDB entry",
				"node3 1-cg9cj6u9yy stop node3 1-cg9cj6u9yy: no FDB entry for 02:42:0a:ff:00:07 (10.255.0.7) on vxlan0 (VNI 4096)"},
			stopped: "no FDB entry for 02:42:0a:ff:00:07"},
		{name: "br0's entry deleted: flooded, still delivered", snaps: []api.KernelSnapshot{brDeleted, node2()}, to: "192.168.33.12:8888",
			want: []string{"node3 1-cg9cj6u9yy vxlan vxlan0 VNI 4096: 10.255.0.7 lladdr 02:42:0a:ff:00:07 → VTEP 192.168.33.11 (node2) udp/4789 from 192.168.33.12; br0 has no entry for 02:42:0a:ff:00:07: flooded to every port",
				"node2 49b862773ddd deliver delivered to 10.255.0.7:80/tcp"}, backend: "10.255.0.7:80"},
		{name: "no route out of the sandbox", snaps: []api.KernelSnapshot{noRoute, node2()}, to: "192.168.33.12:8888",
			want:    []string{"node3 ingress_sbox rule nat -A MESH-SNAT"},
			stopped: "route to 10.255.0.7 in node3 ingress_sbox by eth9, which is not there"},
		{name: "unpublished port stays on the node", snaps: []api.KernelSnapshot{node3("1:60", "0:0")}, to: "192.168.33.12:22",
			want: []string{"node3 host in in eth0", "node3 host deliver delivered to 192.168.33.12:22/tcp in host: sshd (pid 612) listening on *:22"}, backend: "192.168.33.12:22"},
		{name: "a node's kernel socket", snaps: []api.KernelSnapshot{node3("1:60", "0:0")}, to: "192.168.33.12:4789/udp",
			want: []string{"node3 host deliver delivered to 192.168.33.12:4789/udp in host: a socket of no process found (inode 5789) bound to *:4789"}, backend: "192.168.33.12:4789"},
		{name: "sockets not read", snaps: []api.KernelSnapshot{notRead}, to: "192.168.33.12:22",
			want: []string{"node3 host deliver delivered to 192.168.33.12:22/tcp in host (its sockets were not read)"}, backend: "192.168.33.12:22"},
		{name: "nothing listens on the node", snaps: []api.KernelSnapshot{node3("1:60", "0:0")}, to: "192.168.33.12:23",
			want:    []string{"node3 host in in eth0", "node3 host stop nothing listens on 192.168.33.12:23/tcp: the connection is refused (RST)"},
			stopped: "node3 host: nothing listens on 192.168.33.12:23/tcp"},
		{name: "the bound address, not another", snaps: []api.KernelSnapshot{node3("1:60", "0:0"), node2()}, from: "www.2", to: "10.255.0.7:41234/udp",
			want:    []string{"node2 49b862773ddd stop no socket is bound to 10.255.0.7:41234/udp: the datagram is refused (ICMP port unreachable)"},
			stopped: "node2 49b862773ddd: no socket is bound to 10.255.0.7:41234/udp"},
		{name: "from a task to another's address", snaps: []api.KernelSnapshot{node3("1:60", "0:0"), node2()}, from: "www.2", to: "10.255.0.4:9999",
			want: []string{"node2 1-cg9cj6u9yy vxlan vxlan0 VNI 4096: 10.255.0.4 lladdr 02:42:0a:ff:00:04 → VTEP 192.168.33.12 (node3)",
				"node3 1-cg9cj6u9yy link vxlan0 VNI 4096 → br0", "node3 1-cg9cj6u9yy link br0 → veth7e2c411@if2 → ingress_sbox eth0",
				"node3 ingress_sbox stop nothing listens on 10.255.0.4:9999/tcp: the connection is refused (RST)"},
			stopped: "node3 ingress_sbox: nothing listens on 10.255.0.4:9999/tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := tt.from
			if from == "" {
				from = "client"
			}
			got, err := Run(tt.snaps, api.TraceRequest{From: from, Src: "192.168.33.1", To: tt.to})
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, h := range got.Hops {
				lines = append(lines, hopLine(h))
			}
			all := strings.Join(lines, "\n")
			at := 0
			for _, w := range tt.want {
				i := slices.IndexFunc(lines[at:], func(l string) bool { return strings.HasPrefix(l, w) })
				if i < 0 {
					t.Fatalf("no hop %q after hop %d; hops:\n%s", w, at, all)
				}
				at += i + 1
			}
			if tt.stopped == "" && (!got.Reached || got.Backend != tt.backend) {
				t.Errorf("reached %v %q (stopped %q), want %s; hops:\n%s", got.Reached, got.Backend, got.Stopped, tt.backend, all)
			}
			if tt.stopped != "" && (got.Reached || !strings.Contains(got.Stopped, tt.stopped)) {
				t.Errorf("stopped %q, want it to say %q; hops:\n%s", got.Stopped, tt.stopped, all)
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	snaps := []api.KernelSnapshot{node3("0:0", "0:0")}
	for _, tt := range []struct{ from, src, to, want string }{
		{"client", "192.168.33.1", "192.168.33.12", "want IPv4ADDRESS:PORT[/udp]"},
		{"client", "192.168.33.1", "192.168.33.12:80/sctp", `protocol "sctp"`},
		{"client", "", "192.168.33.12:80", "its address"},
		{"client", "192.168.33.1", "192.168.33.99:80", "no node traced has 192.168.33.99"},
		{"web.9", "", "10.0.0.2:80", "no such node or task"},
	} {
		if _, err := Run(snaps, api.TraceRequest{From: tt.from, Src: tt.src, To: tt.to}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s: err = %v, want %q", tt.from, tt.to, err, tt.want)
		}
	}
	if _, err := Run(nil, api.TraceRequest{To: "1.2.3.4:5"}); err != ErrNoSnapshots {
		t.Errorf("no snapshots: err = %v", err)
	}
}

// A task's DNS query: the DNAT of 127.0.0.11:53 to the embedded
// resolver's socket in its own namespace.
func TestRunDNS(t *testing.T) {
	n2 := node2()
	task := n2.Netns("49b862773ddd")
	task.IPTables["nat"] = `*nat
:OUTPUT ACCEPT [0:0]
:MESH-DNS-OUTPUT - [0:0]
[4:240] -A OUTPUT -d 127.0.0.11/32 -j MESH-DNS-OUTPUT
[4:240] -A MESH-DNS-OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:41234
COMMIT
`
	got, err := Run([]api.KernelSnapshot{n2}, api.TraceRequest{From: "www.2", To: "127.0.0.11:53/udp"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Reached || got.Backend != "127.0.0.11:41234" || len(got.Hops) != 3 || got.Hops[1].Rule != "-A MESH-DNS-OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:41234" ||
		got.Hops[2].Detail != "delivered to 127.0.0.11:41234/udp in 49b862773ddd: meshd (pid 3105) bound to 127.0.0.11:41234" {
		t.Errorf("trace = %+v, want the DNAT to 127.0.0.11:41234 and delivery to the resolver's socket", got)
	}
}

// sboxTable is nft's listing of an ingress sandbox's flowtable.
const sboxTable = testutil.FlowTableListing

// A namespace's flowtable is a hop of the connection that namespace
// DNATs and forwards: after its rules, before the link it leaves by.
func TestRunFlowtable(t *testing.T) {
	flowHop := api.TraceHop{Node: "node3", Netns: "ingress_sbox", Kind: api.HopFlow,
		Detail:  "fastpath (eth0, eth1): once established, later packets of this connection skip ingress_sbox's rules",
		Command: "nsenter --net=/run/meshd/netns/ingress_sbox nft list table inet meshd"}
	with := func(first, second string, tables map[string]string) api.KernelSnapshot {
		s := node3(first, second)
		for ns, text := range tables {
			s.Netns(ns).NFT = text
		}
		return s
	}
	n2 := func(tables map[string]string) api.KernelSnapshot {
		s := node2()
		for ns, text := range tables {
			s.Netns(ns).NFT = text
		}
		return s
	}
	// www.2 routes all else by ingress_sbox, which forwards it to the
	// host's mesh_gwbridge address without a DNAT.
	byIngress := func(tables map[string]string) api.KernelSnapshot {
		s := n2(tables)
		task := s.Netns("49b862773ddd")
		task.Routes = append(task.Routes, api.KernelRoute{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.255.0.4"), Dev: "eth0", Scope: "universe"})
		return s
	}
	// www.2 DNATs what it sends itself, which ingress_sbox forwards as
	// it is: a flowtable takes the connections its namespace DNATs and
	// forwards, not the namespace's own, nor those DNATed before.
	selfDNAT := byIngress(map[string]string{"49b862773ddd": sboxTable})
	selfDNAT.Netns("49b862773ddd").IPTables["nat"] = `*nat
:OUTPUT ACCEPT [0:0]
[1:60] -A OUTPUT -d 10.255.0.99/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.18.0.1:22
COMMIT
`
	noRoute := with("1:60", "0:0", map[string]string{"ingress_sbox": sboxTable})
	noRoute.Netns("ingress_sbox").Routes = noRoute.Netns("ingress_sbox").Routes[:1]
	noRoute.Netns("ingress_sbox").Routes[0].Dev = "eth9"
	for _, tt := range []struct {
		name  string
		snaps []api.KernelSnapshot
		from  string
		to    string
		want  bool   // the flowtable hop, between ingress_sbox's SNAT rule and its link out
		stops string // where the trace stops; "" when it reaches a socket
	}{
		{name: "the sandbox's flowtable", snaps: []api.KernelSnapshot{with("1:60", "0:0", map[string]string{"ingress_sbox": sboxTable}), node2()},
			to: "192.168.33.12:8888", want: true},
		{name: "no flowtable", snaps: []api.KernelSnapshot{node3("1:60", "0:0"), node2()}, to: "192.168.33.12:8888"},
		{name: "tables where nothing is DNATed", to: "192.168.33.12:8888", snaps: []api.KernelSnapshot{
			with("1:60", "0:0", map[string]string{"1-cg9cj6u9yy": sboxTable}),
			n2(map[string]string{"1-cg9cj6u9yy": sboxTable, "49b862773ddd": sboxTable})}},
		{name: "forwarded by the sandbox without a DNAT", from: "www.2", to: "172.18.0.1:22", snaps: []api.KernelSnapshot{
			with("1:60", "0:0", map[string]string{"ingress_sbox": sboxTable, "host": sboxTable}),
			byIngress(map[string]string{"1-cg9cj6u9yy": sboxTable})}},
		{name: "DNATed by its sender", from: "www.2", to: "10.255.0.99:80", snaps: []api.KernelSnapshot{
			with("1:60", "0:0", map[string]string{"ingress_sbox": sboxTable}), selfDNAT}},
		{name: "a table without a flowtable", to: "192.168.33.12:8888", snaps: []api.KernelSnapshot{
			with("1:60", "0:0", map[string]string{"ingress_sbox": "table inet meshd {\n}\n"}), node2()}},
		{name: "a flowtable no rule fills", to: "192.168.33.12:8888", snaps: []api.KernelSnapshot{
			with("1:60", "0:0", map[string]string{"ingress_sbox": strings.Replace(sboxTable, "flow add @fastpath", "accept", 1)}), node2()}},
		{name: "a flowtable without devices", to: "192.168.33.12:8888", snaps: []api.KernelSnapshot{
			with("1:60", "0:0", map[string]string{"ingress_sbox": strings.Replace(sboxTable, "\t\tdevices = { eth0, eth1 }\n", "", 1)}), node2()}},
		{name: "out of the sandbox, stopped further on", to: "192.168.33.12:8888", want: true, stops: "no node traced",
			snaps: []api.KernelSnapshot{with("1:60", "1:60", map[string]string{"ingress_sbox": sboxTable}), node2()}},
		{name: "never out of the sandbox", to: "192.168.33.12:8888", stops: "which is not there", snaps: []api.KernelSnapshot{noRoute, node2()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			from := cmp.Or(tt.from, "client")
			got, err := Run(tt.snaps, api.TraceRequest{From: from, Src: "192.168.33.1", To: tt.to})
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			var flows []int
			for i, h := range got.Hops {
				lines = append(lines, hopLine(h))
				if h.Kind == api.HopFlow {
					flows = append(flows, i)
				}
			}
			all := strings.Join(lines, "\n")
			if !got.Reached && tt.stops == "" || got.Reached && tt.stops != "" || !strings.Contains(got.Stopped, tt.stops) {
				t.Fatalf("reached %v, stopped %q; want it to stop only %q; hops:\n%s", got.Reached, got.Stopped, tt.stops, all)
			}
			if !tt.want {
				if len(flows) > 0 {
					t.Errorf("flowtable hops at %v, want none; hops:\n%s", flows, all)
				}
				return
			}
			if len(flows) != 1 {
				t.Fatalf("flowtable hops at %v, want one; hops:\n%s", flows, all)
			}
			i := flows[0]
			if got.Hops[i] != flowHop {
				t.Errorf("flowtable hop = %+v, want %+v", got.Hops[i], flowHop)
			}
			if !strings.HasPrefix(lines[i-1], "node3 ingress_sbox rule nat -A MESH-SNAT") || i+1 == len(lines) ||
				!strings.HasPrefix(lines[i+1], "node3 ingress_sbox link eth0@if3") {
				t.Errorf("flowtable hop at %d, want it after the sandbox's SNAT and before its link out; hops:\n%s", i, all)
			}
		})
	}
}
