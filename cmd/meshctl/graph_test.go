package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/graph"
)

// The snapshots below are the fake cluster's (threeNodes, testTasks,
// testNetworks) as its kernels would show it: node1 with www.1 on ingress
// and ovnet, node3 with the ingress network only, node2 down and not read.
// node1's vxlan0 sends to node2 and node3, node3's to node1 and to
// 192.168.33.99, which no node has.
const (
	ingressNS = "1-x2nd1o7i0n"
	ovnetNS   = "1-kq0b2hbd7c"
	ovnetLB   = "lb_kq0b2hbd7"
)

// www1NS is www.1's namespace, named by its hostname.
var www1NS = testTasks[0].Hostname()

func kLink(index int, name, kind, master string, addrs ...string) api.KernelLink {
	l := api.KernelLink{Index: index, Name: name, Kind: kind, Master: master, Up: true, State: "UP", Addrs: []netip.Prefix{}}
	for _, a := range addrs {
		l.Addrs = append(l.Addrs, netip.MustParsePrefix(a))
	}
	return l
}

// kVeth is a veth whose peer is index peer in namespace peerNS ("" for a
// namespace meshd did not make).
func kVeth(index int, name, master string, peer int, peerNS string, addrs ...string) api.KernelLink {
	l := kLink(index, name, "veth", master, addrs...)
	l.PeerIndex, l.PeerNetns = peer, peerNS
	return l
}

func kVXLAN(vni uint32) api.KernelLink {
	l := kLink(5, "vxlan0", "vxlan", "br0")
	l.VNI, l.Port = vni, 4789
	return l
}

func kFDB(mac, dst string) api.KernelFDB {
	return api.KernelFDB{MAC: mac, Dev: "vxlan0", Dst: netip.MustParseAddr(dst), Permanent: true}
}

func graphSnapshots() []api.KernelSnapshot {
	lo := kLink(1, "lo", "device", "", "127.0.0.1/8")
	node1 := api.KernelSnapshot{NodeID: threeNodes[0].ID, NodeName: "node1", NodeAddr: "192.168.33.10", Namespaces: []api.NetnsState{
		{Name: api.HostNamespace, Kind: "host", Links: []api.KernelLink{lo,
			kVeth(2, "eth0", "", 7, "", "192.168.33.10/24"),
			kLink(3, "docker0", "bridge", "", "172.17.0.1/16"), // not the mesh's: left out
			kLink(4, "mesh_gwbridge", "bridge", "", "172.18.0.1/16"),
			kVeth(6, "veth1a2b3c4", "mesh_gwbridge", 13, "ingress_sbox"),
			kVeth(8, "vethd5e6f70", "mesh_gwbridge", 15, www1NS)}},
		{Name: "ingress_sbox", Kind: "ingress", Owner: "ingress", Links: []api.KernelLink{lo,
			kVeth(11, "eth0", "", 6, ingressNS, "10.255.0.2/16", "10.255.0.4/32"),
			kVeth(13, "eth1", "", 6, api.HostNamespace, "172.18.0.2/16")}},
		{Name: ingressNS, Kind: "overlay", Owner: "ingress", Links: []api.KernelLink{lo,
			kLink(2, "br0", "bridge", "", "10.255.0.1/16"), kVXLAN(4096),
			kVeth(6, "veth0", "br0", 11, "ingress_sbox"),
			kVeth(8, "veth1", "br0", 14, www1NS)},
			FDB: []api.KernelFDB{kFDB("02:42:0a:ff:00:03", "192.168.33.12"), kFDB("02:42:0a:ff:00:06", "192.168.33.11")}},
		{Name: ovnetNS, Kind: "overlay", Owner: "ovnet", Links: []api.KernelLink{lo,
			kLink(2, "br0", "bridge", "", "10.0.1.1/24"), kVXLAN(4097),
			kVeth(7, "veth0", "br0", 9, ovnetLB),
			kVeth(9, "veth1", "br0", 16, www1NS)}},
		{Name: ovnetLB, Kind: "lb", Owner: "ovnet", Links: []api.KernelLink{lo,
			kVeth(9, "eth0", "", 7, ovnetNS, "10.0.1.4/24", "10.0.1.2/32")}},
		{Name: www1NS, Kind: "task", Owner: "www.1", Links: []api.KernelLink{lo,
			kVeth(14, "eth0", "", 8, ingressNS, "10.255.0.5/16"),
			kVeth(15, "eth2", "", 8, api.HostNamespace, "172.18.0.3/16"),
			kVeth(16, "eth1", "", 9, ovnetNS, "10.0.1.3/24")}},
	}}
	node3 := api.KernelSnapshot{NodeID: threeNodes[2].ID, NodeName: "node3", NodeAddr: "192.168.33.12", Namespaces: []api.NetnsState{
		{Name: api.HostNamespace, Kind: "host", Links: []api.KernelLink{lo,
			kVeth(2, "eth0", "", 9, "", "192.168.33.12/24"),
			kLink(3, "mesh_gwbridge", "bridge", "", "172.18.0.1/16"),
			kVeth(5, "veth9f8e7d6", "mesh_gwbridge", 7, "ingress_sbox")}},
		{Name: "ingress_sbox", Kind: "ingress", Owner: "ingress", Links: []api.KernelLink{lo,
			kVeth(9, "eth0", "", 6, ingressNS, "10.255.0.3/16", "10.255.0.4/32"),
			kVeth(7, "eth1", "", 5, api.HostNamespace, "172.18.0.2/16")}},
		{Name: ingressNS, Kind: "overlay", Owner: "ingress", Links: []api.KernelLink{lo,
			kLink(2, "br0", "bridge", "", "10.255.0.1/16"), kVXLAN(4096),
			kVeth(6, "veth0", "br0", 9, "ingress_sbox")},
			FDB: []api.KernelFDB{kFDB("02:42:0a:ff:00:02", "192.168.33.10"), kFDB("02:42:0a:ff:00:05", "192.168.33.10"),
				kFDB("02:42:0a:ff:00:09", "192.168.33.99")}},
	}}
	return []api.KernelSnapshot{node3, node1}
}

func TestTopologyFrom(t *testing.T) {
	cv := clusterView{Nodes: threeNodes, Networks: networkList(testNetworks), Services: testServices, Tasks: testTasks}
	got := topologyFrom(cv, graphSnapshots())

	var names []string
	for _, n := range got.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"node1", "node2", "node3"}; !cmp.Equal(names, want) {
		t.Errorf("nodes %v, want %v", names, want)
	}
	node1, node2 := got.Nodes[0], got.Nodes[1]
	if want := []graph.Namespace{{Name: "host", Kind: graph.KindHost}}; !cmp.Equal(node2.Namespaces, want) {
		t.Errorf("node2, not read: namespaces %+v, want %+v", node2.Namespaces, want)
	}
	var host []string
	for _, l := range node1.Namespace("host").Links {
		host = append(host, l.IPName())
	}
	if want := []string{"eth0@if7", "mesh_gwbridge", "veth1a2b3c4@if13", "vethd5e6f70@if15"}; !cmp.Equal(host, want) {
		t.Errorf("node1's host links %v, want %v (the mesh's only, no lo)", host, want)
	}
	task := node1.Namespace(www1NS)
	if want := (graph.Link{Name: "eth1", Kind: graph.LinkVeth, Index: 16, PeerIndex: 9, Addrs: []string{"10.0.1.3/24"}}); task == nil || !cmp.Equal(*task.Link("eth1"), want) {
		t.Errorf("www.1's namespace %+v, want its eth1 as %+v", task, want)
	}
	if vx := node1.Namespace(ovnetNS).Link("vxlan0"); vx == nil || vx.VNI != 4097 || vx.Master != "br0" {
		t.Errorf("ovnet's vxlan0 %+v, want VNI 4097 in br0", vx)
	}
	wantVeths := []graph.Veth{ // each lesser end first, sorted
		{A: graph.End{Namespace: ovnetNS, Link: "veth0"}, B: graph.End{Namespace: ovnetLB, Link: "eth0"}},
		{A: graph.End{Namespace: ovnetNS, Link: "veth1"}, B: graph.End{Namespace: www1NS, Link: "eth1"}},
		{A: graph.End{Namespace: ingressNS, Link: "veth0"}, B: graph.End{Namespace: "ingress_sbox", Link: "eth0"}},
		{A: graph.End{Namespace: ingressNS, Link: "veth1"}, B: graph.End{Namespace: www1NS, Link: "eth0"}},
		{A: graph.End{Namespace: www1NS, Link: "eth2"}, B: graph.End{Namespace: "host", Link: "vethd5e6f70"}},
		{A: graph.End{Namespace: "host", Link: "veth1a2b3c4"}, B: graph.End{Namespace: "ingress_sbox", Link: "eth1"}},
	}
	if diff := cmp.Diff(wantVeths, node1.Veths); diff != "" {
		t.Errorf("node1's veths (-want +got):\n%s", diff)
	}
	// From the FDB: node1–node2 seen from node1 only (node2 not read, so
	// its end is its host), node1–node3 from both, 192.168.33.99 nowhere.
	wantTunnels := []graph.Tunnel{
		{Network: "ingress", VNI: 4096, A: graph.TunnelEnd{Node: "node1", Namespace: ingressNS}, B: graph.TunnelEnd{Node: "node2", Namespace: "host"}},
		{Network: "ingress", VNI: 4096, A: graph.TunnelEnd{Node: "node1", Namespace: ingressNS}, B: graph.TunnelEnd{Node: "node3", Namespace: ingressNS}},
	}
	if diff := cmp.Diff(wantTunnels, got.Tunnels); diff != "" {
		t.Errorf("tunnels (-want +got):\n%s", diff)
	}
	wantWWW := graph.Service{Name: "www", Ports: []string{"*:8888->80/tcp", "*:5353->53/udp"},
		VIPs:  []graph.VIP{{Network: "ingress", Addr: "10.255.0.4/16"}, {Network: "ovnet", Addr: "10.0.1.2/24"}},
		Tasks: []graph.TaskRef{{Name: "www.1", Node: "node1", Namespace: www1NS}}}
	if diff := cmp.Diff(wantWWW, got.Services[2]); diff != "" {
		t.Errorf("service www (-want +got):\n%s", diff)
	}
	// What it builds, the renderers take.
	for _, f := range []string{"dot", "mermaid"} {
		if err := graph.Render(context.Background(), &bytes.Buffer{}, f, got); err != nil {
			t.Errorf("%s: got %v, want no error", f, err)
		}
	}
}

func TestGraphErrors(t *testing.T) {
	refused := errors.New("this node is not a swarm manager")
	tests := []struct {
		name string
		api  *fakeAPI
		want string
	}{
		{"worker", &fakeAPI{nodesFunc: func() ([]api.Node, error) { return nil, refused }}, "not a swarm manager"},
		{"networks", &fakeAPI{networksFunc: func() ([]api.NetworkResource, error) { return nil, errors.New("boom") }}, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runGraph(context.Background(), tt.api, graphSnapshots(), &bytes.Buffer{}, graphOptions{format: "dot"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
