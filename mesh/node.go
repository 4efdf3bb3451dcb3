package mesh

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// nodeReads answers the API server's reads from this daemon.
type nodeReads struct{ d *Daemon }

func (n nodeReads) Info() api.Info {
	d := n.d
	return api.Info{NodeID: d.id.ID, NodeName: d.cfg.NodeName, NodeAddr: d.cfg.AdvertiseAddr.String(), Role: d.id.Role,
		ClusterID: d.id.ClusterID, ManagerAddr: d.id.ManagerAddr, RunDir: d.cfg.RunDir, DataPlane: string(d.dataPlane),
		Version: api.Version}
}

func (n nodeReads) JoinToken() api.JoinToken {
	return api.JoinToken{Token: n.d.id.Token, ManagerAddr: n.d.id.ManagerAddr}
}

func (n nodeReads) Objects() records.Objects { return n.d.Objects() }

func (n nodeReads) TaskStatuses() map[string]api.TaskStatus { return records.TaskStatuses(n.d.db) }

// Nodes is node ls: the manager's records (its store on the manager, the
// gossiped table elsewhere) joined with this node's view of who is alive.
func (n nodeReads) Nodes() []api.Node {
	if n.d.mgr != nil {
		return n.d.mgr.Nodes()
	}
	return records.NodeView(n.d.db, records.ReadNodes(n.d.db), n.d.id.ID)
}

func (n nodeReads) Namespaces() (string, []string, error) {
	dir := n.d.path("netns")
	names, err := nsfile.List(dir)
	return dir, names, err
}

func (n nodeReads) LBTables() []api.LBTable { return n.d.agent.LBTables() }

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

// localPrefixes are this node's own IPv4 interface addresses with their
// prefix lengths, masked to the network when masked is set.
func localPrefixes(masked bool) []netip.Prefix {
	var out []netip.Prefix
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
				ones, _ := ipn.Mask.Size()
				p := netip.PrefixFrom(ip, ones)
				if masked {
					p = p.Masked()
				}
				out = append(out, p)
			}
		}
	}
	return out
}

// gatewaySubnet picks mesh_gwbridge's subnet: 172.18.0.0/16 unless this
// node already uses it.
func gatewaySubnet() (netip.Prefix, error) {
	subnet, err := ipam.GatewayBridgePool(localPrefixes(true))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("gateway bridge: %w", err)
	}
	return subnet, nil
}
