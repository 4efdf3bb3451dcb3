package manager

import (
	"cmp"
	"fmt"
	"net/netip"

	"github.com/meshd/meshd/mesh/api"
)

// checkPorts validates published ports and fills defaults: protocol tcp,
// mode ingress, target = published when only one is given.
func checkPorts(ports []api.PortConfig, endpointMode string) ([]api.PortConfig, error) {
	out := make([]api.PortConfig, 0, len(ports))
	seen := map[string]bool{}
	for _, p := range ports {
		if p.Protocol == "" {
			p.Protocol = api.ProtoTCP
		}
		if p.PublishMode == "" {
			p.PublishMode = api.PublishIngress
		}
		if p.TargetPort == 0 {
			return nil, api.Invalid("invalid port %d: the target port must be 1-65535", p.TargetPort)
		}
		if p.PublishedPort == 0 {
			return nil, api.Invalid("invalid published port for target %d: must be 1-65535", p.TargetPort)
		}
		if p.Protocol != api.ProtoTCP && p.Protocol != api.ProtoUDP {
			return nil, api.Invalid("invalid protocol %s: want tcp or udp", api.Quote(p.Protocol))
		}
		if p.PublishMode != api.PublishIngress && p.PublishMode != api.PublishHost {
			return nil, api.Invalid("invalid publish mode %s: want ingress or host", api.Quote(p.PublishMode))
		}
		if p.PublishMode == api.PublishIngress && endpointMode == api.EndpointModeDNSRR {
			return nil, api.Invalid("port %d published in ingress mode cannot be used with endpoint mode dnsrr", p.PublishedPort)
		}
		key := portKey(p)
		if seen[key] {
			return nil, api.Invalid("port %s given twice", key)
		}
		seen[key] = true
		out = append(out, p)
	}
	return out, nil
}

func portKey(p api.PortConfig) string { return fmt.Sprintf("%d/%s", p.PublishedPort, p.Protocol) }

// portTaken says which service already publishes p, if any, or which
// container on a swarm network: as "service www", "container c1 on
// node2".
func portTaken(s *State, p api.PortConfig, except string) (string, bool) {
	if name, ok := servicePortTaken(s, p, except); ok {
		return "service " + name, true
	}
	if t, ok := containerPortTaken(s, "", p); ok {
		return fmt.Sprintf("container %s on %s", t.Standalone.Name, s.Nodes[t.NodeID].Hostname), true
	}
	return "", false
}

// servicePortTaken says which service but except publishes p, if any.
func servicePortTaken(s *State, p api.PortConfig, except string) (string, bool) {
	for _, svc := range s.Services {
		if svc.ID == except {
			continue
		}
		for _, q := range svc.Endpoint.Ports {
			if portKey(q) == portKey(p) {
				return svc.Name, true
			}
		}
	}
	return "", false
}

// containerPortTaken says which container on a swarm network publishes
// p as a host port, on nodeID ("": on any node).
func containerPortTaken(s *State, nodeID string, p api.PortConfig) (api.Task, bool) {
	for _, t := range s.Tasks {
		if t.Standalone == nil || (nodeID != "" && t.NodeID != nodeID) {
			continue
		}
		for _, q := range t.Standalone.Ports {
			if q.Proto == p.Protocol && q.HostPort == p.PublishedPort {
				return t, true
			}
		}
	}
	return api.Task{}, false
}

// checkPublishable refuses ports meshd uses or another service (or a
// container) publishes.
func checkPublishable(s *State, id string, ports []api.PortConfig) error {
	reserved := reservedPorts(s)
	for _, p := range ports {
		if what, ok := reserved[portKey(p)]; ok {
			return api.Invalid("port %s is reserved for meshd (%s)", portKey(p), what)
		}
		if other, taken := portTaken(s, p, id); taken {
			return api.Conflict("port %s is already published by %s", portKey(p), other)
		}
	}
	return nil
}

// checkContainerPorts checks the host ports a container on a swarm
// network publishes on nodeID (its node fixed them): none reserved for
// meshd, published by a service (ingress publishes on every node) or by
// another of the node's containers. Docker's words for a port in use.
func checkContainerPorts(s *State, nodeID string, ports []api.ContainerPort) error {
	reserved := reservedPorts(s)
	seen := map[string]bool{}
	for _, cp := range ports {
		p := api.PortConfig{Protocol: cp.Proto, PublishedPort: cp.HostPort, TargetPort: cp.Port}
		switch {
		case p.Protocol != api.ProtoTCP && p.Protocol != api.ProtoUDP:
			return api.Invalid("invalid protocol %s: want tcp or udp", api.Quote(p.Protocol))
		case p.PublishedPort == 0 || p.TargetPort == 0:
			return api.Invalid("invalid port %d:%d: the host and container ports must be 1-65535", p.PublishedPort, p.TargetPort)
		}
		if what, ok := reserved[portKey(p)]; ok {
			return api.Invalid("port %s is reserved for meshd (%s)", portKey(p), what)
		}
		_, bySvc := servicePortTaken(s, p, "")
		_, byContainer := containerPortTaken(s, nodeID, p)
		if bySvc || byContainer || seen[portKey(p)] {
			return api.Conflict("Bind for %s:%d failed: port is already allocated", cmp.Or(cp.HostIP, "0.0.0.0"), cp.HostPort)
		}
		seen[portKey(p)] = true
	}
	return nil
}

// reservedPorts are the ports meshd itself uses on the nodes, by portKey,
// with what uses them: a service publishing one would take the node's own
// traffic (ingress publishes on every node, host mode on the task's).
// Swarm's defaults are always reserved, whatever the nodes say: the
// cluster API (2377/tcp), gossip (7946/tcp and udp) and VXLAN (4789/udp);
// so are the ports of each node's record: its APIAddr's, and the gossip
// and data path ports it gossips (meshd --listen-addr, --data-path-port).
func reservedPorts(s *State) map[string]string {
	out := map[string]string{}
	add := func(port int, proto, what string) {
		if port > 0 && port <= 65535 {
			out[portKey(api.PortConfig{PublishedPort: uint16(port), Protocol: proto})] = what
		}
	}
	// Swarm's defaults go last: they name what the port is without a node.
	for _, id := range sortedNodeIDs(*s) {
		n := s.Nodes[id]
		if ap, err := netip.ParseAddrPort(n.APIAddr); err == nil {
			add(int(ap.Port()), api.ProtoTCP, "cluster API of "+n.Hostname)
		}
		add(n.GossipPort, api.ProtoTCP, "gossip of "+n.Hostname)
		add(n.GossipPort, api.ProtoUDP, "gossip of "+n.Hostname)
		add(n.DataPathPort, api.ProtoUDP, "VXLAN data path of "+n.Hostname)
	}
	add(api.DefaultAPIPort, api.ProtoTCP, "cluster API")
	add(api.DefaultGossipPort, api.ProtoTCP, "gossip")
	add(api.DefaultGossipPort, api.ProtoUDP, "gossip")
	add(api.DefaultDataPathPort, api.ProtoUDP, "VXLAN data path")
	return out
}
