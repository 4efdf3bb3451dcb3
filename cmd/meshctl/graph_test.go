package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/graph"
)

// graphViews is two nodes of the tutorials' lab as the API shows them:
// ovnet (VNI 4097) on both, www.1 on node1 and www.2 on node2.
func graphViews() (clusterView, []nodeView) {
	ovnet := api.NetworkResource{Name: "ovnet", ID: "ovnetid000", Scope: api.ScopeSwarm,
		IPAM:    api.IPAM{Config: []api.IPAMConfig{{Subnet: "10.0.0.0/24", Gateway: "10.0.0.1"}}},
		Options: map[string]string{api.OptionVXLANIDs: "4097"}}
	gw := api.NetworkResource{Name: gatewayBridge, Scope: api.ScopeLocal,
		IPAM: api.IPAM{Config: []api.IPAMConfig{{Subnet: "172.18.0.0/16", Gateway: "172.18.0.1"}}}}
	cv := clusterView{
		Nodes: []api.Node{{ID: "id2", Hostname: "node2", Addr: "192.168.33.11"}, {ID: "id1", Hostname: "node1", Addr: "192.168.33.10"}},
		Services: []api.Service{{ID: "s1", Name: "www", Endpoint: api.Endpoint{
			VirtualIPs: []api.VirtualIP{{NetworkID: "ovnetid000", Addr: "10.0.0.2/24"}}}}},
	}
	var nvs []nodeView
	for i, node := range []string{"node1", "node2"} {
		tk := api.Task{ID: "task" + node, ServiceID: "s1", ServiceName: "www", Slot: i + 1, NodeID: "id" + node[4:],
			DesiredState: api.TaskRunning, Networks: []api.TaskNetwork{{NetworkID: ovnet.ID, NetworkName: "ovnet", Addr: "10.0.0." + string(rune('3'+i)) + "/24"}}}
		cv.Tasks = append(cv.Tasks, tk)
		o, g := ovnet, gw
		o.Containers = map[string]api.EndpointResource{"lb-ovnet": {IPv4Address: "10.0.0." + string(rune('5'+i)) + "/24"}}
		g.Containers = map[string]api.EndpointResource{tk.ContainerID(): {IPv4Address: "172.18.0.3/16"}}
		nvs = append(nvs, nodeView{Info: api.Info{NodeID: "id" + node[4:], NodeName: node}, Networks: []api.NetworkResource{g, o},
			Namespaces: []api.Namespace{
				{Name: "1-ovnetid000", Kind: "overlay", Owner: "ovnet"},
				{Name: "lb_ovnetid00", Kind: "lb", Owner: "ovnet"},
				{Name: tk.Hostname(), Kind: "task", Owner: tk.Name()},
			}})
	}
	return cv, nvs
}

func TestTopologyFrom(t *testing.T) {
	cv, nvs := graphViews()
	got := topologyFrom(cv, nvs)
	h1, h2 := cv.Tasks[0].Hostname(), cv.Tasks[1].Hostname()
	node := func(name, addr, task, taskName, taskAddr, lbAddr string) graph.Node {
		return graph.Node{Name: name, Addr: addr,
			Namespaces: []graph.Namespace{
				{Name: "host", Kind: graph.KindHost, Links: []graph.Link{{Name: gatewayBridge, Kind: graph.LinkBridge, Addrs: []string{"172.18.0.1/16"}}}},
				{Name: "lb_ovnetid00", Kind: graph.KindLB, Owner: "ovnet", Links: []graph.Link{{Name: "eth0", Kind: graph.LinkVeth, Addrs: []string{lbAddr}}}},
				{Name: "1-ovnetid000", Kind: graph.KindOverlay, Owner: "ovnet", Links: []graph.Link{
					{Name: "br0", Kind: graph.LinkBridge, Addrs: []string{"10.0.0.1/24"}},
					{Name: "vxlan0", Kind: graph.LinkVXLAN, Master: "br0", VNI: 4097}}},
				{Name: task, Kind: graph.KindTask, Owner: taskName, Links: []graph.Link{
					{Name: "eth0", Kind: graph.LinkVeth, Addrs: []string{taskAddr}},
					{Name: "eth1", Kind: graph.LinkVeth, Addrs: []string{"172.18.0.3/16"}}}},
			},
			Veths: []graph.Veth{
				{A: graph.End{Namespace: "1-ovnetid000"}, B: graph.End{Namespace: task, Link: "eth0"}},
				{A: graph.End{Namespace: "1-ovnetid000"}, B: graph.End{Namespace: "lb_ovnetid00", Link: "eth0"}},
				{A: graph.End{Namespace: "host"}, B: graph.End{Namespace: task, Link: "eth1"}},
			}}
	}
	want := graph.Topology{
		Nodes: []graph.Node{
			node("node1", "192.168.33.10", h1, "www.1", "10.0.0.3/24", "10.0.0.5/24"),
			node("node2", "192.168.33.11", h2, "www.2", "10.0.0.4/24", "10.0.0.6/24"),
		},
		Tunnels: []graph.Tunnel{{Network: "ovnet", VNI: 4097,
			A: graph.TunnelEnd{Node: "node1", Namespace: "1-ovnetid000"}, B: graph.TunnelEnd{Node: "node2", Namespace: "1-ovnetid000"}}},
		Services: []graph.Service{{Name: "www", VIPs: []graph.VIP{{Network: "ovnet", Addr: "10.0.0.2/24"}},
			Tasks: []graph.TaskRef{{Name: "www.1", Node: "node1", Namespace: h1}, {Name: "www.2", Node: "node2", Namespace: h2}}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("topology mismatch (-want +got):\n%s", diff)
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
		name    string
		cluster *fakeAPI
		node    *fakeAPI
		want    string
	}{
		{"worker", &fakeAPI{nodesFunc: func() ([]api.Node, error) { return nil, refused }}, newFakeAPI(), "not a swarm manager"},
		{"node down", newFakeAPI(), &fakeAPI{infoFunc: func() (api.Info, error) { return api.Info{}, errors.New("dial unix: no such file") }}, "no such file"},
		{"namespaces", newFakeAPI(), &fakeAPI{infoFunc: func() (api.Info, error) { return api.Info{NodeName: "node2"}, nil },
			namespacesFunc: func() ([]api.Namespace, error) { return nil, errors.New("boom") }}, "node2: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runGraph(context.Background(), tt.cluster, []graphNodeAPI{tt.node}, &bytes.Buffer{}, graphOptions{format: "dot"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
