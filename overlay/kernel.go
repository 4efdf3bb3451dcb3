package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
)

// Kernel is everything [Overlay] asks of the kernel. The real
// implementation works through netlink handles opened per namespace path;
// [FakeKernel] is an in-memory model for tests. A namespace path of ""
// means the namespace the process runs in.
type Kernel interface {
	Namespaces
	Links
	Neighbors
	Stack
}

// Namespaces manages namespace files ("ip netns").
type Namespaces interface {
	// EnsureNS is "ip netns add" at path, unless a namespace is there.
	EnsureNS(path string) error
	// RemoveNS is "ip netns del" at path. Absent is fine.
	RemoveNS(path string) error
	// ListNS returns the names of the namespace files in dir, sorted.
	ListNS(dir string) ([]string, error)
}

// Links manages devices. The Ensure methods create what is absent, repair
// the attributes that can change in place (MTU, master, up, addresses, MAC)
// and fail with an "exists" error whose text gives the reason when the
// device is there but incompatible (another kind, VNI, port, …): the
// caller decides whether to remove and recreate it.
type Links interface {
	// EnsureBridge is "ip link add NAME type bridge; ip addr add ADDR dev
	// NAME; ip link set NAME mtu MTU up" in spec.NS.
	EnsureBridge(spec BridgeSpec) error
	// EnsureVXLAN creates the device in spec.HostNS under a temporary name,
	// moves it into spec.NS and renames it: "ip link add vx-… type vxlan id
	// VNI local SRC dstport PORT nolearning proxy; ip link set vx-… netns NS;
	// ip link set vx-… name NAME master MASTER mtu MTU up". Its UDP socket
	// stays in spec.HostNS.
	EnsureVXLAN(spec VXLANSpec) error
	// EnsureVeth is "ip link add NAME mtu MTU master MASTER type veth peer
	// name PEER netns PEERNS address MAC", run in spec.NS, then the address
	// on the peer and both ends up. The veth never appears anywhere else.
	EnsureVeth(spec VethSpec) error
	// RemoveLink is "ip link del NAME" in ns. Absent is fine. Removing one
	// end of a veth removes both.
	RemoveLink(ns, name string) error
	// ListLinks is "ip -d addr" in ns, sorted by name.
	ListLinks(ns string) ([]Link, error)
	// SetAddr is "ip addr replace P dev DEV" in ns. The device must exist;
	// its other addresses stay.
	SetAddr(ns, dev string, p netip.Prefix) error
	// DelAddr is "ip addr del P dev DEV" in ns. The device must exist; an
	// address it does not hold is fine.
	DelAddr(ns, dev string, p netip.Prefix) error
}

// Stack is what a namespace's IP stack holds besides its devices: the
// default route and the sysctls.
type Stack interface {
	// SetDefaultRoute is "ip route replace default via GW dev DEV" in ns.
	// GW must be reachable through an address DEV holds, and DEV up.
	SetDefaultRoute(ns, dev string, gw netip.Addr) error
	// SetSysctl is "sysctl -w KEY=VALUE" in ns. key is the path below
	// /proc/sys, with slashes ("net/ipv4/conf/br0/route_localnet"), so a
	// device name holding a dot needs no escaping as sysctl(8)'s dots do.
	SetSysctl(ns, key, value string) error
}

// Neighbors manages the neighbour (ARP) and forwarding (FDB) entries of a
// device. Set = create or replace, Del = must exist.
type Neighbors interface {
	// SetARP is "ip neigh replace IP lladdr MAC dev DEV nud permanent".
	SetARP(ns, dev string, ip netip.Addr, mac net.HardwareAddr) error
	// DelARP is "ip neigh del IP dev DEV".
	DelARP(ns, dev string, ip netip.Addr) error
	// ListARP is "ip neigh show dev DEV" (IPv4 and IPv6).
	ListARP(ns, dev string) ([]ARPEntry, error)
	// SetFDB is "bridge fdb replace MAC dev DEV dst DST self permanent".
	SetFDB(ns, dev string, mac net.HardwareAddr, dst netip.Addr) error
	// DelFDB is "bridge fdb del MAC dev DEV dst DST self".
	DelFDB(ns, dev string, mac net.HardwareAddr, dst netip.Addr) error
	// ListFDB is "bridge fdb show dev DEV self", the entries that have a
	// destination (the bridge's own "master" entries are left out).
	ListFDB(ns, dev string) ([]FDBEntry, error)
	// SetBridgeFDB is "bridge fdb replace MAC dev DEV master static": the
	// bridge DEV is a port of sends frames for MAC to DEV, for good.
	SetBridgeFDB(ns, dev string, mac net.HardwareAddr) error
	// DelBridgeFDB is "bridge fdb del MAC dev DEV master".
	DelBridgeFDB(ns, dev string, mac net.HardwareAddr) error
	// ListBridgeFDB is the MACs of the static entries of "bridge fdb show
	// dev DEV master": neither the port's own address (permanent) nor
	// learned ones.
	ListBridgeFDB(ns, dev string) ([]net.HardwareAddr, error)
}

// BridgeSpec is a bridge device with one address.
type BridgeSpec struct {
	NS   string       // namespace path
	Name string       // "br0"
	MTU  int          // bytes
	Addr netip.Prefix // the gateway, e.g. 10.0.0.1/24; the bridge must hold it
	// MAC, if set, is the bridge's own address. Unset, the kernel gives a
	// bridge the lowest address among its ports, which changes as ports
	// come and go.
	MAC net.HardwareAddr
}

// VXLANSpec is a VXLAN device; learning is always off and ARP proxying on.
type VXLANSpec struct {
	HostNS string     // where it is created and its UDP socket lives
	NS     string     // where it ends up
	Name   string     // its name there: "vxlan0"
	VNI    uint32     // 1 – 2^24-1
	Port   int        // UDP destination port
	Src    netip.Addr // local underlay address (the VTEP)
	MTU    int        // bytes
	Master string     // bridge to enslave it to
}

// VethSpec is a veth pair whose ends live in two namespaces.
type VethSpec struct {
	NS       string           // namespace of the bridge-side end
	Name     string           // e.g. "veth1a2b3c4"
	Master   string           // bridge in NS
	MTU      int              // both ends
	PeerNS   string           // the task's sandbox
	PeerName string           // e.g. "eth0"
	PeerMAC  net.HardwareAddr // the sandbox end's MAC
	PeerAddr netip.Prefix     // the sandbox end must hold it
}

// Link is what the kernel reports about one device.
type Link struct {
	Name   string
	Kind   string // "bridge", "vxlan", "veth", … ("device" for lo)
	Index  int
	Master string // bridge it is a port of; "" for none
	MTU    int
	Up     bool // administratively up
	// OperState is the operational state as "ip link" prints it: "UP",
	// "DOWN", "UNKNOWN" (lo, a VXLAN device), "LOWERLAYERDOWN"; the fake
	// leaves it empty.
	OperState string
	MAC       net.HardwareAddr
	Addrs     []netip.Prefix // addresses other than IPv6 link-local, sorted

	// VXLAN only.
	VNI      uint32
	Port     int
	Src      netip.Addr
	Learning bool
	Proxy    bool

	// Veth only: the peer's ifindex, in the peer's namespace, and that
	// namespace's ID as this one numbers it ("link-netnsid" in "ip -d
	// link"); -1 when the peer is in the same namespace.
	PeerIndex   int
	PeerNetNSID int
}

// ARPEntry is one neighbour entry.
type ARPEntry struct {
	IP        netip.Addr
	MAC       net.HardwareAddr
	Permanent bool
	// State is the entry's state as "ip neigh" prints it ("PERMANENT",
	// "REACHABLE", "STALE", "FAILED", …); the fake leaves it empty.
	State string
}

// FDBEntry is one forwarding entry of a VXLAN device: MAC behind VTEP Dst.
type FDBEntry struct {
	MAC       net.HardwareAddr
	Dst       netip.Addr
	Permanent bool
}

// The reasons below are "have vs want", as flannel's vxlanLinksIncompat.

// bridgeIncompat says why l cannot become spec in place; "" if it can.
func bridgeIncompat(l Link) string {
	if l.Kind != "bridge" {
		return fmt.Sprintf("kind: %s vs bridge", l.Kind)
	}
	return ""
}

// bridgeDrift says what of spec l lacks that can be repaired in place.
func bridgeDrift(spec BridgeSpec, l Link) string {
	return drift(l, spec.MTU, "", spec.Addr, spec.MAC)
}

func vxlanIncompat(spec VXLANSpec, l Link) string {
	switch {
	case l.Kind != "vxlan":
		return fmt.Sprintf("kind: %s vs vxlan", l.Kind)
	case l.VNI != spec.VNI:
		return fmt.Sprintf("vni: %d vs %d", l.VNI, spec.VNI)
	case l.Port != spec.Port:
		return fmt.Sprintf("dstport: %d vs %d", l.Port, spec.Port)
	case l.Src != spec.Src:
		return fmt.Sprintf("local: %s vs %s", l.Src, spec.Src)
	case l.Learning:
		return "learning: on vs off"
	case !l.Proxy:
		return "proxy: off vs on"
	}
	return ""
}

func vxlanDrift(spec VXLANSpec, l Link) string {
	return drift(l, spec.MTU, spec.Master, netip.Prefix{}, nil)
}

// vethIncompat checks both ends; nil means absent. Both absent is fine.
func vethIncompat(spec VethSpec, end, peer *Link) string {
	switch {
	case end == nil && peer == nil:
		return ""
	case end == nil:
		return fmt.Sprintf("%s: present vs peer of absent %s", spec.PeerName, spec.Name)
	case peer == nil:
		return fmt.Sprintf("peer: absent vs %s", spec.PeerName)
	case end.Kind != "veth":
		return fmt.Sprintf("kind: %s vs veth", end.Kind)
	case peer.Kind != "veth":
		return fmt.Sprintf("%s kind: %s vs veth", spec.PeerName, peer.Kind)
	case end.PeerIndex != peer.Index || peer.PeerIndex != end.Index:
		return fmt.Sprintf("peer: ifindex %d vs %d", end.PeerIndex, peer.Index)
	}
	return ""
}

// vethDrift checks both ends of a compatible pair.
func vethDrift(spec VethSpec, end, peer Link) string {
	if d := drift(end, spec.MTU, spec.Master, netip.Prefix{}, nil); d != "" {
		return d
	}
	if d := drift(peer, spec.MTU, "", spec.PeerAddr, spec.PeerMAC); d != "" {
		return spec.PeerName + " " + d
	}
	return ""
}

// drift compares the attributes that can change in place; zero values in
// the arguments are not checked.
func drift(l Link, mtu int, master string, addr netip.Prefix, mac net.HardwareAddr) string {
	switch {
	case l.MTU != mtu:
		return fmt.Sprintf("mtu: %d vs %d", l.MTU, mtu)
	case master != "" && l.Master != master:
		return fmt.Sprintf("master: %q vs %q", l.Master, master)
	case mac != nil && l.MAC.String() != mac.String():
		return fmt.Sprintf("address: %s vs %s", l.MAC, mac)
	case addr.IsValid() && !slices.Contains(l.Addrs, addr):
		return fmt.Sprintf("addr: %v vs %s", l.Addrs, addr)
	case !l.Up:
		return "state: down vs up"
	}
	return ""
}

// kernelError is what both implementations return when the kernel refuses
// a call for a reason the caller may act on.
type kernelError struct {
	code errCode
	err  error
}

type errCode int

const (
	codeOther errCode = iota
	codeNotFound
	codeExists
)

func (e *kernelError) Error() string { return e.err.Error() }
func (e *kernelError) Unwrap() error { return e.err }

func isCode(err error, c errCode) bool {
	var ke *kernelError
	return errors.As(err, &ke) && ke.code == c
}

// isNotFound reports whether err says the object (device, namespace,
// entry) is absent.
func isNotFound(err error) bool { return isCode(err, codeNotFound) }

// isExists reports whether err says the object is already there.
func isExists(err error) bool { return isCode(err, codeExists) }

func errNotFound(format string, args ...any) error {
	return &kernelError{code: codeNotFound, err: fmt.Errorf(format, args...)}
}

func errExists(format string, args ...any) error {
	return &kernelError{code: codeExists, err: fmt.Errorf(format, args...)}
}

// checkSysctlKey refuses a key that is not a plain path below /proc/sys.
func checkSysctlKey(key string) error {
	if key == "" || !filepath.IsLocal(key) || strings.Contains(key, ".") && !strings.Contains(key, "/") {
		return fmt.Errorf("sysctl key %q: want a path below /proc/sys such as net/ipv4/ip_forward", key)
	}
	return nil
}

// nsLabel names a namespace path in messages.
func nsLabel(ns string) string {
	if ns == "" {
		return "host netns"
	}
	return "netns " + ns
}
