package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/apiserver"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/kstate"
	"github.com/meshd/meshd/mesh/records"
)

// nodeReads answers the API server's reads from this daemon: a manager
// from its replica, a worker from the last desired state it verified.
type nodeReads struct{ d *Daemon }

func (n nodeReads) Info() api.Info {
	d := n.d
	d.mu.RLock()
	id := d.id
	d.mu.RUnlock()
	sess, mgr := d.current()
	info := api.Info{NodeID: id.ID, NodeName: d.cfg.NodeName, NodeAddr: d.advertise().String(), LocalNodeState: "inactive",
		Role: id.Role, ClusterID: id.ClusterID, Managers: id.Managers, RunDir: d.cfg.RunDir,
		DataPlane: string(d.dataPlane), Version: api.Version}
	if len(id.Managers) > 0 {
		info.ManagerAddr = id.Managers[0]
	}
	if sess == nil {
		return info
	}
	info.LocalNodeState = "active"
	di := sess.agent.DesiredInfo()
	info.ManagerReachable = di.Fresh
	if mgr != nil {
		info.ControlAvailable, info.ManagerReachable = true, true
		leader, addr := mgr.m.Leader()
		if leader == "" {
			info.Warning = "no leader: too few managers are reachable for a quorum; writes are refused, the data plane keeps serving"
		} else {
			info.ManagerAddr = addr
			info.Leader = mgr.m.Read().Nodes[leader].Hostname
		}
	} else {
		info.Warning = di.Warning()
	}
	return info
}

func (n nodeReads) Manager() error {
	sess, mgr := n.d.current()
	switch {
	case sess == nil:
		return api.ErrNotInSwarm
	case mgr == nil:
		return api.ErrNotManager
	}
	return nil
}

// Control returns the cluster's writes on a manager: the manager itself
// on the leader, a forwarder to the leader elsewhere.
func (n nodeReads) Control() (apiserver.Writes, error) {
	if err := n.Manager(); err != nil {
		return nil, err
	}
	_, mgr := n.d.current()
	if mgr.m.IsLeader() {
		return mgr.m, nil
	}
	id, addr := mgr.m.Leader()
	if id == "" {
		return nil, api.ErrNoLeader
	}
	return apiserver.NewForwarder(addr, n.d.tls.ClientConfig(), mgr.store.WaitVersion), nil
}

// ClusterContainers returns the cluster's writes on this node's own
// standalone containers: Control's on a manager; on a worker, requests
// to the managers it knows with its certificate, which names it.
func (n nodeReads) ClusterContainers() (apiserver.ContainerWrites, error) {
	err := n.Manager()
	if err == nil {
		return n.Control()
	}
	if !errors.Is(err, api.ErrNotManager) {
		return nil, err
	}
	d := n.d
	d.mu.RLock()
	managers := slices.Clone(d.id.Managers)
	d.mu.RUnlock()
	return apiserver.NewNodeForwarder(managers, d.tls.ClientConfig()), nil
}

func (n nodeReads) CA() (api.SwarmCA, error) {
	_, mgr := n.d.current()
	if mgr == nil {
		return api.SwarmCA{}, api.ErrNotManager
	}
	return mgr.m.CA(), nil
}

func (n nodeReads) StateVersion() uint64 {
	if _, mgr := n.d.current(); mgr != nil {
		return mgr.store.Version()
	}
	return 0
}

func (n nodeReads) JoinToken(role string) (api.JoinToken, error) {
	_, mgr := n.d.current()
	if mgr == nil {
		return api.JoinToken{}, api.ErrNotManager
	}
	jt, err := mgr.m.JoinToken(role)
	if err != nil {
		return jt, err
	}
	if _, addr := mgr.m.Leader(); addr != "" {
		jt.ManagerAddr = addr // a worker joins where writes land at once
	}
	return jt, nil
}

func (n nodeReads) Objects() records.Objects {
	sess, mgr := n.d.current()
	switch {
	case mgr != nil:
		return mgr.m.Objects()
	case sess != nil:
		return sess.agent.Desired()
	}
	var o records.Objects
	o.Init()
	return o
}

func (n nodeReads) TaskStatuses() map[string]api.TaskStatus {
	if sess, _ := n.d.current(); sess != nil {
		return records.TaskStatuses(sess.db)
	}
	return map[string]api.TaskStatus{}
}

// Nodes is node ls as a manager sees it: its records joined with its
// gossip view of who is alive.
func (n nodeReads) Nodes() []api.Node {
	if _, mgr := n.d.current(); mgr != nil {
		return mgr.m.Nodes()
	}
	return nil
}

func (n nodeReads) Namespaces() (string, []string, error) {
	dir := n.d.path("netns")
	names, err := nsfile.List(dir)
	return dir, names, err
}

func (n nodeReads) Programmed() map[string]map[string][]string {
	if sess, _ := n.d.current(); sess != nil {
		return records.Programmed(sess.db)
	}
	return nil
}

func (n nodeReads) NetworkBuilt(id string) bool {
	if sess, _ := n.d.current(); sess != nil {
		return sess.agent.NetworkBuilt(id)
	}
	return false
}

func (n nodeReads) Gateway() (apiserver.Gateway, bool) {
	sess, _ := n.d.current()
	if sess == nil {
		return apiserver.Gateway{}, false
	}
	g := sess.agent.Gateway()
	return apiserver.Gateway{Name: g.Name, Subnet: g.Subnet, Gateway: g.Gateway, Created: g.Created, Ingress: g.Ingress, Tasks: g.Tasks}, true
}

func (n nodeReads) ConnectBridge(ctx context.Context, taskID, network string, a api.ContainerAttach) error {
	sess, _ := n.d.current()
	if sess == nil {
		return api.ErrNotInSwarm
	}
	return sess.agent.ConnectBridge(ctx, taskID, network, a)
}

func (n nodeReads) DisconnectBridge(ctx context.Context, taskID, network string) error {
	sess, _ := n.d.current()
	if sess == nil {
		return api.ErrNotInSwarm
	}
	return sess.agent.DisconnectBridge(ctx, taskID, network)
}

func (n nodeReads) SyncAgent(ctx context.Context) error {
	sess, _ := n.d.current()
	if sess == nil {
		return api.ErrNotInSwarm
	}
	return sess.agent.SyncNow(ctx)
}

func (n nodeReads) TaskEnded(taskID string) bool {
	if sess, _ := n.d.current(); sess != nil {
		return sess.agent.TaskEnded(taskID)
	}
	return true
}

func (n nodeReads) StoppedTask(taskID string) (*int, bool) {
	if sess, _ := n.d.current(); sess != nil {
		return sess.agent.StoppedTask(taskID)
	}
	return nil, false
}

func (n nodeReads) TaskLogPath(taskID string) string {
	if sess, _ := n.d.current(); sess != nil {
		return sess.agent.TaskLogPath(taskID)
	}
	return ""
}

// LogSubs is the gossip store and this manager's cluster API address,
// for service logs; a nil store off a manager.
func (n nodeReads) LogSubs() (records.DB, netip.AddrPort) {
	sess, mgr := n.d.current()
	if sess == nil || mgr == nil {
		return nil, netip.AddrPort{}
	}
	addr, err := netip.ParseAddrPort(n.d.apiAddr())
	if err != nil {
		return nil, netip.AddrPort{}
	}
	return sess.db, addr
}

// Kernel reads this node's kernel snapshot, namespace by namespace.
func (n nodeReads) Kernel(ctx context.Context) (api.KernelSnapshot, error) {
	dir, names, err := n.Namespaces()
	if err != nil {
		return api.KernelSnapshot{}, err
	}
	snap := kstate.Read(ctx, kstate.NewKernel(nil), kstate.Netns(dir, names))
	info := n.Info()
	snap.NodeID, snap.NodeName, snap.NodeAddr, snap.DataPlane = info.NodeID, info.NodeName, info.NodeAddr, info.DataPlane
	snap.Dir, snap.Taken = dir, time.Now()
	return snap, ctx.Err()
}

func (n nodeReads) LBTables() []api.LBTable {
	if sess, _ := n.d.current(); sess != nil {
		return sess.agent.LBTables()
	}
	return nil
}

// clusterPeers admits callers of the cluster port whose certificate
// verified: nodes of this cluster that its state still holds, managers
// only while the state says they are.
type clusterPeers struct{ d *Daemon }

func (c clusterPeers) Check(p ca.Peer, manager bool) error {
	_, mgr := c.d.current()
	if mgr == nil {
		return api.ErrNotManager
	}
	st := mgr.m.Read()
	if st.ClusterID == "" {
		return api.Errorf(http.StatusServiceUnavailable, "this manager is still replaying its log")
	}
	if p.ClusterID != st.ClusterID {
		return api.Errorf(http.StatusForbidden, "certificate of another cluster")
	}
	n, ok := st.Nodes[p.NodeID]
	if !ok {
		return api.Errorf(http.StatusForbidden, "node %s is not part of this swarm", p.NodeID)
	}
	if manager && n.Role != api.RoleManager {
		return api.Errorf(http.StatusForbidden, "node %s is no longer a manager", n.Hostname)
	}
	return nil
}

// The host facts the wiring needs.

// underlayMTU is the MTU of the interface holding addr (1500 if unknown).
func underlayMTU(addr netip.Addr) int {
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(addr.AsSlice()) {
				return ifc.MTU
			}
		}
	}
	return 1500
}

// ifaceAddr is one IPv4 address of one of this node's interfaces.
type ifaceAddr struct {
	iface  string
	prefix netip.Prefix // the address with its prefix length, not masked
}

// interfaceAddrs are this node's own IPv4 interface addresses, in the
// order of the interfaces.
func interfaceAddrs() []ifaceAddr {
	var out []ifaceAddr
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
					ones, _ := ipn.Mask.Size()
					out = append(out, ifaceAddr{iface: ifc.Name, prefix: netip.PrefixFrom(ip, ones)})
				}
			}
		}
	}
	return out
}

// localPrefixes are this node's own IPv4 interface addresses with their
// prefix lengths, masked to the network when masked is set.
func localPrefixes(masked bool) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range interfaceAddrs() {
		p := a.prefix
		if masked {
			p = p.Masked()
		}
		out = append(out, p)
	}
	return out
}

// gatewaySubnet picks mesh_gwbridge's subnet: 172.18.0.0/16 unless this
// node already uses it, or one of its bridge networks (bridges) does.
func gatewaySubnet(bridges []netip.Prefix) (netip.Prefix, error) {
	addrs := interfaceAddrs()
	for _, b := range bridges {
		addrs = append(addrs, ifaceAddr{iface: "bridge network", prefix: b})
	}
	return chooseGatewaySubnet(addrs, lb.GatewayBridgeName)
}

// chooseGatewaySubnet picks the gateway bridge's subnet among the local
// pools, leaving out those that addrs use, except the addresses held by
// the bridge named own. The subnet is chosen before the agent repairs the
// bridge an earlier run left: counting its address as taken would move
// each start to the next pool (and leave one more address on the bridge,
// until the pools ran out), where the bridge's own subnet is the one to
// keep. GatewayBridge.Ensure then removes whatever else it holds.
func chooseGatewaySubnet(addrs []ifaceAddr, own string) (netip.Prefix, error) {
	var taken []netip.Prefix
	for _, a := range addrs {
		if a.iface != own {
			taken = append(taken, a.prefix.Masked())
		}
	}
	subnet, err := ipam.GatewayBridgePool(taken)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("gateway bridge %s: %w", own, err)
	}
	return subnet, nil
}
