package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

// traceToNode2 is the tutorial's trace from the client through node3 to
// www.2 on node2, as meshd answers it (commands with the lab's paths).
var traceToNode2 = api.Trace{From: "client", Src: "192.168.33.1", To: "192.168.33.12:8888", Proto: "tcp",
	Reached: true, Backend: "10.255.0.7:80", Backends: []string{"10.255.0.6", "10.255.0.7"},
	Hops: []api.TraceHop{
		{Node: "node3", Netns: "host", Kind: api.HopArrive, Detail: "in eth0", Packet: "192.168.33.1 > 192.168.33.12:8888/tcp"},
		{Node: "node3", Netns: "host", Kind: api.HopRule, Table: "nat", Rule: "-A MESH-INGRESS -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.18.0.2:8888",
			Packets: 3, Bytes: 180, Packet: "192.168.33.1 > 172.18.0.2:8888/tcp", Command: "nsenter --net=/run/netns/node3 iptables -t nat -nvL MESH-INGRESS"},
		{Node: "node3", Netns: "host", Kind: api.HopLink, Detail: "mesh_gwbridge → gwingress@if3 → ingress_sbox eth1", Command: "nsenter --net=/run/netns/node3 ip -d link show gwingress"},
		{Node: "node3", Netns: "ingress_sbox", Kind: api.HopArrive, Detail: "in eth1", Packet: "192.168.33.1 > 172.18.0.2:8888/tcp"},
		{Node: "node3", Netns: "ingress_sbox", Kind: api.HopRule, Table: "mangle", Rule: "-A MESH-PREROUTING -p tcp -m tcp --dport 8888 -m comment --comment www -j MARK --set-xmark 0x100/0xffffffff",
			Packets: 20, Bytes: 1200, Packet: "192.168.33.1 > 172.18.0.2:8888/tcp mark 0x100", Command: "nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -t mangle -nvL MESH-PREROUTING"},
		{Node: "node3", Netns: "ingress_sbox", Kind: api.HopRule, Table: "nat", Rule: "-A MESH-SVC-3ZWH5QO3 -j DNAT --to-destination 10.255.0.7",
			Detail: "the next connection's turn, of 2 backends", Packet: "192.168.33.1 > 10.255.0.7:8888/tcp mark 0x100", Command: "nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -t nat -nvL MESH-SVC-3ZWH5QO3"},
		{Node: "node3", Netns: "ingress_sbox", Kind: api.HopRule, Table: "nat", Rule: "-A MESH-SNAT -d 10.255.0.0/16 -m conntrack --ctstate DNAT -j SNAT --to-source 10.255.0.4",
			Packets: 3, Bytes: 180, Packet: "10.255.0.4 > 10.255.0.7:8888/tcp mark 0x100", Command: "nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -t nat -nvL MESH-SNAT"},
		{Node: "node3", Netns: "ingress_sbox", Kind: api.HopLink, Detail: "eth0@if3 → 1-cg9cj6u9yy veth7e2c411@if2 → br0", Command: "nsenter --net=/var/run/meshd/netns/ingress_sbox ip -d link show eth0"},
		{Node: "node3", Netns: "1-cg9cj6u9yy", Kind: api.HopVXLAN, Detail: "vxlan0 VNI 4096: 10.255.0.7 lladdr 02:42:0a:ff:00:07 → VTEP 192.168.33.11 (node2) udp/4789 from 192.168.33.12",
			Command: "nsenter --net=/var/run/meshd/netns/1-cg9cj6u9yy bridge fdb show dev vxlan0"},
		{Node: "node2", Netns: "1-cg9cj6u9yy", Kind: api.HopLink, Detail: "vxlan0 VNI 4096 → br0"},
		{Node: "node2", Netns: "1-cg9cj6u9yy", Kind: api.HopLink, Detail: "br0 → veth3153f9d@if2 → 49b862773ddd eth0"},
		{Node: "node2", Netns: "49b862773ddd", Kind: api.HopArrive, Detail: "in eth0", Packet: "10.255.0.4 > 10.255.0.7:8888/tcp"},
		{Node: "node2", Netns: "49b862773ddd", Kind: api.HopRule, Table: "nat", Rule: "-A MESH-REDIRECT -d 10.255.0.7/32 -p tcp -m tcp --dport 8888 -j REDIRECT --to-ports 80",
			Packets: 1, Bytes: 60, Packet: "10.255.0.4 > 10.255.0.7:80/tcp", Command: "nsenter --net=/var/run/meshd/netns/49b862773ddd iptables -t nat -nvL MESH-REDIRECT"},
		{Node: "node2", Netns: "49b862773ddd", Kind: api.HopDeliver, Detail: "delivered to 10.255.0.7:80/tcp in 49b862773ddd: whoami (pid 4242) listening on *:80",
			Packet: "10.255.0.4 > 10.255.0.7:80/tcp", Command: "nsenter --net=/var/run/meshd/netns/49b862773ddd ss -ltnp"},
	}}

// traceFDBDeleted stops at node3's vxlan0, whose FDB entry for www.2's
// MAC is gone.
var traceFDBDeleted = api.Trace{From: "client", Src: "192.168.33.1", To: "192.168.33.12:8888", Proto: "tcp",
	Backends: []string{"10.255.0.6", "10.255.0.7"},
	Stopped:  "node3 1-cg9cj6u9yy: no FDB entry for 02:42:0a:ff:00:07 (10.255.0.7) on vxlan0 (VNI 4096): the packet has no VTEP to go to",
	Hops: append(append([]api.TraceHop(nil), traceToNode2.Hops[:8]...),
		api.TraceHop{Node: "node3", Netns: "1-cg9cj6u9yy", Kind: api.HopVXLAN, Detail: "vxlan0 VNI 4096: 10.255.0.7 lladdr 02:42:0a:ff:00:07, no FDB entry",
			Command: "nsenter --net=/var/run/meshd/netns/1-cg9cj6u9yy bridge fdb show dev vxlan0"},
		api.TraceHop{Node: "node3", Netns: "1-cg9cj6u9yy", Kind: api.HopStop, Packet: "10.255.0.4 > 10.255.0.7:8888/tcp mark 0x100",
			Detail: "node3 1-cg9cj6u9yy: no FDB entry for 02:42:0a:ff:00:07 (10.255.0.7) on vxlan0 (VNI 4096): the packet has no VTEP to go to"}),
}

// traceFlowtable is traceToNode2 on a kernel with flowtables: node3's
// ingress sandbox carries the connection past its rules once established.
var traceFlowtable = api.Trace{From: traceToNode2.From, Src: traceToNode2.Src, To: traceToNode2.To, Proto: traceToNode2.Proto,
	Reached: true, Backend: traceToNode2.Backend, Backends: traceToNode2.Backends,
	Hops: append(append(append([]api.TraceHop(nil), traceToNode2.Hops[:7]...),
		api.TraceHop{Node: "node3", Netns: "ingress_sbox", Kind: api.HopFlow,
			Detail:  "fastpath (eth0, eth1): once established, later packets of this connection skip ingress_sbox's rules",
			Command: "nsenter --net=/var/run/meshd/netns/ingress_sbox nft list table inet meshd"}),
		traceToNode2.Hops[7:]...),
}

type fakeTraceAPI struct {
	trace api.Trace
	got   api.TraceRequest
}

func (f *fakeTraceAPI) Trace(_ context.Context, req api.TraceRequest) (api.Trace, error) {
	f.got = req
	return f.trace, nil
}

// fakeTraceSource is a lab whose probe moves the counters of the rules
// in moved (node netns table rule).
type fakeTraceSource struct {
	probed bool
	moved  []string
}

func (f *fakeTraceSource) snapshots(context.Context) ([]api.KernelSnapshot, error) {
	if !f.probed {
		return []api.KernelSnapshot{{NodeName: "node3"}}, nil
	}
	byNode := map[string]*api.KernelSnapshot{}
	var out []api.KernelSnapshot
	for _, m := range f.moved {
		f := strings.SplitN(m, " ", 4)
		if byNode[f[0]] == nil {
			out = append(out, api.KernelSnapshot{NodeName: f[0]})
			byNode[f[0]] = &out[len(out)-1]
		}
		s := byNode[f[0]]
		ns := s.Netns(f[1])
		if ns == nil {
			s.Namespaces = append(s.Namespaces, api.NetnsState{Name: f[1], IPTables: map[string]string{}})
			ns = &s.Namespaces[len(s.Namespaces)-1]
		}
		ns.IPTables[f[2]] += "[999:1] " + f[3] + "\n"
	}
	return out, nil
}
func (f *fakeTraceSource) clientAddr() string { return "192.168.33.1" }
func (f *fakeTraceSource) probe(context.Context, string, string) error {
	f.probed = true
	return nil
}

func TestTraceGolden(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		trace api.Trace
		opts  traceOptions
		moved []string
	}{
		{name: "trace", trace: traceToNode2},
		{name: "trace-fdb-deleted", trace: traceFDBDeleted},
		{name: "trace-flowtable", trace: traceFlowtable},
		{name: "trace-json", trace: traceFDBDeleted, opts: traceOptions{output: "json"}},
		{name: "trace-probe", trace: traceToNode2, opts: traceOptions{probe: true}, moved: []string{
			"node3 host nat -A MESH-INGRESS -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.18.0.2:8888",
			"node2 49b862773ddd nat -A MESH-REDIRECT -d 10.255.0.7/32 -p tcp -m tcp --dport 8888 -j REDIRECT --to-ports 80"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeTraceAPI{trace: tt.trace}
			opts := tt.opts
			opts.from, opts.to = "client", "192.168.33.12:8888"
			var out bytes.Buffer
			if err := runTrace(ctx, api, &fakeTraceSource{moved: tt.moved}, &out, opts); err != nil {
				t.Fatal(err)
			}
			if api.got.Src != "192.168.33.1" || api.got.To != opts.to || len(api.got.Snapshots) != 1 {
				t.Errorf("request = %+v, want the client's address, the target and the lab's snapshots", api.got)
			}
			testutil.Golden(t, "testdata/"+tt.name+".golden", out.String())
		})
	}
}

func TestTraceErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  traceSource
		opts traceOptions
		want string
	}{
		{"client outside a lab", noTraceSource{}, traceOptions{from: "client"}, "needs a lab"},
		{"probe from a node", &fakeTraceSource{}, traceOptions{from: "node1", probe: true}, "use --from client"},
		{"output", &fakeTraceSource{}, traceOptions{from: "client", output: "yaml"}, `-o "yaml"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := runTrace(context.Background(), &fakeTraceAPI{}, tt.src, &bytes.Buffer{}, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, ok := ruleCounter("[7:420] -A X -j Y\n", "-A X -j Z"); ok {
		t.Error("ruleCounter found a rule that is not there")
	}
	if n, ok := ruleCounter("[0:0] -A X -j Z\n[7:420] -A X -j Y\n", "-A X -j Y"); !ok || n != 7 {
		t.Errorf("ruleCounter = %d %v, want 7", n, ok)
	}
}
