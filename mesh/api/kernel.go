package api

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// A kernel snapshot is what one node's kernel holds for the mesh, read
// namespace by namespace (GET /v1/kernel): the node's own ("host")
// namespace first, then every namespace file meshd made (those ns ls
// lists), each with its links as "ip -d addr" shows them, its main routing
// table, its neighbours, the forwarding entries of its VXLAN devices, its
// iptables-save -c text per table, its IPVS table and meshd's nftables
// table (a sandbox's flowtable). Namespaces are read one after the other,
// not atomically: a snapshot taken while the agent reconciles may show
// half of a change.
//
// Sizes are bounded so that a node with a runaway table answers in
// bounded memory: at most [MaxKernelNamespaces] namespaces, and in each
// at most [MaxKernelEntries] links, routes, neighbours, forwarding
// entries and sockets (each kind), and [MaxKernelTable] bytes of
// iptables-save text per table and of nft's listing; whatever is cut is
// named in the namespace's Truncated. Finding the process of each socket
// reads at most [MaxKernelFDs] descriptor links of the node's processes:
// sockets whose process was not found before that are "socket owners" in
// Truncated.
const (
	MaxKernelNamespaces = 512
	MaxKernelEntries    = 4096
	MaxKernelTable      = 256 << 10
	MaxKernelFDs        = 1 << 17
)

// HostNamespace is the name a snapshot gives the node's own namespace,
// the one meshd runs in; its Path is empty.
const HostNamespace = "host"

// IPVS states of a namespace snapshot.
const (
	IPVSNone = "none" // the kernel has no IPVS (CONFIG_IP_VS unset or not loaded)
	IPVSRead = "read" // IPVS was read: Services holds it, possibly empty
)

// KernelSnapshot is one node's kernel state.
type KernelSnapshot struct {
	NodeID    string    `json:"NodeID"`
	NodeName  string    `json:"NodeName"`
	NodeAddr  string    `json:"NodeAddr"` // the advertise address: this node's VTEP
	DataPlane string    `json:"DataPlane"`
	Taken     time.Time `json:"Taken"`
	// Dir is where the namespace files are, e.g. /var/run/meshd/netns.
	Dir        string       `json:"Dir"`
	Namespaces []NetnsState `json:"Namespaces"`
	// Truncated is set when namespaces beyond MaxKernelNamespaces were
	// left out.
	Truncated bool `json:"Truncated,omitempty"`
}

// NetnsState is one network namespace's state. Name is as ns ls prints
// it, or [HostNamespace]; Kind and Owner are ns ls's columns.
type NetnsState struct {
	Name       string            `json:"Name"`
	Path       string            `json:"Path"`
	Kind       string            `json:"Kind"`
	Owner      string            `json:"Owner"`
	Links      []KernelLink      `json:"Links"`
	Routes     []KernelRoute     `json:"Routes"`
	Neighbours []KernelNeigh     `json:"Neighbours"`
	FDB        []KernelFDB       `json:"FDB"`
	IPTables   map[string]string `json:"IPTables"` // table → its iptables-save -c text, "*table" to "COMMIT"
	IPVS       string            `json:"IPVS"`     // IPVSNone or IPVSRead
	Services   []KernelIPVS      `json:"Services,omitempty"`
	// NFT is "nft list table inet meshd": the flowtable of a sandbox of
	// the iptables plane (lb/flowtable.go); "" when there is no such
	// table, or no nft on the node.
	NFT string `json:"NFT,omitempty"`
	// Sockets are the namespace's TCP listeners and unconnected UDP
	// sockets, sorted by protocol, port and address; nil when they were
	// not read (an error says why), empty when there are none.
	Sockets []KernelSocket `json:"Sockets"`
	// Errors are the reads that failed; the rest of the namespace is
	// still there.
	Errors []string `json:"Errors,omitempty"`
	// Truncated names the kinds cut at their bound ("routes", "iptables
	// nat", …).
	Truncated []string `json:"Truncated,omitempty"`
}

// KernelLink is one device, as "ip -d link" shows it.
type KernelLink struct {
	Index  int    `json:"Index"`
	Name   string `json:"Name"`
	Kind   string `json:"Kind"`   // bridge, vxlan, veth, device (lo), …
	Master string `json:"Master"` // the bridge it is a port of
	MAC    string `json:"MAC"`
	MTU    int    `json:"MTU"`
	Up     bool   `json:"Up"`    // administratively up
	State  string `json:"State"` // operational: UP, DOWN, UNKNOWN, LOWERLAYERDOWN
	// Addrs are its addresses but IPv6 link-local ones, sorted.
	Addrs []netip.Prefix `json:"Addrs"`
	// A veth's peer: its ifindex ("eth0@if12") and its namespace's name
	// in this snapshot ("" when in a namespace meshd did not make, such
	// as the lab's underlay; the same name when both ends are here).
	PeerIndex int    `json:"PeerIndex,omitempty"`
	PeerNetns string `json:"PeerNetns,omitempty"`
	// A VXLAN device's VNI, UDP port and local (VTEP) address.
	VNI   uint32     `json:"VNI,omitempty"`
	Port  int        `json:"Port,omitempty"`
	Local netip.Addr `json:"Local,omitzero"`
}

// KernelRoute is one route of the main table, as "ip route" prints it.
type KernelRoute struct {
	Dst     netip.Prefix `json:"Dst"` // 0.0.0.0/0 for default
	Gateway netip.Addr   `json:"Gateway,omitzero"`
	Dev     string       `json:"Dev"`
	Src     netip.Addr   `json:"Src,omitzero"`
	Scope   string       `json:"Scope"` // link, host, universe
}

// KernelNeigh is one neighbour entry, as "ip neigh" prints it.
type KernelNeigh struct {
	IP    netip.Addr `json:"IP"`
	MAC   string     `json:"MAC"`
	Dev   string     `json:"Dev"`
	State string     `json:"State"` // PERMANENT, REACHABLE, STALE, …
}

// KernelFDB is one forwarding entry of a VXLAN device, as "bridge fdb show
// dev vxlan0" prints it: MAC behind the remote VTEP Dst ("MAC dst VTEP
// self permanent"); or, with Master set, the static entry of the bridge
// the device is a port of, which sends frames for MAC to that port alone
// ("MAC master br0 static"), and has no Dst.
type KernelFDB struct {
	MAC       string     `json:"MAC"`
	Dev       string     `json:"Dev"`
	Dst       netip.Addr `json:"Dst"`
	Permanent bool       `json:"Permanent"`
	Master    string     `json:"Master,omitempty"`
}

// KernelIPVS is one IPVS fwmark service and its real servers.
type KernelIPVS struct {
	FWMark       uint32           `json:"FWMark"`
	Scheduler    string           `json:"Scheduler"`
	Destinations []KernelIPVSDest `json:"Destinations"`
}

// KernelIPVSDest is one real server of an IPVS service.
type KernelIPVSDest struct {
	Addr       netip.Addr `json:"Addr"`
	Port       uint16     `json:"Port"`
	Weight     int        `json:"Weight"`
	ActiveConn int        `json:"ActiveConn"`
	InActConn  int        `json:"InActConn"`
}

// KernelSocket is one socket that takes new connections or datagrams, as
// "ss -ltunp" prints it: a TCP listener or an unconnected UDP socket, and
// a process holding it.
type KernelSocket struct {
	Proto string `json:"Proto"` // tcp or udp
	// Addr is the local address, 0.0.0.0 or :: for any (a :: socket
	// takes IPv4 too unless it is IPv6-only); Port its port.
	Addr  netip.Addr `json:"Addr"`
	Port  uint16     `json:"Port"`
	Inode uint32     `json:"Inode"` // socket:[Inode] in the holder's /proc/PID/fd
	// PID is the process holding it, as the node sees it (tasks run in
	// PID namespaces of their own, but the node's /proc sees them all);
	// when several do, the lowest. 0 when none was found. Command is its
	// /proc/PID/comm.
	PID     int    `json:"PID,omitempty"`
	Command string `json:"Command,omitempty"`
}

// Wildcard says the socket takes any local address.
func (s KernelSocket) Wildcard() bool { return s.Addr.IsUnspecified() }

// Listener returns the socket of ns that a new connection or datagram to
// dst by proto reaches: one bound to dst's address, else a wildcard one;
// false when there is none.
func (ns *NetnsState) Listener(proto string, dst netip.AddrPort) (KernelSocket, bool) {
	var wild KernelSocket
	found := false
	for _, s := range ns.Sockets {
		if s.Proto != proto || s.Port != dst.Port() {
			continue
		}
		if s.Addr.Unmap() == dst.Addr().Unmap() {
			return s, true // the kernel prefers the bound address to a wildcard
		}
		if s.Wildcard() && (!found || wild.Addr.Is6() && s.Addr.Is4()) && (s.Addr.Is4() == dst.Addr().Unmap().Is4() || s.Addr.Is6()) {
			wild, found = s, true
		}
	}
	return wild, found
}

// Kernel returns the answering node's kernel snapshot.
func (c *Client) Kernel(ctx context.Context) (KernelSnapshot, error) {
	var out KernelSnapshot
	err := c.do(ctx, http.MethodGet, "/v1/kernel", nil, &out)
	return out, err
}

// Netns returns the namespace called name, or nil.
func (s *KernelSnapshot) Netns(name string) *NetnsState {
	for i := range s.Namespaces {
		if s.Namespaces[i].Name == name {
			return &s.Namespaces[i]
		}
	}
	return nil
}
