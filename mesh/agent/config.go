package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/meshd/meshd/internal/kwatch"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/events"
	"github.com/meshd/meshd/mesh/metrics"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
	"github.com/meshd/meshd/overlay"
)

// Config configures an [Agent]. It is copied by [New] and must not change
// afterwards.
type Config struct {
	// NodeID is this node's ID: the owner of its table entries. Required.
	NodeID string
	// AdvertiseAddr is this node's underlay address, the VTEP of its
	// endpoints. Required.
	AdvertiseAddr netip.Addr
	// RunDir holds the namespace files (RunDir/netns), the tasks' files
	// (RunDir/tasks) and the last desired state verified (desired.json,
	// 0600), served while no manager is. Required, absolute.
	RunDir string
	// DataPlane is lb.ModeIPVS or lb.ModeIPTables (resolve auto first).
	DataPlane lb.Mode
	// DataPathPort is the VXLAN UDP port; zero means 4789.
	DataPathPort int
	// UnderlayMTU is the MTU of the underlay interface; zero means 1500.
	UnderlayMTU int
	// GatewaySubnet is mesh_gwbridge's subnet (ipam.GatewayBridgePool):
	// the bridge takes its first address, the ingress sandbox the second.
	// Required.
	GatewaySubnet netip.Prefix
	// DrainDelay is how long a task leaving the desired state keeps its
	// backends at weight 0 before it is stopped; zero stops at once.
	DrainDelay time.Duration
	// IPVSTimeouts are set in every sandbox's IPVS; zero fields keep the
	// kernel's.
	IPVSTimeouts lb.Timeouts
	// DNSUpstreams are where the embedded DNS forwards other names; empty
	// means the node's resolv.conf. DNSTTL is its answers' TTL; zero means
	// 600 s.
	DNSUpstreams []netip.AddrPort
	DNSTTL       time.Duration
	// Bridges are the node's local bridge networks (mesh/container's
	// Engine), which a task may be connected to too; nil: none.
	Bridges Bridges
	// ResyncInterval is how often the agent reconciles without being woken:
	// the kernel reports what it removes (see Watch) and IPVS tables are
	// verified every lb.IPVSCheckPeriod, so this is the safety net for
	// the rest. Zero means 30 s.
	ResyncInterval time.Duration

	// DB is the gossip store the agent reads the desired state from and
	// announces into. Required.
	DB records.DB
	// PushLogs sends this node's tasks' output to a manager that asked for
	// it (service logs); nil answers no log subscription.
	PushLogs PushLogsFunc
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// Metrics records the agent's and its DNS's measures; nil records
	// nothing.
	Metrics *metrics.Metrics
	// Events receives the agent's events (task states, backends, drift
	// repaired); nil records none.
	Events *events.Log

	// The kernel seams. nil means the real one.

	// Kernel builds namespaces, links, addresses and peers.
	Kernel overlay.Kernel
	// Rules returns the iptables of a namespace ("" = the node's own).
	Rules func(nsPath string) lb.Rules
	// IPVS returns the IPVS table of a sandbox (IPVS data plane only).
	IPVS func(nsPath string) (lb.IPVS, error)
	// Conntrack returns the conntrack table of a namespace ("" = the
	// node's own), where stale UDP entries are deleted.
	Conntrack func(nsPath string) lb.Conntrack
	// FlowTables returns the nftables table of ours in a sandbox, where
	// the iptables plane keeps its flowtable if FlowOffload
	// (lb.WithFlowTables); nil: nftables is left alone.
	FlowTables func(nsPath string) lb.FlowTables
	// FlowOffload is meshd --flow-offload: false removes the sandboxes'
	// flowtables.
	FlowOffload bool
	// ConntrackMax is the least size of the kernel's conntrack table the
	// agent keeps (lb.GrowConntrack) through Sysctls(""); zero leaves it.
	ConntrackMax int
	// NeighbourMax is the least hard limit of the kernel's neighbour
	// table (gc_thresh3) the agent keeps (lb.GrowNeighbours) through
	// Sysctls(""); zero leaves it.
	NeighbourMax int
	// Sysctls returns the sysctls of a namespace ("" = the agent's own):
	// a sandbox's forwarding settings, the host's conntrack and
	// neighbour tables.
	Sysctls func(nsPath string) lb.Sysctls
	// Runner runs a task's process once, until it exits or ctx ends,
	// reporting its states; it never restarts it.
	Runner func(ctx context.Context, spec task.Spec, report func(task.State))
	// Listening says whether the network namespace of process pid has a
	// socket on port (tcp: listening, udp: bound): a task's backends are
	// announced once it listens on its target ports, so that no request
	// reaches a process that is not ready. Nil looks in /proc.
	Listening func(pid int, port uint16, protocol string) bool
	// Watch returns what tells the agent, through notify, in which
	// namespace the kernel removed something (kwatch.Watcher); the agent
	// repairs that namespace at once instead of at its next resync. The
	// default leaves out rule removals committed by lb's own processes
	// (lb.OwnProcess) and addresses meshd removed itself (a service's
	// VIP).
	Watch func(notify func(ns string, k kwatch.Kind)) Watcher
	// Listen opens the embedded DNS's UDP and TCP sockets on 127.0.0.11
	// inside a task's sandbox.
	Listen func(sandbox string) (net.PacketConn, net.Listener, error)
}

// Watcher is the agent's view of kwatch.Watcher.
type Watcher interface {
	Watch(ns string) error
	Unwatch(ns string)
	Close()
}

// Defaults, one place for each.
const (
	defaultResyncInterval = 30 * time.Second
	// desiredFile, in RunDir, keeps the last desired state verified.
	desiredFile = "desired.json"
	// gatewayMTU is mesh_gwbridge's MTU: it carries the node's own traffic,
	// not VXLAN, so the Ethernet default.
	gatewayMTU = 1500
)

// withDefaults checks cfg and fills the nil plug points with the real ones.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.NodeID == "":
		return c, errors.New("agent: NodeID is required")
	case !c.AdvertiseAddr.IsValid():
		return c, errors.New("agent: AdvertiseAddr is required")
	case !filepath.IsAbs(c.RunDir):
		return c, fmt.Errorf("agent: RunDir %q: want an absolute path", c.RunDir)
	case c.DataPlane != lb.ModeIPVS && c.DataPlane != lb.ModeIPTables:
		return c, fmt.Errorf("agent: DataPlane %q: want ipvs or iptables", c.DataPlane)
	case !c.GatewaySubnet.IsValid():
		return c, errors.New("agent: GatewaySubnet is required")
	case c.DB == nil:
		return c, errors.New("agent: DB is required")
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = defaultResyncInterval
	}
	if c.Kernel == nil {
		c.Kernel = overlay.NewKernel()
	}
	if c.Rules == nil {
		c.Rules = func(ns string) lb.Rules { return lb.IPTables{NetNS: ns} }
	}
	if c.Conntrack == nil {
		c.Conntrack = func(ns string) lb.Conntrack { return lb.KernelConntrack{NetNS: ns} }
	}
	if c.Listening == nil {
		c.Listening = listeningInProc
	}
	if c.Sysctls == nil {
		c.Sysctls = func(ns string) lb.Sysctls { return lb.ProcSysctls{NetNS: ns} }
	}
	if c.Runner == nil {
		c.Runner = task.Run
	}
	if c.Listen == nil {
		c.Listen = dns.ListenIn
	}
	if c.Watch == nil {
		c.Watch = func(notify func(string, kwatch.Kind)) Watcher { return kwatch.New(notify, lb.OwnProcess) }
	}
	return c, nil
}

// planeOptions are the seams a sandbox's data plane is built with.
func (c Config) planeOptions(ns string) ([]lb.Option, error) {
	opts := []lb.Option{lb.WithTimeouts(c.IPVSTimeouts), lb.WithRules(c.Rules(ns)), lb.WithConntrack(c.Conntrack(ns)), lb.WithSysctls(c.Sysctls(ns))}
	if c.FlowTables != nil {
		opts = append(opts, lb.WithFlowTables(c.FlowTables(ns), c.FlowOffload))
	}
	if c.IPVS != nil && c.DataPlane == lb.ModeIPVS {
		v, err := c.IPVS(ns)
		if err != nil {
			return nil, err
		}
		opts = append(opts, lb.WithIPVS(v))
	}
	return opts, nil
}
