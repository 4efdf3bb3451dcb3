package apiserver

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// The read views: pure functions of the objects and the task reports.

// networkSite is what a node knows of itself for its network views.
type networkSite struct {
	self    string // this node's ID, or its name outside a swarm
	gateway Gateway
	inSwarm bool
	built   func(netID string) bool // the node has the network's namespaces
	// local are the node's bridge networks (the default bridge and
	// network create's), with their endpoints when detail is set.
	local func(detail bool) []api.NetworkResource
}

// gatewayAlias is Docker's name of the gateway bridge, which network
// inspect accepts for it: the tutorials inspect docker_gwbridge.
const gatewayAlias = "docker_gwbridge"

// Docker's bridge options for its gateway bridge.
const (
	optionBridgeName = "com.docker.network.bridge.name"
	optionMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
)

// networkResources are the networks as this node shows them, sorted by
// name: the swarm's it knows, its gateway bridge, host and none. With
// detail (inspect), each has its endpoints on this node and its peers, as
// docker network inspect; without (ls), as docker's list, none.
func networkResources(st records.Objects, site networkSite, detail bool) []api.NetworkResource {
	out := make([]api.NetworkResource, 0, len(st.Networks)+3)
	for _, n := range st.Networks {
		out = append(out, swarmNetwork(st, n, site, detail))
	}
	local := func(name, driver string, created time.Time) api.NetworkResource {
		return api.NetworkResource{Name: name, ID: api.LocalNetworkID(site.self, name), Created: created, Scope: api.ScopeLocal,
			Driver: driver, IPAM: api.IPAM{Driver: "default", Config: []api.IPAMConfig{}},
			Containers: map[string]api.EndpointResource{}, Options: map[string]string{}, Labels: map[string]string{}}
	}
	gw := site.gateway
	if site.inSwarm {
		b := local(gw.Name, api.DriverBridge, gw.Created)
		b.IPAM.Config = []api.IPAMConfig{{Subnet: gw.Subnet.String(), Gateway: gw.Gateway.String()}}
		b.Options = map[string]string{optionBridgeName: gw.Name, optionMasquerade: "true"}
		if detail {
			b.Containers = gatewayEndpoints(st, b.ID, gw, site.built)
		}
		out = append(out, b)
	}
	out = append(out, local(api.HostNetworkName, api.DriverHost, gw.Created), local(api.NoneNetworkName, api.DriverNull, gw.Created))
	if site.local != nil {
		out = append(out, site.local(detail)...)
	}
	slices.SortFunc(out, func(a, b api.NetworkResource) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	return out
}

// swarmNetwork is a swarm network as this node shows it: Containers are
// the endpoints of the tasks whose sandbox is here, and of this node's
// ingress or load-balancer sandbox once built; Peers are the nodes that
// have the network (an address on it), at their underlay address.
func swarmNetwork(st records.Objects, n api.Network, site networkSite, detail bool) api.NetworkResource {
	r := api.NetworkResource{Name: n.Name, ID: n.ID, Created: n.CreatedAt, Scope: n.Scope, Driver: n.Driver,
		IPAM: api.IPAM{Driver: "default", Config: []api.IPAMConfig{{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway,
			AuxAddress: maps.Clone(n.AuxAddresses)}}},
		Internal: n.Internal, Attachable: n.Attachable, Ingress: n.Ingress,
		Containers: map[string]api.EndpointResource{}, Options: map[string]string{api.OptionVXLANIDs: strconv.FormatUint(uint64(n.VNI), 10)},
		Labels: map[string]string{}}
	if !detail {
		return r
	}
	for id := range site.gateway.Tasks {
		t, ok := st.Tasks[id]
		if !ok {
			continue // draining out of the desired state
		}
		for _, tn := range t.Networks {
			if tn.NetworkID == n.ID {
				r.Containers[t.ContainerID()] = endpoint(n.ID, t.ContainerID(), api.ContainerName(t), tn.Addr)
			}
		}
	}
	// This node's engine containers on the overlay (network connect).
	for _, t := range st.Tasks {
		if !t.IsAttachment() || t.NodeID != site.self {
			continue
		}
		for _, tn := range t.Networks {
			if tn.NetworkID == n.ID {
				r.Containers[t.ContainerID()] = endpoint(n.ID, t.ContainerID(), api.ContainerName(t), tn.Addr)
			}
		}
	}
	if addr := n.LBAddrs[site.self]; addr != "" && site.built(n.ID) {
		key, name := "lb-"+n.Name, n.Name+"-endpoint"
		if n.Ingress {
			key, name = api.IngressSandboxKey, api.IngressEndpoint
		}
		r.Containers[key] = endpoint(n.ID, key, name, addr)
	}
	for _, id := range slices.Sorted(maps.Keys(n.LBAddrs)) {
		if node, ok := st.Nodes[id]; ok {
			r.Peers = append(r.Peers, api.PeerInfo{Name: api.PeerName(id, node.Hostname), IP: node.Addr})
		}
	}
	return r
}

// gatewayEndpoints are the gateway bridge's endpoints: the ingress
// sandbox's once the ingress network is built here, and each task's with
// a gateway link, keyed by container ID as Docker keys them.
func gatewayEndpoints(st records.Objects, netID string, gw Gateway, built func(string) bool) map[string]api.EndpointResource {
	eps := map[string]api.EndpointResource{}
	bits := gw.Subnet.Bits()
	for _, n := range st.Networks {
		if n.Ingress && built(n.ID) && gw.Ingress.IsValid() {
			eps[api.IngressSandboxKey] = endpoint(netID, api.IngressSandboxKey, api.GatewayIngressName, netip.PrefixFrom(gw.Ingress, bits).String())
		}
	}
	for id, addr := range gw.Tasks {
		if !addr.IsValid() {
			continue // internal networks only: no way out
		}
		cid := api.Task{ID: id}.ContainerID()
		if t, ok := st.Tasks[id]; ok {
			cid = t.ContainerID() // a restarted container's is its first task's
		}
		eps[cid] = endpoint(netID, cid, "gateway_"+cid[:12], netip.PrefixFrom(addr, bits).String())
	}
	return eps
}

// endpoint is one entry of Containers; its MAC derives from its address
// as the kernel's does (ipam.MAC).
func endpoint(netID, key, name, cidr string) api.EndpointResource {
	ep := api.EndpointResource{Name: name, EndpointID: api.EndpointID(netID, key), IPv4Address: cidr}
	if p, err := netip.ParsePrefix(cidr); err == nil {
		ep.MacAddress = ipam.MAC(p.Addr()).String()
	}
	return ep
}

// serviceView returns services sorted by name with their running count
// and how many of those are reachable: programmed by every ready node
// that needs them (see [api.Service.SendingNodes]), as the nodes report it.
func serviceView(st records.Objects, statuses map[string]api.TaskStatus, programmed map[string]map[string][]string, ready map[string]bool) []api.Service {
	out := st.ServicesByName()
	for i, s := range out {
		s.Running, s.Reachable = 0, 0
		nodes := s.SendingNodes(st.Tasks, ready)
		for _, t := range st.Tasks {
			if t.ServiceID != s.ID || !t.Current() || statuses[t.ID].State != api.TaskRunning {
				continue
			}
			s.Running++
			if api.ProgrammedBy(programmed[s.ID], nodes, t.ID) {
				s.Reachable++
			}
		}
		out[i] = s
	}
	return out
}

// taskView returns tasks with their reported status and node name,
// sorted by service, then slot (node, for a global service's). A task shut down keeps the status the
// manager stored: its node forgets the task once it stopped it.
func taskView(st records.Objects, statuses map[string]api.TaskStatus) []api.Task {
	out := make([]api.Task, 0, len(st.Tasks))
	for _, t := range st.Tasks {
		if t.IsAttachment() {
			continue // the engine's container shows itself, with its overlays
		}
		if t.Current() || t.Status.State == "" {
			t.Status = statuses[t.ID]
		}
		if t.Status.State == "" {
			t.Status.State = api.TaskAssigned
		}
		t.NodeName = st.Nodes[t.NodeID].Hostname
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b api.Task) int {
		if c := strings.Compare(a.ServiceName, b.ServiceName); c != 0 {
			return c
		}
		if a.Slot != b.Slot {
			return a.Slot - b.Slot
		}
		// A global service's slot is its node: its tasks group by node.
		if a.Slot == 0 {
			if c := cmp.Or(strings.Compare(a.NodeName, b.NodeName), strings.Compare(a.NodeID, b.NodeID)); c != 0 {
				return c
			}
		}
		return historyOrder(a, b)
	})
	return out
}

// currentName is the name a task is found by: www.1 names the slot's
// current task; its history is found by ID only.
func currentName(t api.Task) string {
	if t.Current() {
		return t.Name()
	}
	return ""
}

// historyOrder puts a slot's current task first, then its history, the
// newest first (the manager's order: a slot's restart count never goes
// down).
func historyOrder(a, b api.Task) int {
	if a.Current() != b.Current() {
		if a.Current() {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(b.Restarts, a.Restarts), b.CreatedAt.Compare(a.CreatedAt), strings.Compare(a.ID, b.ID))
}

// describeNamespace tells what a namespace file name stands for: its kind
// and the object that owns it.
func describeNamespace(st records.Objects, name string) (kind, owner string) {
	switch {
	case name == "ingress_sbox":
		return "ingress", api.IngressName
	case strings.HasPrefix(name, "1-"):
		return "overlay", networkByIDPrefix(st, name[2:])
	case strings.HasPrefix(name, "lb_"):
		return "lb", networkByIDPrefix(st, name[3:])
	}
	for _, t := range st.Tasks {
		if t.Hostname() == name {
			return "task", t.Name()
		}
	}
	return "", ""
}

func networkByIDPrefix(st records.Objects, prefix string) string {
	for id, n := range st.Networks {
		if strings.HasPrefix(id, prefix) {
			return n.Name
		}
	}
	return ""
}
