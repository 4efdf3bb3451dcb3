package main

import (
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// The networks as node1 of threeNodes shows them, sorted by name as meshd
// serves them: the swarm's with node1's endpoints (www.1's task, its
// sandboxes) and the node's local networks.
var (
	www1CID = api.Task{ID: "p7b0d3zr5n6hq1w8y2k4c9m0a"}.ContainerID()

	testNetworks = []api.NetworkResource{
		{Name: "backend", ID: "f3t8v0c5x1m9q2w7e4r6y0u8i", Created: t0.Add(2 * time.Minute), Scope: "swarm", Driver: "overlay",
			IPAM:     api.IPAM{Driver: "default", Config: []api.IPAMConfig{{Subnet: "10.0.2.0/24", IPRange: "10.0.2.128/25", Gateway: "10.0.2.1"}}},
			Internal: true, Attachable: true, Containers: map[string]api.EndpointResource{},
			Options: map[string]string{api.OptionVXLANIDs: "4098"}, Labels: map[string]string{}},
		localNetwork("host", "host", nil, nil),
		{Name: "ingress", ID: "x2nd1o7i0nqvz6tb1y2omqawh", Created: t0, Scope: "swarm", Driver: "overlay",
			IPAM:    api.IPAM{Driver: "default", Config: []api.IPAMConfig{{Subnet: "10.255.0.0/16", Gateway: "10.255.0.1"}}},
			Ingress: true,
			Containers: map[string]api.EndpointResource{
				www1CID:        endpointFixture("x2nd1o7i0nqvz6tb1y2omqawh", www1CID, "www.1.p7b0d3zr5n6hq1w8y2k4c9m0a", "10.255.0.5/16", "02:42:0a:ff:00:05"),
				"ingress-sbox": endpointFixture("x2nd1o7i0nqvz6tb1y2omqawh", "ingress-sbox", "ingress-endpoint", "10.255.0.2/16", "02:42:0a:ff:00:02"),
			},
			Options: map[string]string{api.OptionVXLANIDs: "4096"}, Labels: map[string]string{},
			Peers: []api.PeerInfo{{Name: "node1-3f1c2d9a8b7e", IP: "192.168.33.10"}, {Name: "node3-0a9b8c7d6e5f", IP: "192.168.33.12"}}},
		localNetwork("mesh_gwbridge", "bridge", []api.IPAMConfig{{Subnet: "172.18.0.0/16", Gateway: "172.18.0.1"}},
			map[string]api.EndpointResource{
				"ingress-sbox": endpointFixture(localID("mesh_gwbridge"), "ingress-sbox", "gateway_ingress-sbox", "172.18.0.2/16", "02:42:ac:12:00:02"),
				www1CID:        endpointFixture(localID("mesh_gwbridge"), www1CID, "gateway_"+www1CID[:12], "172.18.0.3/16", "02:42:ac:12:00:03"),
			}),
		localNetwork("none", "null", nil, nil),
		{Name: "ovnet", ID: "kq0b2hbd7c4h5dqwlq4x9s0r3", Created: t0.Add(time.Minute), Scope: "swarm", Driver: "overlay",
			IPAM: api.IPAM{Driver: "default", Config: []api.IPAMConfig{{Subnet: "10.0.1.0/24", Gateway: "10.0.1.1",
				AuxAddress: map[string]string{"router": "10.0.1.254"}}}},
			Containers: map[string]api.EndpointResource{
				www1CID:    endpointFixture("kq0b2hbd7c4h5dqwlq4x9s0r3", www1CID, "www.1.p7b0d3zr5n6hq1w8y2k4c9m0a", "10.0.1.3/24", "02:42:0a:00:01:03"),
				"lb-ovnet": endpointFixture("kq0b2hbd7c4h5dqwlq4x9s0r3", "lb-ovnet", "ovnet-endpoint", "10.0.1.4/24", "02:42:0a:00:01:04"),
			},
			Options: map[string]string{api.OptionVXLANIDs: "4097"}, Labels: map[string]string{},
			Peers: []api.PeerInfo{{Name: "node1-3f1c2d9a8b7e", IP: "192.168.33.10"}}},
	}
)

func localID(name string) string { return api.LocalNetworkID("vrto8yiuht7u28ey3faajwvr8", name) }

// localNetwork is a node-local network of node1 as meshd shows it.
func localNetwork(name, driver string, config []api.IPAMConfig, containers map[string]api.EndpointResource) api.NetworkResource {
	if config == nil {
		config = []api.IPAMConfig{}
	}
	if containers == nil {
		containers = map[string]api.EndpointResource{}
	}
	opts := map[string]string{}
	if driver == "bridge" {
		opts = map[string]string{"com.docker.network.bridge.name": name, "com.docker.network.bridge.enable_ip_masquerade": "true"}
	}
	return api.NetworkResource{Name: name, ID: localID(name), Created: t0.Add(-time.Hour), Scope: "local", Driver: driver,
		IPAM: api.IPAM{Driver: "default", Config: config}, Containers: containers, Options: opts, Labels: map[string]string{}}
}

func endpointFixture(netID, key, name, addr, mac string) api.EndpointResource {
	return api.EndpointResource{Name: name, EndpointID: api.EndpointID(netID, key), MacAddress: mac, IPv4Address: addr}
}

// networkList is what network ls gets: the networks without their
// endpoints and peers, as meshd lists them.
func networkList(nets []api.NetworkResource) []api.NetworkResource {
	out := make([]api.NetworkResource, len(nets))
	for i, n := range nets {
		n.Containers, n.Peers = map[string]api.EndpointResource{}, nil
		out[i] = n
	}
	return out
}
