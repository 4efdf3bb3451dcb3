package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/overlay"
)

// The pure half of the agent: what this node must have, computed from the
// desired objects and the tables. Nothing here touches the kernel.

// Names of the load-balancing sandboxes, as Swarm names them, and the
// first fwmark.
const (
	ingressSandbox  = "ingress_sbox"
	lbSandboxPrefix = "lb_"
	lbSandboxIDLen  = 9
	firstFWMark     = 0x100 // per node, one per (service, network), never reused
	ingressGWVeth   = "gwingress"
	// A sandbox's interface on its overlay, and the ingress sandbox's on
	// mesh_gwbridge.
	sandboxIf   = "eth0"
	ingressGWIf = "eth1"
)

// tasksOf returns the tasks the objects assign to node.
func tasksOf(st records.Objects, node string) map[string]api.Task {
	out := map[string]api.Task{}
	for id, t := range st.Tasks {
		if t.NodeID == node && t.DesiredState == api.TaskRunning {
			out[id] = t
		}
	}
	return out
}

// neededNetworks: the ingress network always, and every network a
// desired or running (draining) task is attached to. A network gone from
// the objects stays while a task needs it (built: what this node built).
func neededNetworks(st records.Objects, desired, running map[string]api.Task, built map[string]api.Network) map[string]api.Network {
	out := map[string]api.Network{}
	for id, n := range st.Networks {
		if n.Ingress {
			out[id] = n
		}
	}
	for _, tasks := range []map[string]api.Task{desired, running} {
		for _, t := range tasks {
			for _, tn := range t.Networks {
				if n, ok := st.Networks[tn.NetworkID]; ok {
					out[n.ID] = n
				} else if n, ok := built[tn.NetworkID]; ok {
					out[n.ID] = n
				}
			}
		}
	}
	return out
}

// networksReady says whether every network of t is built.
func networksReady(t api.Task, built map[string]api.Network) bool {
	for _, tn := range t.Networks {
		if _, ok := built[tn.NetworkID]; !ok {
			return false
		}
	}
	return true
}

// overlayNetwork is the overlay library's view of a network object.
func overlayNetwork(n api.Network) (overlay.Network, error) {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return overlay.Network{}, fmt.Errorf("network %s subnet %q: %w", n.Name, n.Subnet, err)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		return overlay.Network{}, fmt.Errorf("network %s gateway %q: %w", n.Name, n.Gateway, err)
	}
	return overlay.Network{ID: n.ID, VNI: n.VNI, Subnet: subnet, Gateway: gw}, nil
}

func overlayPeers(ps []records.Peer) []overlay.Peer {
	out := make([]overlay.Peer, 0, len(ps))
	for _, p := range ps {
		out = append(out, overlay.Peer{IP: p.IP, MAC: p.MAC, VTEP: p.VTEP})
	}
	return out
}

func lbSandboxName(n api.Network) string {
	if n.Ingress {
		return ingressSandbox
	}
	id := n.ID
	if len(id) > lbSandboxIDLen {
		id = id[:lbSandboxIDLen]
	}
	return lbSandboxPrefix + id
}

// sandboxEndpointID names a node's sandbox endpoint on a network.
func sandboxEndpointID(netID, node string) string { return "lb-" + netID + "-" + node }

// marks hands out this node's fwmarks: one per (service, network) key,
// from 0x100 up, never reused while meshd runs.
type marks struct {
	next uint32
	by   map[string]uint32
}

func newMarks() marks { return marks{next: firstFWMark, by: map[string]uint32{}} }

func (m *marks) For(key string) uint32 {
	if v, ok := m.by[key]; ok {
		return v
	}
	v := m.next
	m.next++
	m.by[key] = v
	return v
}

// reachable drops the endpoints of other nodes whose address has no peer
// entry (ARP and FDB) on this node yet: an endpoint and its peer are
// separate gossip entries and may arrive in either order, and a backend
// whose peer is missing takes connections that go nowhere. peered holds,
// for each network this node has built, the remote addresses programmed;
// endpoints on other networks have no use here and are kept as they are.
func reachable(eps []records.EndpointEntry, peered map[string]map[netip.Addr]bool, self string) []records.EndpointEntry {
	out := eps[:0:0]
	for _, e := range eps {
		if ips, built := peered[e.Network]; built && e.Owner != self && !ips[e.IP] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// sandboxModel computes what a sandbox must do: every service with a VIP
// on the network (and, in the ingress sandbox, every published port),
// with the backends the endpoint table lists for that network (eps may
// hold every network's).
func sandboxModel(st records.Objects, n api.Network, own netip.Addr, eps []records.EndpointEntry, mark func(string) uint32) lb.Sandbox {
	subnet, _ := netip.ParsePrefix(n.Subnet)
	model := lb.Sandbox{Kind: lb.SandboxLB, OwnAddr: own, Subnet: subnet.Masked(), Ifaces: []string{sandboxIf}}
	if n.Ingress {
		model.Kind = lb.SandboxIngress
		model.Ifaces = append(model.Ifaces, ingressGWIf)
	}
	backends := map[string][]lb.Backend{}
	for _, e := range eps {
		if e.Network != n.ID {
			continue
		}
		w := 1
		if e.Draining {
			w = 0
		}
		backends[e.ServiceID] = append(backends[e.ServiceID], lb.Backend{Addr: e.IP, Weight: w})
	}
	for _, svc := range st.ServicesByName() {
		s := lb.Service{Key: svc.ID + "/" + n.ID, Name: svc.Name, VIP: vipOn(svc, n.ID)}
		if n.Ingress {
			s.Ports = ingressPorts(svc)
			if len(s.Ports) == 0 {
				continue
			}
		} else if !s.VIP.IsValid() {
			continue
		}
		s.FWMark = mark(s.Key)
		s.Backends = backends[svc.ID]
		slices.SortFunc(s.Backends, func(x, y lb.Backend) int { return x.Addr.Compare(y.Addr) })
		model.Services = append(model.Services, s)
	}
	return model
}

// vipOn is a service's VIP on a network, invalid when it has none.
func vipOn(svc api.Service, netID string) netip.Addr {
	for _, v := range svc.Endpoint.VirtualIPs {
		if v.NetworkID == netID {
			return api.AddrOf(v.Addr)
		}
	}
	return netip.Addr{}
}

// vips are the /32s a sandbox's eth0 must hold, sorted.
func vips(model lb.Sandbox) []netip.Addr {
	var out []netip.Addr
	for _, s := range model.Services {
		if s.VIP.IsValid() {
			out = append(out, s.VIP)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// ingressFirst orders networks so that the ingress sandbox takes the
// first fwmarks, as in the tutorials (0x100 for the first published port).
func ingressFirst(nets map[string]api.Network) []api.Network {
	out := make([]api.Network, 0, len(nets))
	for _, n := range nets {
		out = append(out, n)
	}
	slices.SortFunc(out, func(x, y api.Network) int {
		if x.Ingress != y.Ingress {
			if x.Ingress {
				return -1
			}
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
	return out
}

func ingressPorts(svc api.Service) []lb.Port {
	var out []lb.Port
	for _, p := range svc.Endpoint.Ports {
		if p.PublishMode == api.PublishIngress {
			out = append(out, lb.Port{Proto: p.Protocol, Published: p.PublishedPort, Target: p.TargetPort})
		}
	}
	return out
}

// hostRules are the node's own rules: every ingress port to the ingress
// sandbox, and the mode=host ports of the tasks running here and the
// ports of its containers on swarm networks (gw: each
// local task's address on mesh_gwbridge, by task ID).
func hostRules(st records.Objects, ingressGW netip.Addr, egress netip.Prefix, local map[string]api.Task, gw map[string]netip.Addr) lb.HostRules {
	h := lb.HostRules{IngressGW: ingressGW, Egress: egress}
	for _, svc := range st.ServicesByName() {
		h.Published = append(h.Published, ingressPorts(svc)...)
	}
	for id, t := range local {
		addr, ok := gw[id]
		if !ok {
			continue
		}
		for _, p := range st.Services[t.ServiceID].Endpoint.Ports {
			if p.PublishMode == api.PublishHost {
				h.HostPorts = append(h.HostPorts, lb.HostPort{Port: lb.Port{Proto: p.Protocol,
					Published: p.PublishedPort, Target: p.TargetPort}, Dest: addr})
			}
		}
		// A container on a swarm network publishes as a task in host mode
		// does: its node's port to its address on mesh_gwbridge.
		if t.Standalone != nil {
			for _, p := range t.Standalone.Ports {
				h.HostPorts = append(h.HostPorts, lb.HostPort{Port: lb.Port{Proto: p.Proto,
					Published: p.HostPort, Target: p.Port}, Dest: addr})
			}
		}
	}
	slices.SortFunc(h.HostPorts, func(x, y lb.HostPort) int { return int(x.Published) - int(y.Published) })
	return h
}

// taskRules are a task's own rules: its resolver on 127.0.0.11:53, and
// the redirect of its published ports to its target ports for traffic
// reaching it on the ingress network.
func taskRules(st records.Objects, t api.Task, dnsPorts lb.DNSPorts) lb.TaskRules {
	tr := lb.TaskRules{Redirects: ingressPorts(st.Services[t.ServiceID]), DNS: dnsPorts}
	for _, tn := range t.Networks {
		if n, ok := st.Networks[tn.NetworkID]; ok && n.Ingress {
			tr.Addr = api.AddrOf(tn.Addr)
		}
	}
	return tr
}

// shortID is a task's container ID as docker shortens it: its
// sandbox's name, and a standalone container's name in DNS (a
// container's --hostname may be anything, so it names neither).
func shortID(t api.Task) string {
	id := t.ContainerID()
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// endpointRecords computes a task's endpoint_table entries, by network.
// A standalone container's name them with no service: its name, its
// aliases on the network and its short ID, which dnsTable gives it as
// its own names (see [dns.Endpoint.TaskAliases]).
func endpointRecords(t api.Task, st records.Objects) map[string]records.Endpoint {
	out := map[string]records.Endpoint{}
	if t.Standalone != nil {
		for _, tn := range t.Networks {
			out[tn.NetworkID] = records.Endpoint{Name: t.Standalone.Name, IP: api.AddrOf(tn.Addr),
				Aliases: append(slices.Clone(tn.Aliases), shortID(t))}
		}
		return out
	}
	svc := st.Services[t.ServiceID]
	for _, tn := range t.Networks {
		if tn.Connected {
			// network connect's: Docker names the container there by its
			// name, aliases and short ID, and its service not at all.
			out[tn.NetworkID] = records.Endpoint{Name: api.ContainerName(t), IP: api.AddrOf(tn.Addr),
				Aliases: append(slices.Clone(tn.Aliases), shortID(t))}
			continue
		}
		rec := records.Endpoint{Name: api.ContainerName(t), Service: t.ServiceName, ServiceID: t.ServiceID,
			IP: api.AddrOf(tn.Addr), VIP: vipOn(svc, tn.NetworkID)}
		for _, a := range svc.Networks {
			if a.Target == tn.NetworkID {
				rec.Aliases = a.Aliases
			}
		}
		for _, p := range svc.Endpoint.Ports {
			if p.PublishMode == api.PublishIngress {
				rec.Ports = append(rec.Ports, p)
			}
		}
		out[tn.NetworkID] = rec
	}
	return out
}

// dnsTable builds the embedded DNS's records from every network's
// endpoints; draining tasks are no longer named.
func dnsTable(st records.Objects, eps []records.EndpointEntry) *dns.Table {
	var out []dns.Endpoint
	for _, e := range eps {
		if e.Draining {
			continue
		}
		n := st.Networks[e.Network]
		if e.ServiceID == "" {
			// A standalone container's: its aliases are its own names.
			out = append(out, dns.Endpoint{NetworkID: e.Network, Network: n.Name, Ingress: n.Ingress,
				TaskName: e.Name, IP: e.IP, TaskAliases: e.Aliases})
			continue
		}
		out = append(out, dns.Endpoint{NetworkID: e.Network, Network: n.Name, Ingress: n.Ingress,
			Service: e.Service, TaskName: e.Name, IP: e.IP, VIP: e.VIP, Aliases: e.Aliases})
	}
	return dns.NewTable(out)
}

// querier lists the networks whose names a task sees, in attach order;
// the ingress network has no names.
func querier(t api.Task, st records.Objects) dns.Querier {
	var q dns.Querier
	for _, tn := range t.Networks {
		if n, ok := st.Networks[tn.NetworkID]; ok && n.Ingress {
			continue
		}
		q.Networks = append(q.Networks, tn.NetworkID)
	}
	return q
}

// wantsGateway says whether a task gets its way out through the gateway
// bridge: not when its networks are all internal, and not for a
// standalone container on no network at all (network disconnect took its
// last), which has its loopback only, as Docker's. A service's task on no
// network still goes out.
func wantsGateway(t api.Task, st records.Objects) bool {
	if t.Standalone != nil && len(t.Networks) == 0 {
		return false
	}
	return !internalOnly(t, st)
}

// internalOnly: a task whose networks are all internal gets no gateway.
func internalOnly(t api.Task, st records.Objects) bool {
	if len(t.Networks) == 0 {
		return false
	}
	for _, tn := range t.Networks {
		if !st.Networks[tn.NetworkID].Internal {
			return false
		}
	}
	return true
}

// gatewayVethName names the host end of a task's gateway veth: "gw" and
// ten characters of the task ID fit IFNAMSIZ.
func gatewayVethName(taskID string) string {
	if len(taskID) > 10 {
		taskID = taskID[:10]
	}
	return "gw" + taskID
}
