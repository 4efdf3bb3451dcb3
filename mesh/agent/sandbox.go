package agent

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/overlay"
)

// lbSandbox is a load-balancing namespace this node built.
type lbSandbox struct {
	netID string
	path  string
	addr  netip.Prefix // this node's address on the network (eth0)
	vips  []netip.Addr // the /32s currently on eth0
	plane lb.DataPlane
	// checkStack: the kernel reported a change in the namespace, so the
	// VIPs and the gateway link are compared with the kernel, not with
	// what was last set.
	checkStack bool
	// flow is the plane's FlowOffload as last logged.
	flow string
}

// reconcileSandboxes builds and syncs the ingress sandbox and the LB
// sandboxes of the networks this node has tasks on, and returns the
// networks whose sandbox is in step, and the time their data planes took
// to sync. It runs before new tasks start, so a task's first connection to
// a VIP finds its balancer.
func (a *Agent) reconcileSandboxes(ctx context.Context, st records.Objects, needed map[string]api.Network, eps []records.EndpointEntry) (synced map[string]bool, took time.Duration) {
	synced = map[string]bool{}
	for _, n := range ingressFirst(needed) {
		sb, err := a.ensureSandbox(n)
		if err != nil {
			a.log.Error("build load-balancer sandbox", "network", n.Name, "err", err)
			continue
		}
		if sb == nil {
			continue // no address allocated here yet
		}
		model := sandboxModel(st, n, sb.addr.Addr(), eps, a.marks.For)
		if err := a.syncVIPs(sb, vips(model)); err != nil {
			a.log.Error("sandbox VIPs", "network", n.Name, "err", err)
		}
		start := time.Now()
		a.watchRebuild(sb.plane, sb.path, map[string]string{"network": n.Name}, func() { err = sb.plane.Sync(ctx, model) })
		took += time.Since(start)
		if err != nil {
			a.log.Error("sync data plane", "network", n.Name, "sandbox", filepath.Base(sb.path), "err", err)
			continue
		}
		synced[n.ID] = true
		// Said once, and again when it changes: whether a flowtable
		// carries the sandbox's connections, or why none can.
		if f := sb.plane.FlowOffload(); f != sb.flow && (sb.flow != "" || f != "off") {
			a.log.Info("flow offload", "network", n.Name, "sandbox", filepath.Base(sb.path), "state", f)
			sb.flow = f
		}
	}
	for id, sb := range a.sboxes {
		if _, ok := needed[id]; !ok {
			a.removeLBSandbox(sb)
		}
	}
	a.publishPlanes(st)
	return synced, took
}

// syncRules makes the host's rules and every task's own rules match: they
// depend on the tasks running here, so they follow the task changes.
func (a *Agent) syncRules(ctx context.Context, st records.Objects) {
	local, gw := map[string]api.Task{}, map[string]netip.Addr{}
	for id, lt := range a.tasks {
		local[id] = lt.spec
		if lt.gwAddr.IsValid() {
			gw[id] = lt.gwAddr
		}
	}
	a.watchRebuild(a.host, "", nil, func() {
		if err := a.host.Sync(ctx, hostRules(st, a.ingressGW, a.cfg.GatewaySubnet, local, gw)); err != nil {
			a.log.Error("host rules", "err", err)
		}
	})
	for _, lt := range a.tasks {
		if lt.rules == nil {
			continue
		}
		a.watchRebuild(lt.rules, lt.sandbox, map[string]string{"task": lt.spec.Name()}, func() {
			if err := lt.rules.Sync(ctx, taskRules(st, lt.spec, lt.dnsPorts)); err != nil {
				a.log.Error("task rules", "task", lt.spec.Name(), "err", err)
			}
		})
	}
}

// ensureSandbox builds a network's load-balancing namespace: eth0 on the
// network with this node's address, and for ingress eth1 on the gateway
// bridge with the default route. It returns nil when the manager has not
// given this node an address on the network yet.
func (a *Agent) ensureSandbox(n api.Network) (*lbSandbox, error) {
	addr, err := netip.ParsePrefix(n.LBAddrs[a.cfg.NodeID])
	if err != nil {
		return nil, nil
	}
	sb := a.sboxes[n.ID]
	if sb == nil {
		sb = &lbSandbox{netID: n.ID, path: filepath.Join(a.nsDir, lbSandboxName(n)), addr: addr}
	}
	if err := a.cfg.Kernel.EnsureNS(sb.path); err != nil {
		return nil, err
	}
	epID := sandboxEndpointID(n.ID, a.cfg.NodeID)
	ep := overlay.Endpoint{ID: epID, IP: addr.Addr(), MAC: ipam.MAC(addr.Addr()), Sandbox: sb.path, IfName: sandboxIf}
	if err := a.ov.EnsureEndpoint(n.ID, ep); err != nil {
		return nil, err
	}
	a.watch(sb.path)
	if n.Ingress && (a.sboxes[n.ID] == nil || sb.checkStack) {
		if err := a.gw.Attach(sb.path, ingressGWIf, ingressGWVeth, a.ingressGW); err != nil {
			return nil, err
		}
	}
	peer := records.Peer{IP: addr.Addr(), MAC: ipam.MAC(addr.Addr()), VTEP: a.cfg.AdvertiseAddr}
	if err := records.SetPeer(a.cfg.DB, n.ID, epID, peer); err != nil {
		return nil, fmt.Errorf("announce sandbox: %w", err)
	}
	if sb.plane == nil {
		opts, err := a.cfg.planeOptions(sb.path)
		if err != nil {
			return nil, err
		}
		if sb.plane, err = lb.NewDataPlane(a.cfg.DataPlane, sb.path, opts...); err != nil {
			return nil, err
		}
	}
	a.sboxes[n.ID] = sb
	return sb, nil
}

// syncVIPs puts the services' VIPs on the sandbox's eth0 as /32s and
// removes the ones no longer wanted. It compares with what it last set,
// or with the kernel when the kernel reported a change in the sandbox.
func (a *Agent) syncVIPs(sb *lbSandbox, want []netip.Addr) error {
	have := sb.vips
	if sb.checkStack {
		var err error
		if have, err = a.kernelVIPs(sb); err != nil {
			return err
		}
		sb.checkStack = false
	}
	if slices.Equal(want, have) {
		sb.vips = want
		return nil
	}
	for _, v := range want {
		if !slices.Contains(have, v) {
			if err := a.cfg.Kernel.SetAddr(sb.path, sandboxIf, netip.PrefixFrom(v, 32)); err != nil {
				sb.checkStack = true // look again next time
				return fmt.Errorf("add VIP %s: %w", v, err)
			}
		}
	}
	for _, v := range have {
		if !slices.Contains(want, v) {
			_ = a.cfg.Kernel.DelAddr(sb.path, sandboxIf, netip.PrefixFrom(v, 32)) // gone already is fine
		}
	}
	sb.vips = want
	return nil
}

// kernelVIPs are the /32s on the sandbox's eth0, sorted as vips sorts
// them; the sandbox's own address is not one.
func (a *Agent) kernelVIPs(sb *lbSandbox) ([]netip.Addr, error) {
	links, err := a.cfg.Kernel.ListLinks(sb.path)
	if err != nil {
		return nil, fmt.Errorf("list VIPs: %w", err)
	}
	var out []netip.Addr
	for _, l := range links {
		if l.Name != sandboxIf {
			continue
		}
		for _, p := range l.Addrs {
			if p.Bits() == 32 && p.Addr() != sb.addr.Addr() {
				out = append(out, p.Addr())
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// removeLBSandbox takes down a load-balancing sandbox no longer needed.
func (a *Agent) removeLBSandbox(sb *lbSandbox) {
	a.watcher.Unwatch(sb.path)
	if sb.plane != nil {
		_ = sb.plane.Close()
	}
	epID := sandboxEndpointID(sb.netID, a.cfg.NodeID)
	if err := records.DeletePeer(a.cfg.DB, sb.netID, epID); err != nil {
		a.log.Debug("withdraw sandbox peer", "err", err)
	}
	if err := a.ov.RemoveEndpoint(sb.netID, epID); err != nil {
		a.log.Warn("detach sandbox", "sandbox", filepath.Base(sb.path), "err", err)
	}
	if err := a.cfg.Kernel.RemoveNS(sb.path); err != nil {
		a.log.Warn("remove sandbox", "sandbox", filepath.Base(sb.path), "err", err)
	}
	delete(a.sboxes, sb.netID)
}

// publishPlanes records the sandboxes for LBTables.
func (a *Agent) publishPlanes(st records.Objects) {
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

// LBTables returns every sandbox's ipvsadm-shaped table, for meshctl lb
// ls. It may be called from any goroutine.
func (a *Agent) LBTables() []api.LBTable {
	a.mu.Lock()
	views := a.planes
	a.mu.Unlock()
	out := make([]api.LBTable, 0, len(views))
	for _, v := range views {
		t := api.LBTable{Sandbox: v.sandbox, Network: v.network, DataPlane: string(a.cfg.DataPlane), FlowOffload: v.plane.FlowOffload()}
		text, err := v.plane.Table()
		if err != nil {
			t.Error = err.Error()
		}
		t.Table = text
		out = append(out, t)
	}
	return out
}
