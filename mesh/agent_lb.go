package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/nshandle"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/overlay"
	"github.com/vishvananda/netlink"
)

// Names of the load-balancing sandboxes, as Swarm names them.
const (
	ingressSandbox  = "ingress_sbox"
	lbSandboxPrefix = "lb_"
	firstFWMark     = 0x100 // per node, one per (service, network), never reused
	ingressGWVeth   = "gwingress"
)

// lbSandbox is a load-balancing namespace this node built.
type lbSandbox struct {
	netID string
	path  string
	addr  netip.Prefix // this node's address on the network (eth0)
	vips  []netip.Addr // the /32s currently on eth0
	plane lb.DataPlane
}

func lbSandboxName(n api.Network) string {
	if n.Ingress {
		return ingressSandbox
	}
	id := n.ID
	if len(id) > 9 {
		id = id[:9]
	}
	return lbSandboxPrefix + id
}

// sandboxEndpointID names a sandbox's endpoint on its network.
func (a *agent) sandboxEndpointID(netID string) string { return "lb-" + netID + "-" + a.d.id.ID }

// markFor returns the fwmark of (service, network) on this node.
func (a *agent) markFor(key string) uint32 {
	if m, ok := a.marks[key]; ok {
		return m
	}
	m := a.nextMark
	a.nextMark++
	a.marks[key] = m
	return m
}

// reconcileSandboxes builds and syncs the ingress sandbox and the LB
// sandboxes of the networks this node has tasks on. It runs before new
// tasks start, so a task's first connection to a VIP finds its balancer.
func (a *agent) reconcileSandboxes(ctx context.Context, st State, needed map[string]api.Network) {
	for _, n := range ingressFirst(needed) {
		sb, err := a.ensureSandbox(ctx, n)
		if err != nil {
			a.d.log.Error("build load-balancer sandbox", "network", n.Name, "err", err)
			continue
		}
		if sb == nil {
			continue // no address allocated here yet
		}
		model := a.sandboxModel(st, n, sb)
		if err := a.syncVIPs(sb, model); err != nil {
			a.d.log.Error("sandbox VIPs", "network", n.Name, "err", err)
		}
		if err := sb.plane.Sync(ctx, model); err != nil {
			a.d.log.Error("sync data plane", "network", n.Name, "sandbox", filepath.Base(sb.path), "err", err)
		}
	}
	for id, sb := range a.sboxes {
		if _, ok := needed[id]; !ok && !a.frozen {
			a.removeLBSandbox(sb)
		}
	}
	a.publishPlanes(st)
}

// syncRules makes the host's rules and every task's own rules match: they
// depend on the tasks running here, so they follow the task changes.
func (a *agent) syncRules(ctx context.Context, st State) {
	if err := a.host.Sync(ctx, a.hostRules(st)); err != nil {
		a.d.log.Error("host rules", "err", err)
	}
	for _, lt := range a.tasks {
		if lt.rules == nil {
			continue
		}
		if err := lt.rules.Sync(ctx, taskRules(st, lt)); err != nil {
			a.d.log.Error("task rules", "task", lt.spec.Name(), "err", err)
		}
	}
}

// ensureSandbox builds a network's load-balancing namespace: eth0 on the
// network with this node's address, and for ingress eth1 on the gateway
// bridge with the default route.
func (a *agent) ensureSandbox(ctx context.Context, n api.Network) (*lbSandbox, error) {
	addr, err := netip.ParsePrefix(n.LBAddrs[a.d.id.ID])
	if err != nil {
		return nil, nil
	}
	sb := a.sboxes[n.ID]
	if sb == nil {
		sb = &lbSandbox{netID: n.ID, path: filepath.Join(a.nsDir, lbSandboxName(n)), addr: addr}
	}
	if _, err := nsfile.Ensure(sb.path); err != nil {
		return nil, err
	}
	ep := overlay.Endpoint{ID: a.sandboxEndpointID(n.ID), IP: addr.Addr(), MAC: ipam.MAC(addr.Addr()), Sandbox: sb.path, IfName: "eth0"}
	if err := a.ov.EnsureEndpoint(n.ID, ep); err != nil {
		return nil, err
	}
	if n.Ingress && a.sboxes[n.ID] == nil {
		if err := a.gw.Attach(sb.path, "eth1", ingressGWVeth, a.ingressGW); err != nil {
			return nil, err
		}
	}
	rec, _ := json.Marshal(peerRecord{IP: addr.Addr().String(), MAC: ipam.MAC(addr.Addr()).String(), VTEP: a.d.cfg.AdvertiseAddr.String()})
	if e, ok := a.d.db.Get(tableOverlayPeer, n.ID, a.sandboxEndpointID(n.ID)); !ok || string(e.Value) != string(rec) {
		if err := a.d.db.Put(tableOverlayPeer, n.ID, a.sandboxEndpointID(n.ID), rec); err != nil {
			return nil, fmt.Errorf("announce sandbox: %w", err)
		}
	}
	if sb.plane == nil {
		if sb.plane, err = lb.NewDataPlane(a.d.dataPlane, sb.path, lb.WithTimeouts(a.d.cfg.IPVSTimeouts)); err != nil {
			return nil, err
		}
	}
	a.sboxes[n.ID] = sb
	return sb, nil
}

// sandboxModel computes what a sandbox must do: every service with a VIP
// on the network (and, in the ingress sandbox, every published port),
// with the backends the endpoint table lists.
func (a *agent) sandboxModel(st State, n api.Network, sb *lbSandbox) lb.Sandbox {
	subnet, _ := netip.ParsePrefix(n.Subnet)
	model := lb.Sandbox{Kind: lb.SandboxLB, OwnAddr: sb.addr.Addr(), Subnet: subnet.Masked()}
	if n.Ingress {
		model.Kind = lb.SandboxIngress
	}
	backends := map[string][]lb.Backend{}
	for _, e := range a.d.db.List(tableEndpoints, n.ID) {
		var r endpointRecord
		if json.Unmarshal(e.Value, &r) != nil {
			continue
		}
		if ip, err := netip.ParseAddr(r.IP); err == nil {
			w := 1
			if r.Draining {
				w = 0
			}
			backends[r.ServiceID] = append(backends[r.ServiceID], lb.Backend{Addr: ip, Weight: w})
		}
	}
	for _, svc := range sortedServices(st) {
		s := lb.Service{Key: svc.ID + "/" + n.ID, Name: svc.Name}
		for _, v := range svc.Endpoint.VirtualIPs {
			if v.NetworkID == n.ID {
				s.VIP, _ = netip.ParseAddr(addrOf(v.Addr))
			}
		}
		if n.Ingress {
			s.Ports = ingressPorts(svc)
			if len(s.Ports) == 0 {
				continue
			}
		} else if !s.VIP.IsValid() {
			continue
		}
		s.FWMark = a.markFor(s.Key)
		s.Backends = backends[svc.ID]
		slices.SortFunc(s.Backends, func(x, y lb.Backend) int { return x.Addr.Compare(y.Addr) })
		model.Services = append(model.Services, s)
	}
	return model
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

func sortedServices(st State) []api.Service {
	out := make([]api.Service, 0, len(st.Services))
	for _, s := range st.Services {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y api.Service) int { return strings.Compare(x.Name, y.Name) })
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

// syncVIPs puts the services' VIPs on the sandbox's eth0 as /32s and
// removes the ones no longer wanted.
func (a *agent) syncVIPs(sb *lbSandbox, model lb.Sandbox) error {
	var want []netip.Addr
	for _, s := range model.Services {
		if s.VIP.IsValid() {
			want = append(want, s.VIP)
		}
	}
	slices.SortFunc(want, netip.Addr.Compare)
	if slices.Equal(want, sb.vips) {
		return nil
	}
	h, err := nshandle.Open(sb.path)
	if err != nil {
		return err
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("find eth0 in %s: %w", sb.path, err)
	}
	for _, v := range want {
		if err := h.AddrReplace(eth0, host32(v)); err != nil {
			return fmt.Errorf("add VIP %s: %w", v, err)
		}
	}
	for _, v := range sb.vips {
		if !slices.Contains(want, v) {
			_ = h.AddrDel(eth0, host32(v)) // gone already is fine
		}
	}
	sb.vips = want
	return nil
}

func host32(ip netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}}
}

// removeLBSandbox takes down a load-balancing sandbox no longer needed.
func (a *agent) removeLBSandbox(sb *lbSandbox) {
	if sb.plane != nil {
		_ = sb.plane.Close()
	}
	if err := a.d.db.Delete(tableOverlayPeer, sb.netID, a.sandboxEndpointID(sb.netID)); err != nil {
		a.d.log.Debug("withdraw sandbox peer", "err", err)
	}
	if err := a.ov.RemoveEndpoint(sb.netID, a.sandboxEndpointID(sb.netID)); err != nil {
		a.d.log.Warn("detach sandbox", "sandbox", filepath.Base(sb.path), "err", err)
	}
	if err := nsfile.Remove(sb.path); err != nil {
		a.d.log.Warn("remove sandbox", "sandbox", filepath.Base(sb.path), "err", err)
	}
	delete(a.sboxes, sb.netID)
}

// hostRules are the node's own rules: every ingress port to the ingress
// sandbox, and the mode=host ports of the tasks running here.
func (a *agent) hostRules(st State) lb.HostRules {
	h := lb.HostRules{IngressGW: a.ingressGW, Egress: a.gw.Subnet}
	for _, svc := range sortedServices(st) {
		h.Published = append(h.Published, ingressPorts(svc)...)
	}
	for _, lt := range a.tasks {
		svc := st.Services[lt.spec.ServiceID]
		for _, p := range svc.Endpoint.Ports {
			if p.PublishMode == api.PublishHost && lt.gwAddr.IsValid() {
				h.HostPorts = append(h.HostPorts, lb.HostPort{Port: lb.Port{Proto: p.Protocol,
					Published: p.PublishedPort, Target: p.TargetPort}, Dest: lt.gwAddr})
			}
		}
	}
	slices.SortFunc(h.HostPorts, func(x, y lb.HostPort) int { return int(x.Published) - int(y.Published) })
	return h
}

// taskRules are a task's own rules: its resolver on 127.0.0.11:53, and
// the redirect of its published ports to its target ports for traffic
// reaching it on the ingress network.
func taskRules(st State, lt *localTask) lb.TaskRules {
	t := lt.spec
	svc := st.Services[t.ServiceID]
	tr := lb.TaskRules{Redirects: ingressPorts(svc), DNS: lt.dnsPorts}
	for _, tn := range t.Networks {
		if n, ok := st.Networks[tn.NetworkID]; ok && n.Ingress {
			tr.Addr, _ = netip.ParseAddr(addrOf(tn.Addr))
		}
	}
	return tr
}

// publishPlanes records the sandboxes for meshctl lb ls.
func (a *agent) publishPlanes(st State) {
	var views []planeView
	for _, n := range ingressFirst(st.Networks) {
		if sb, ok := a.sboxes[n.ID]; ok {
			views = append(views, planeView{sandbox: filepath.Base(sb.path), network: n.Name, plane: sb.plane})
		}
	}
	a.mu.Lock()
	a.planes = views
	a.mu.Unlock()
}

// lbTables returns every sandbox's ipvsadm-shaped table.
func (a *agent) lbTables() []api.LBTable {
	a.mu.Lock()
	views := a.planes
	a.mu.Unlock()
	out := make([]api.LBTable, 0, len(views))
	for _, v := range views {
		t := api.LBTable{Sandbox: v.sandbox, Network: v.network, DataPlane: string(a.d.dataPlane)}
		text, err := v.plane.Table()
		if err != nil {
			t.Error = err.Error()
		}
		t.Table = text
		out = append(out, t)
	}
	return out
}
