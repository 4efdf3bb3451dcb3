package manager

import (
	"slices"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// ingressID returns the ingress network's ID.
func ingressID(s *State) string {
	for id, n := range s.Networks {
		if n.Ingress {
			return id
		}
	}
	return ""
}

// taskNetworks lists the networks a service's tasks attach to, in attach
// order: the ingress network first when the service publishes through the
// routing mesh (as Swarm does: eth0 is on ingress), then its own.
func taskNetworks(s *State, svc api.Service) []string {
	var out []string
	if svc.PublishesIngress() {
		out = append(out, ingressID(s))
	}
	for _, a := range svc.Networks {
		out = append(out, a.Target)
	}
	return out
}

// syncVIPs gives a vip-mode service one address on each network its
// tasks attach to, ingress included when it publishes ports: the VIPs of
// the networks it keeps stay, those of the networks it left are released.
// A new service gets them all.
func syncVIPs(s *State, svc *api.Service) error {
	if svc.Endpoint.Mode != api.EndpointModeVIP {
		return nil
	}
	want := taskNetworks(s, *svc)
	var vips []api.VirtualIP
	for _, v := range svc.Endpoint.VirtualIPs {
		if slices.Contains(want, v.NetworkID) {
			vips = append(vips, v)
		} else if err := release(s, v.NetworkID, v.Addr); err != nil {
			return err
		}
	}
	for _, netID := range want {
		if slices.ContainsFunc(vips, func(v api.VirtualIP) bool { return v.NetworkID == netID }) {
			continue
		}
		addr, err := allocate(s, netID)
		if err != nil {
			return api.Conflict("network %s: no address for the VIP of %s: %v", s.Networks[netID].Name, svc.Name, err)
		}
		vips = append(vips, api.VirtualIP{NetworkID: netID, Addr: addr})
	}
	svc.Endpoint.VirtualIPs = vips
	return nil
}

func releaseVIPs(s *State, svc api.Service) error {
	for _, v := range svc.Endpoint.VirtualIPs {
		if err := release(s, v.NetworkID, v.Addr); err != nil {
			return err
		}
	}
	return nil
}

// ensureLBAddrs gives every node an address on the ingress network (its
// ingress sandbox) and on each overlay where it runs a task (its LB
// sandbox), and releases the addresses nodes no longer need.
func ensureLBAddrs(s *State) error {
	need := map[string]map[string]bool{} // network → nodes
	add := func(netID, nodeID string) {
		if need[netID] == nil {
			need[netID] = map[string]bool{}
		}
		need[netID][nodeID] = true
	}
	if ing := ingressID(s); ing != "" {
		for id := range s.Nodes {
			add(ing, id)
		}
	}
	for _, t := range s.Tasks {
		for _, tn := range t.Networks {
			add(tn.NetworkID, t.NodeID)
		}
	}
	for netID, n := range s.Networks {
		before := len(n.LBAddrs)
		if err := syncLBAddrs(s, &n, need[netID]); err != nil {
			return err
		}
		// The record grows with the nodes it serves: one that could no
		// longer be published refuses the write that grows it.
		if len(n.LBAddrs) > before {
			if err := records.CheckSize("network", n.Name, n); err != nil {
				return err
			}
		}
		s.Networks[netID] = n
	}
	return nil
}

func syncLBAddrs(s *State, n *api.Network, nodes map[string]bool) error {
	for node, addr := range n.LBAddrs {
		if nodes[node] {
			continue
		}
		if err := release(s, n.ID, addr); err != nil {
			return err
		}
		delete(n.LBAddrs, node)
	}
	for _, node := range sortedKeys(nodes) {
		if _, ok := n.LBAddrs[node]; ok {
			continue
		}
		addr, err := allocate(s, n.ID)
		if err != nil {
			return api.Conflict("network %s: no address for a load balancer: %v", n.Name, err)
		}
		if n.LBAddrs == nil {
			n.LBAddrs = map[string]string{}
		}
		n.LBAddrs[node] = addr
	}
	return nil
}
