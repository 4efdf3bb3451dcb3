package container

import (
	"net/netip"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
)

// The desired kernel state, as pure functions of the engine's state and
// of which containers run.

// bridgeRules are the host rules: every network's masquerade and
// isolation, and the published ports of the running containers, DNATed
// to their address on their first network, as Docker does.
func bridgeRules(st state, running map[string]bool) lb.BridgeRules {
	var out lb.BridgeRules
	bridges := map[string]string{}
	for _, n := range st.Networks {
		bridges[n.ID] = n.Bridge
		out.Networks = append(out.Networks, lb.BridgeNetwork{Bridge: n.Bridge, Subnet: n.IPAM.Subnet, Internal: n.Internal})
	}
	for _, c := range st.Containers {
		sa := c.Task.Standalone
		if !running[c.Task.ID] || sa == nil || len(c.Task.Networks) == 0 {
			continue
		}
		first := c.Task.Networks[0]
		for _, p := range sa.Ports {
			hostIP, _ := netip.ParseAddr(p.HostIP)
			out.Ports = append(out.Ports, lb.BridgePort{Proto: p.Proto, HostIP: hostIP, HostPort: p.HostPort,
				Bridge: bridges[first.NetworkID], Dest: api.AddrOf(first.Addr), Port: p.Port})
		}
	}
	return out
}

// dnsEndpoints are the names the containers' resolvers answer: on
// user-defined networks only (the default bridge has none, as Docker's),
// for running containers. A container answers to its name, its aliases
// on that network, and its short ID; the PTR answer is its name when one
// was given, else its first alias (the slides' hello.prod).
func dnsEndpoints(st state, running map[string]bool) []dns.Endpoint {
	isDefault := map[string]bool{}
	for _, n := range st.Networks {
		isDefault[n.ID] = n.Default
	}
	var out []dns.Endpoint
	for _, c := range st.Containers {
		t := c.Task
		if !running[t.ID] || t.Standalone == nil {
			continue
		}
		for _, tn := range t.Networks {
			if isDefault[tn.NetworkID] {
				continue
			}
			ep := dns.Endpoint{NetworkID: tn.NetworkID, Network: tn.NetworkName, IP: api.AddrOf(tn.Addr)}
			ep.TaskAliases = append(ep.TaskAliases, tn.Aliases...)
			if c.Named {
				ep.TaskName = t.Standalone.Name
			} else {
				ep.TaskAliases = append(ep.TaskAliases, t.Standalone.Name)
			}
			ep.TaskAliases = append(ep.TaskAliases, t.ContainerID()[:12])
			out = append(out, ep)
		}
	}
	return out
}

// querier is what a container's resolver may see: its user-defined
// bridge networks, in connection order, then its overlays.
func querier(st state, c *container) dns.Querier {
	isDefault := map[string]bool{}
	for _, n := range st.Networks {
		isDefault[n.ID] = n.Default
	}
	var q dns.Querier
	for _, tn := range c.Task.Networks {
		if !isDefault[tn.NetworkID] {
			q.Networks = append(q.Networks, tn.NetworkID)
		}
	}
	for _, tn := range c.Overlays {
		q.Networks = append(q.Networks, tn.NetworkID)
	}
	return q
}
