package mesh

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
)

// Ports and places the mesh uses unless told otherwise, as Swarm does.
// The cluster API's port is api.DefaultAPIPort (2377), which meshctl
// shares.
const (
	DefaultGossipPort   = api.DefaultGossipPort   // memberlist, tcp and udp
	DefaultDataPathPort = api.DefaultDataPathPort // VXLAN
	DefaultRunDir       = "/var/run/meshd"
)

// DefaultConfig returns a node's configuration as Swarm's defaults have
// it, without the fields only the node can know (NodeName,
// AdvertiseAddr). ToConfig starts from it.
func DefaultConfig() Config {
	return Config{
		ListenAddr:   netip.AddrPortFrom(netip.IPv4Unspecified(), api.DefaultAPIPort),
		RunDir:       DefaultRunDir,
		DataPathPort: DefaultDataPathPort,
		GossipPort:   DefaultGossipPort,
		LBMode:       lb.ModeAuto,
		// A joining node retries a manager that may still be starting for
		// this long: long enough for a lab's first node to come up.
		JoinTimeout: 10 * time.Second,
		// Swarm's: established connections get two seconds to finish.
		DrainDelay: 2 * time.Second,
		// Swarm rotates its gossip key every 12 hours.
		GossipKeyRotation: 12 * time.Hour,
		// A node declared dead (2 s or so) that does not come back
		// within 5 s more loses its tasks: a restart keeps them.
		RescheduleDelay: 5 * time.Second,
		FlowOffload:     true,
		// kube-proxy's: the kernel sizes the table from memory (8,192
		// entries in a 1 GB VM, which 40 s of short connections through
		// the mesh filled; lb's doc.go).
		ConntrackMax: lb.DefaultConntrackMax(runtime.NumCPU()),
	}
}

// LocalConfig returns DefaultConfig with the timers a test wants: a
// missing manager is reported within two seconds and removed tasks stop
// at once.
func LocalConfig() Config {
	c := DefaultConfig()
	c.JoinTimeout = 2 * time.Second
	c.DrainDelay = 0
	return c
}

// UserConfig is the daemon's configuration as typed on the command line.
// ToConfig checks it; nothing below cmd/ sees unparsed strings. Empty
// strings and zero numbers take DefaultConfig's values; durations are
// taken as given (a zero DrainDelay stops removed tasks at once), so a
// command line shows DefaultConfig's as its flag defaults.
type UserConfig struct {
	NodeName      string
	AdvertiseAddr string
	ListenAddr    string
	Init          bool
	Join          string
	Token         string
	TokenFile     string
	RunDir        string
	DataPathPort  int
	LBMode        string
	JoinTimeout   time.Duration
	DNSUpstreams  []string
	DNSTTL        time.Duration
	DrainDelay    time.Duration
	// GossipKeyRotation is how often a leading manager rotates the gossip
	// key; zero keeps the default.
	GossipKeyRotation time.Duration
	// RescheduleDelay is how long a node may be down before its tasks
	// move; zero keeps the default.
	RescheduleDelay time.Duration
	IPVSTimeouts    string
	// ConntrackMax is --conntrack-max: a count, "0" to leave the kernel's
	// table alone, or empty for the default.
	ConntrackMax string
	// NoFlowOffload is --flow-offload=false.
	NoFlowOffload bool
	// TokenEnv is $MESHD_TOKEN as the command line found it.
	TokenEnv    string
	SocketGroup string
	// MetricsAddr is --metrics-addr, IP:port; empty serves no metrics.
	MetricsAddr string
	// TestHooks is --test-hooks.
	TestHooks bool
}

// Config is the checked configuration of one meshd.
type Config struct {
	// NodeName is the hostname shown in node ls. Default: the host's name.
	NodeName string
	// AdvertiseAddr is the underlay address other nodes reach this one at.
	// Default: the first private address of the host (go-sockaddr).
	AdvertiseAddr netip.Addr
	// ListenAddr is where the cluster API listens (the manager's joins and
	// forwarded writes); gossip binds the same address on DefaultGossipPort.
	ListenAddr netip.AddrPort
	// Init starts a new cluster at the first start, as swarm init does, for
	// scripted starts; without Init or Join meshd waits, in no cluster,
	// for swarm init or swarm join through its socket.
	Init bool
	// Join is a manager's cluster API (host:port) to join at the first
	// start, with Token; a node already in a cluster rejoins the one
	// recorded in its run dir.
	Join string
	// Token is the join token for Join.
	Token string
	// RunDir holds the socket, the state files and the namespace files.
	RunDir string
	// DataPathPort is the VXLAN UDP port, 1024–49151.
	DataPathPort int
	// LBMode is the requested data plane.
	LBMode lb.Mode
	// JoinTimeout bounds how long a joining node retries an unreachable
	// manager before giving up. DefaultConfig: 10 s.
	JoinTimeout time.Duration
	// DNSUpstreams are where the embedded DNS forwards names it does not
	// know. Empty means the node's /etc/resolv.conf.
	DNSUpstreams []netip.AddrPort
	// DNSTTL is the TTL of the embedded DNS's own answers; zero is 600 s.
	DNSTTL time.Duration
	// GossipKeyRotation is how often the leader rotates the gossip key.
	GossipKeyRotation time.Duration
	// RescheduleDelay is how long a node may be down before a leading
	// manager moves its tasks to other nodes. DefaultConfig: 5 s.
	RescheduleDelay time.Duration
	// DrainDelay is how long a task leaving the desired state keeps its
	// backends at weight 0 before it is stopped, so established
	// connections can finish. Zero stops at once. DefaultConfig: 2 s
	// (Swarm's).
	DrainDelay time.Duration
	// IPVSTimeouts are the IPVS connection timeouts set in every sandbox
	// (tcp, tcpfin, udp); zero values leave the kernel's (900 s, 120 s,
	// 300 s). Swarm cannot change the 900 s that cuts idle connections.
	IPVSTimeouts lb.Timeouts
	// FlowOffload gives each sandbox of the iptables data plane an
	// nftables flowtable that carries a balanced connection, once
	// established, between the sandbox's interfaces without its hooks
	// (lb's doc.go, "Flow offload"), where the kernel has flowtables.
	// DefaultConfig: true.
	FlowOffload bool
	// ConntrackMax is the least nf_conntrack_max (and as many hash
	// buckets) the node keeps: raised where lower, never lowered, logged
	// when changed; a lab's nodes share their host's table and leave it.
	// Zero leaves the kernel's. DefaultConfig: kube-proxy's, 32,768 per
	// CPU and at least 131,072 (lb.DefaultConntrackMax).
	ConntrackMax int
	// GossipPort overrides DefaultGossipPort (tests).
	GossipPort int
	// SocketGroup, when set, is the group that shares the unix socket
	// (0660) and may cross the run dir (0710), as dockerd's -G; SocketGID
	// is its ID. Empty: both are root's alone (0600, 0700).
	SocketGroup string
	SocketGID   int
	// MetricsAddr is where /metrics is served in Prometheus' text format
	// (plain HTTP, no authentication: bind it to an address only those who
	// may read it reach). The zero value, the default, serves none, as
	// dockerd's --metrics-addr; Docker's port is 9323.
	MetricsAddr netip.AddrPort
	// TestHooks offers on the local socket what only tests should use:
	// POST /v1/debug/repair, which pauses the agent's reconciling so that
	// a change made by hand to the kernel stays for a test to look at
	// (meshctl debug repair pause). Off by default; a node refuses the
	// hooks without it, so a production node cannot be paused by mistake.
	TestHooks bool
	// Logger receives the daemon's structured logs; nil discards them.
	Logger *slog.Logger
}

// ToConfig checks every field and fills in defaults; the error names the flag.
func (u UserConfig) ToConfig() (Config, error) {
	c := DefaultConfig()
	c.Init, c.Join, c.TestHooks = u.Init, u.Join, u.TestHooks
	c.FlowOffload = !u.NoFlowOffload
	var err error
	if c.Token, err = u.token(); err != nil {
		return c, err
	}
	if c.Init && c.Join != "" {
		return c, fmt.Errorf("--init and --join exclude each other")
	}
	if c.Init && c.Token != "" {
		return c, fmt.Errorf("--token is for --join; swarm init makes the cluster's tokens")
	}
	if c.NodeName, err = nodeName(u.NodeName); err != nil {
		return c, err
	}
	if c.AdvertiseAddr, err = advertiseAddr(u.AdvertiseAddr); err != nil {
		return c, err
	}
	if c.ListenAddr, err = listenAddr(u.ListenAddr); err != nil {
		return c, err
	}
	if c.Join != "" {
		if c.Join, err = hostPort(c.Join, api.DefaultAPIPort); err != nil {
			return c, fmt.Errorf("--join: %w", err)
		}
		if c.Token == "" {
			return c, fmt.Errorf("--join needs --token (print it on the manager with: meshctl swarm join-token)")
		}
	}
	if c.Token != "" {
		if err := api.CheckToken(c.Token); err != nil {
			return c, fmt.Errorf("--token: %w", err)
		}
	}
	if u.RunDir != "" {
		c.RunDir = u.RunDir
	}
	if u.DataPathPort != 0 {
		c.DataPathPort = u.DataPathPort
	}
	if c.DataPathPort < 1024 || c.DataPathPort > 49151 {
		return c, fmt.Errorf("--data-path-port %d: want 1024-49151", c.DataPathPort)
	}
	if u.LBMode != "" {
		if c.LBMode, err = lb.ParseMode(u.LBMode); err != nil {
			return c, fmt.Errorf("--lb-mode: %w", err)
		}
	}
	if u.JoinTimeout < 0 {
		return c, fmt.Errorf("--join-timeout %s: must not be negative", u.JoinTimeout)
	}
	if u.JoinTimeout > 0 {
		c.JoinTimeout = u.JoinTimeout
	}
	for _, s := range u.DNSUpstreams {
		hp, err := hostPort(s, 53)
		if err != nil {
			return c, fmt.Errorf("--dns-upstream: %w", err)
		}
		ap, err := netip.ParseAddrPort(hp)
		if err != nil {
			return c, fmt.Errorf("--dns-upstream %s: want an IP address[:port]", api.Quote(s))
		}
		c.DNSUpstreams = append(c.DNSUpstreams, ap)
	}
	if u.DNSTTL < 0 {
		return c, fmt.Errorf("--dns-ttl %s: must not be negative", u.DNSTTL)
	}
	c.DNSTTL = u.DNSTTL
	if u.DrainDelay < 0 {
		return c, fmt.Errorf("--drain-delay %s: must not be negative", u.DrainDelay)
	}
	c.DrainDelay = u.DrainDelay
	if u.GossipKeyRotation < 0 || u.GossipKeyRotation > 0 && u.GossipKeyRotation < time.Second {
		return c, fmt.Errorf("--gossip-key-rotation %s: want at least 1s", u.GossipKeyRotation)
	}
	if u.GossipKeyRotation > 0 {
		c.GossipKeyRotation = u.GossipKeyRotation
	}
	if u.RescheduleDelay < 0 || u.RescheduleDelay > 0 && u.RescheduleDelay < time.Second || u.RescheduleDelay > time.Hour {
		return c, fmt.Errorf("--reschedule-delay %s: want 1s to 1h", u.RescheduleDelay)
	}
	if u.RescheduleDelay > 0 {
		c.RescheduleDelay = u.RescheduleDelay
	}
	if u.IPVSTimeouts != "" {
		if c.IPVSTimeouts, err = lb.ParseTimeouts(u.IPVSTimeouts); err != nil {
			return c, fmt.Errorf("--ipvs-timeouts: %w", err)
		}
	}
	if u.ConntrackMax != "" {
		n, err := strconv.Atoi(u.ConntrackMax)
		if err != nil || n != 0 && (n < lb.MinConntrackMax || n > lb.MaxConntrackMax) {
			return c, fmt.Errorf("--conntrack-max %s: want 0 (leave the kernel's) or %d to %d", api.Quote(u.ConntrackMax), lb.MinConntrackMax, lb.MaxConntrackMax)
		}
		c.ConntrackMax = n
	}
	if u.SocketGroup != "" {
		if c.SocketGroup, c.SocketGID, err = lookupGroup(u.SocketGroup); err != nil {
			return c, err
		}
	}
	if u.MetricsAddr != "" {
		if c.MetricsAddr, err = metricsAddr(u.MetricsAddr, c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// metricsAddr checks --metrics-addr against the TCP ports meshd itself
// listens on (the cluster API's, gossip's), which it would take first.
func metricsAddr(s string, c Config) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("--metrics-addr %s: want IP:port, e.g. 127.0.0.1:9323", api.Quote(s))
	}
	switch int(ap.Port()) {
	case int(c.ListenAddr.Port()):
		return netip.AddrPort{}, fmt.Errorf("--metrics-addr %s: port %d is the cluster API's (--listen-addr)", api.Quote(s), ap.Port())
	case c.GossipPort:
		return netip.AddrPort{}, fmt.Errorf("--metrics-addr %s: port %d is gossip's", api.Quote(s), ap.Port())
	}
	return ap, nil
}

// token is the join token from whichever of --token, --token-file and
// $MESHD_TOKEN was given; more than one is an error, so that it is never
// unclear which token a node joined with.
func (u UserConfig) token() (string, error) {
	var given []string
	for _, g := range []struct{ name, v string }{{"--token", u.Token}, {"--token-file", u.TokenFile}, {"$MESHD_TOKEN", u.TokenEnv}} {
		if g.v != "" {
			given = append(given, g.name)
		}
	}
	switch {
	case len(given) > 1:
		return "", fmt.Errorf("%s exclude each other", strings.Join(given, " and "))
	case u.TokenFile != "":
		return readTokenFile(u.TokenFile)
	case u.TokenEnv != "":
		return strings.TrimSpace(u.TokenEnv), nil
	}
	return u.Token, nil
}

// lookupGroup resolves --socket-group, a group name or ID.
func lookupGroup(s string) (name string, gid int, err error) {
	g, err := user.LookupGroup(s)
	if err != nil {
		if g, err = user.LookupGroupId(s); err != nil {
			return "", 0, fmt.Errorf("--socket-group %s: no such group", api.Quote(s))
		}
	}
	gid, err = strconv.Atoi(g.Gid)
	if err != nil || gid < 0 {
		return "", 0, fmt.Errorf("--socket-group %s: group ID %q is not a number", api.Quote(s), g.Gid)
	}
	return g.Name, gid, nil
}

func nodeName(s string) (string, error) {
	if s == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("--node-name not given and hostname unknown: %w", err)
		}
		s = h
	}
	if len(s) > 63 {
		return "", fmt.Errorf("--node-name %s: longer than 63 characters", api.Quote(s))
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", fmt.Errorf("--node-name %s: only letters, digits, '-', '.' and '_'", api.Quote(s))
		}
	}
	return s, nil
}

func advertiseAddr(s string) (netip.Addr, error) {
	if s == "" {
		ip, err := sockaddr.GetPrivateIP()
		if err != nil || ip == "" {
			return netip.Addr{}, fmt.Errorf("--advertise-addr not given and no private address found; give one")
		}
		s = ip
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() || a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("--advertise-addr %s: want a unicast IPv4 address", api.Quote(s))
	}
	return a, nil
}

func listenAddr(s string) (netip.AddrPort, error) {
	if s == "" {
		s = "0.0.0.0"
	}
	hp, err := hostPort(s, api.DefaultAPIPort)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--listen-addr: %w", err)
	}
	ap, err := netip.ParseAddrPort(hp)
	if err != nil || !ap.Addr().Is4() {
		return netip.AddrPort{}, fmt.Errorf("--listen-addr %s: want an IPv4 address[:port]", api.Quote(s))
	}
	return ap, nil
}

// hostPort adds the default port to "host" and checks "host:port".
func hostPort(s string, def int) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, strconv.Itoa(def)
	}
	if host == "" {
		return "", fmt.Errorf("%s: missing host", api.Quote(s))
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%s: invalid port", api.Quote(s))
	}
	return net.JoinHostPort(host, port), nil
}

// readTokenFile reads a join token from a small file, so that it never
// shows in the command line.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	defer f.Close()
	// A join token lets anyone who reads it into the cluster: one every
	// user of the machine can read is refused, as ssh refuses such a key.
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o004 != 0 {
		return "", fmt.Errorf("--token-file %s: readable by every user (mode %04o); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("--token-file %s: %w", path, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s: empty", path)
	}
	return tok, nil
}
