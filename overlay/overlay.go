package overlay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
)

// Names and numbers, as Swarm has them (see reference.md). Users see them
// in "ip -d link" and "bridge fdb show"; they MUST NOT change, or an
// upgraded meshd would not recognise what the previous one built.
const (
	// nsPrefix starts every overlay namespace file: "1-" + netid[:10].
	nsPrefix = "1-"
	// nsIDLen is how much of the network ID the namespace name keeps.
	nsIDLen = 10
	// bridgeName is the bridge in each overlay namespace; it holds the
	// gateway address.
	bridgeName = "br0"
	// vxlanName is the VXLAN device in each overlay namespace.
	vxlanName = "vxlan0"
	// vxlanTempPrefix starts the name a VXLAN device has in the host
	// namespace between its creation and its move: "vx-" + 6 hex digits of
	// VNI + "-" + 4 random hex digits (14 characters). Only a crash leaves
	// one behind; [Overlay.Sweep] removes them.
	vxlanTempPrefix = "vx-"
	// vethPrefix starts the bridge-side end of an endpoint's veth pair:
	// "veth" + 7 hex digits of sha256(endpoint ID), 11 characters.
	vethPrefix  = "veth"
	vethHashLen = 7
	// vxlanOverhead is what VXLAN adds to each frame: inner Ethernet 14 +
	// outer IPv4 20 + UDP 8 + VXLAN 8.
	vxlanOverhead = 50
	// DefaultUnderlayMTU is the underlay MTU assumed when none is given.
	DefaultUnderlayMTU = 1500
	// DefaultVXLANPort is the IANA VXLAN port, Swarm's default data path port.
	DefaultVXLANPort = 4789
	maxIfName        = 15 // IFNAMSIZ - 1
)

// Errors callers may test for.
var (
	ErrUnknownNetwork = errors.New("overlay: network not set up (call EnsureNetwork first)")
	ErrNotSupported   = errors.New("overlay: needs Linux")
)

// Config configures an [Overlay]. It is copied by [New] and not read
// afterwards.
type Config struct {
	// NSDir is the directory of namespace files, e.g.
	// /var/run/meshd/netns. Required, absolute. Overlay namespaces are
	// NSDir/1-<netid[:10]>; other files there are left alone.
	NSDir string
	// HostNS is the namespace file in which VXLAN devices are created and
	// their UDP sockets live. "" (the default) is the namespace meshd runs
	// in, which is what a node wants; tests running several nodes in one
	// process give each its own.
	HostNS string
	// UnderlayAddr is this node's advertise address: the source (VTEP) of
	// every VXLAN packet it sends. Required.
	UnderlayAddr netip.Addr
	// UnderlayMTU is the MTU of the underlay, in bytes. 0 means 1500.
	// Overlay devices get UnderlayMTU − 50. At least 118 (IPv4's minimum
	// 68 plus the 50).
	UnderlayMTU int
	// VXLANPort is the UDP destination port (Swarm's --data-path-port),
	// 1024–49151. 0 means 4789. Every node of a cluster must agree.
	VXLANPort int
	// Kernel is the kernel to program; nil means the real one (Linux only).
	Kernel Kernel
	// Logger receives what the package repairs or recreates; nil discards.
	Logger *slog.Logger
}

// Network is one overlay network as this node builds it.
type Network struct {
	ID      string       // the network's ID; its first 10 characters name the namespace
	VNI     uint32       // VXLAN network identifier, 1 – 16777215
	Subnet  netip.Prefix // e.g. 10.0.0.0/24
	Gateway netip.Addr   // held by br0, inside Subnet, e.g. 10.0.0.1
}

// Endpoint is a local task's interface on an overlay network.
type Endpoint struct {
	ID      string           // endpoint ID; names the bridge-side veth end
	IP      netip.Addr       // inside the network's subnet
	MAC     net.HardwareAddr // nil means ipam.MAC(IP): 02:42 followed by the IPv4 address
	Sandbox string           // path of the task's namespace file; must exist
	IfName  string           // name in the sandbox: "eth0", "eth1", …
}

// Peer is a remote endpoint: IP behind MAC behind the node at VTEP.
type Peer struct {
	IP   netip.Addr
	MAC  net.HardwareAddr // nil means ipam.MAC(IP), as for an Endpoint
	VTEP netip.Addr       // the remote node's underlay address
}

// Overlay builds and maintains this node's overlay namespaces.
//
// Its methods are meant to be called by one reconciler goroutine; they are
// serialised by a mutex, so concurrent calls are safe but wait for each
// other. Every method compares what the kernel has with what it should
// have and changes only the difference, so calling it again is a no-op and
// calling it after someone changed things by hand repairs them.
type Overlay struct {
	nsDir    string
	hostNS   string
	underlay netip.Addr
	mtu      int
	port     int
	k        Kernel
	log      *slog.Logger

	mu   sync.Mutex         // guards the fields below
	nets map[string]Network // by ID: what EnsureNetwork was last given
	// local holds the MAC of each local endpoint, by network and endpoint
	// ID, as EnsureEndpoint was given it: SetPeers keeps br0 from sending
	// those to vxlan0.
	local map[string]map[string]string
}

// New checks cfg and returns an Overlay. It touches nothing in the kernel.
func New(cfg Config) (*Overlay, error) {
	if cfg.NSDir == "" || !filepath.IsAbs(cfg.NSDir) {
		return nil, fmt.Errorf("overlay: NSDir %q: want an absolute path", cfg.NSDir)
	}
	if !cfg.UnderlayAddr.IsValid() || cfg.UnderlayAddr.IsUnspecified() {
		return nil, fmt.Errorf("overlay: UnderlayAddr %v: want this node's address", cfg.UnderlayAddr)
	}
	if cfg.UnderlayMTU == 0 {
		cfg.UnderlayMTU = DefaultUnderlayMTU
	}
	if cfg.UnderlayMTU < 68+vxlanOverhead || cfg.UnderlayMTU > 65535 {
		return nil, fmt.Errorf("overlay: UnderlayMTU %d: want 118–65535", cfg.UnderlayMTU)
	}
	if cfg.VXLANPort == 0 {
		cfg.VXLANPort = DefaultVXLANPort
	}
	if cfg.VXLANPort < 1024 || cfg.VXLANPort > 49151 {
		return nil, fmt.Errorf("overlay: VXLANPort %d: want 1024–49151", cfg.VXLANPort)
	}
	if cfg.Kernel == nil {
		cfg.Kernel = newKernel()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Overlay{
		nsDir:    filepath.Clean(cfg.NSDir),
		hostNS:   cfg.HostNS,
		underlay: cfg.UnderlayAddr.Unmap(),
		mtu:      cfg.UnderlayMTU - vxlanOverhead,
		port:     cfg.VXLANPort,
		k:        cfg.Kernel,
		log:      cfg.Logger,
		nets:     make(map[string]Network),
		local:    make(map[string]map[string]string),
	}, nil
}

// NamespacePath returns the namespace file of network netID:
// NSDir/1-<netID[:10]>.
func (o *Overlay) NamespacePath(netID string) string {
	return filepath.Join(o.nsDir, namespaceName(netID))
}

func namespaceName(netID string) string {
	if len(netID) > nsIDLen {
		netID = netID[:nsIDLen]
	}
	return nsPrefix + netID
}

// vethName is the bridge-side name of endpoint epID's veth.
func vethName(epID string) string {
	sum := sha256.Sum256([]byte(epID))
	return vethPrefix + hex.EncodeToString(sum[:])[:vethHashLen]
}

func (n Network) validate() error {
	switch {
	case n.ID == "":
		return errors.New("overlay: network ID is empty")
	case n.VNI == 0 || n.VNI >= 1<<24:
		return fmt.Errorf("overlay: network %s: VNI %d: want 1–16777215", n.ID, n.VNI)
	case !n.Subnet.IsValid():
		return fmt.Errorf("overlay: network %s: Subnet is not set", n.ID)
	case !n.Subnet.Contains(n.Gateway):
		return fmt.Errorf("overlay: network %s: Gateway %v is not in %s", n.ID, n.Gateway, n.Subnet)
	}
	return nil
}

func (ep Endpoint) validate(n Network) error {
	switch {
	case ep.ID == "":
		return errors.New("overlay: endpoint ID is empty")
	case !n.Subnet.Contains(ep.IP):
		return fmt.Errorf("overlay: endpoint %s: IP %v is not in %s", ep.ID, ep.IP, n.Subnet)
	case ep.IP == n.Gateway:
		return fmt.Errorf("overlay: endpoint %s: IP %v is the gateway", ep.ID, ep.IP)
	case ep.MAC == nil && !ep.IP.Is4():
		return fmt.Errorf("overlay: endpoint %s: MAC is required for %v", ep.ID, ep.IP)
	case ep.MAC != nil && len(ep.MAC) != 6:
		return fmt.Errorf("overlay: endpoint %s: MAC %s: want 6 bytes", ep.ID, ep.MAC)
	case ep.Sandbox == "":
		return fmt.Errorf("overlay: endpoint %s: Sandbox is empty", ep.ID)
	case ep.IfName == "" || len(ep.IfName) > maxIfName:
		return fmt.Errorf("overlay: endpoint %s: IfName %q: want 1–15 characters", ep.ID, ep.IfName)
	}
	return nil
}
