package gossip

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meshd/meshd/internal/ratelog"
)

// Config configures a [DB]. Start from [DefaultConfig] or [LocalConfig] and
// set Name. [New] copies it: changing a Config afterwards has no effect.
//
// Durations and counts left at zero take their [DefaultConfig] value.
type Config struct {
	// Name is this node's name in the cluster, unique among its members and
	// stable across restarts (a restarted node with the same name takes over
	// its entries, see [DB]). Required.
	Name string

	// BindAddr is the IP address to listen on, UDP and TCP. "" means
	// "0.0.0.0".
	BindAddr string
	// BindPort is the port to listen on, UDP and TCP. Default 7946 (Swarm's
	// gossip port); 0 picks a free port, for tests.
	BindPort int

	// AdvertiseAddr is the IP address other nodes should use to reach this
	// one. "" lets memberlist pick: BindAddr, or a private address of this
	// host when BindAddr is unspecified.
	AdvertiseAddr string
	// AdvertisePort is the port advertised with AdvertiseAddr. 0 means the
	// bound port.
	AdvertisePort int

	// SecretKey encrypts and authenticates all gossip with AES-GCM. It must
	// be 16, 24 or 32 bytes (AES-128/192/256); empty means no encryption.
	// Nodes with different keys cannot talk: Join fails.
	SecretKey []byte

	// Meta is this node's metadata, seen by every member in [Member].Meta.
	// At most 512 bytes (memberlist's limit). Change it with [DB.UpdateMeta].
	Meta []byte

	// GossipInterval is how often this node sends queued updates to
	// GossipNodes random members. Shorter spreads updates faster and costs
	// more packets.
	GossipInterval time.Duration
	// GossipNodes is how many random members each gossip round goes to.
	GossipNodes int
	// RetransmitMult bounds how often an update is retransmitted:
	// RetransmitMult * ceil(log10(members+1)) sends in total. Higher makes
	// a lost packet less likely to lose an update, at more bandwidth.
	RetransmitMult int

	// ProbeInterval is how often this node probes one random member.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack before asking other
	// members to try (indirect probes). It should be above the 99th
	// percentile round-trip time and below ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a member that failed a probe stays
	// suspect before it is declared dead: SuspicionMult *
	// max(1, log10(members)) * ProbeInterval, shortened as other members
	// confirm. Lower detects failures sooner and risks declaring a slow node
	// dead.
	SuspicionMult int

	// PushPullInterval is how often this node exchanges its full state with
	// one random member (anti-entropy). It repairs whatever gossip lost.
	PushPullInterval time.Duration

	// GossipToTheDeadTime is how long a member declared dead is still
	// gossiped to, and remembered by memberlist as dead. It must let every
	// member hear of the death (a gossip round or two), or a member that
	// has forgotten it takes another's stale "alive" for news and the dead
	// member comes back. It should be short: memberlist shares an update's
	// retransmissions among its targets, dead ones included, so an update
	// written meanwhile may miss a live member and wait for push/pull.
	GossipToTheDeadTime time.Duration

	// ReconnectInterval is how often this node tries to reach one member
	// it saw die (not leave), by a push/pull to its address. memberlist
	// forgets a dead member at once and gossips no more to it, so this is
	// how a partition heals once the network does, and how a member that
	// was declared dead while alive (a stall) is taken back.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a dead member is tried; after it, the
	// member must join again.
	ReconnectTimeout time.Duration

	// TombstoneTTL is how long a deleted entry is remembered as a tombstone,
	// so that an older copy still travelling cannot bring it back.
	TombstoneTTL time.Duration
	// ReapInterval is how often expired tombstones are removed.
	ReapInterval time.Duration

	// Logger receives the DB's and memberlist's logs. nil discards them.
	Logger *slog.Logger

	// MemberChanged, if set, is told when a member joins (or comes back),
	// dies or leaves, as this node sees it; metadata updates of a live
	// member are not reported. It is called with the DB's lock held, in
	// the order of the changes: it must not block nor call the DB. The
	// Member (and its Meta) is the callee's.
	MemberChanged func(MemberChange)

	// Transport carries memberlist's packets and streams. nil means
	// memberlist's UDP+TCP transport on BindAddr:BindPort; with a Transport,
	// BindAddr and BindPort are ignored. memberlist.MockNetwork gives
	// in-memory transports for tests; make all of its transports before
	// starting any node, as it is not safe for concurrent use.
	Transport memberlist.Transport

	// compress turns memberlist's compression on, as earlier versions of
	// meshd had it: the tests check that nodes with and without it talk.
	compress bool
}

// DefaultConfig returns values for a LAN cluster of a handful to a few dozen
// nodes (BindPort 7946). The gossip timers are more eager than memberlist's
// LAN defaults: the tables drive the data plane, and an endpoint that takes
// seconds to reach the other nodes is a visible outage. Clusters are small,
// so the extra packets cost little.
func DefaultConfig() Config {
	return Config{
		BindAddr: "0.0.0.0",
		BindPort: 7946, // Swarm's gossip port, as in the tutorials
		// Gossip's capacity is packets: every node that accepts an update
		// sends it RetransmitMult * ceil(log10(n+1)) times (10 at 10 to 99
		// nodes), about 6 updates of 200 bytes fit a 1.4 KB packet, and a
		// node sends at most GossipNodes packets per GossipInterval, so
		// the cluster carries about 6 * GossipNodes / GossipInterval / 10
		// updates per second, whatever its size. 4 every 50 ms carried 48:
		// a burst of 100 puts/s at 30 nodes queued up (p99 0.7 and 1.8 s
		// in two runs of BenchmarkConvergence). 10 every 40 ms carry 150,
		// and with GossipNodes at the retransmit limit a node spends an
		// update's whole budget in the round after it gets it, on 10
		// distinct members. p99 at 30 nodes, 3 runs: 72 to 77 ms at 100
		// puts/s, 69 to 81 ms at 20. The cost is packets while updates
		// flow, at most 250 a second per node: 243 to 249 (113 kB/s) at
		// 100 puts/s, 178 to 181 (38 kB/s) at 20. An idle node sends no
		// gossip, only probes and acks: 4 packets a second.
		GossipInterval: 40 * time.Millisecond,
		GossipNodes:    10,
		// Each node that gets an update sends it 5 * ceil(log10(n+1)) times
		// (10 at 10 to 99 nodes). A simulation of this epidemic finds an
		// update that misses some node, which then waits for push/pull, for
		// 0.6% of updates at 30 nodes with 4, 0.1% with 5; memberlist's
		// default is 4. Fewer would carry more updates per packet sent, but
		// an update that misses a node then waits there for push/pull.
		RetransmitMult: 5,
		// Twice as eager as memberlist's LAN failure detector: probe one
		// node every 500 ms, allow 250 ms for the ack (a LAN answers in
		// well under a millisecond), and suspect for 2 intervals (1 s
		// below 10 nodes, 1.5 s at 30) with no wait for other members to
		// confirm. A killed node is dead everywhere after about 2 s at 3
		// nodes, and its backends leave every balancer with it; memberlist's
		// values take 6 to 8 s, a visible outage. The cost: a node that
		// cannot answer for over a second (a stall, a saturated link) is
		// declared dead too; it comes back within a ReconnectInterval of
		// answering, with its entries, and loses its tasks only if it
		// stays away for the manager's reschedule delay.
		ProbeInterval: 500 * time.Millisecond,
		ProbeTimeout:  250 * time.Millisecond,
		SuspicionMult: 2,
		// Full state is small (hundreds of entries), so exchange it three
		// times as often as memberlist's 30 s: an update gossip missed
		// arrives within seconds, not half a minute.
		PushPullInterval: 10 * time.Second,
		// memberlist's 30 s lost about one update in thirty to the only
		// live member of a cluster of three with one dead, for 30 s after
		// each death: it covered the rescheduling of the dead node's tasks
		// (RescheduleDelay, 5 s). Two seconds are ten times what a death
		// takes to reach every member (TestPartitionHeals relies on it;
		// TestUpdatesAfterADeathReachTheLiveByGossip measures the loss).
		GossipToTheDeadTime: 2 * time.Second,
		// A dead member is retried every 2 s for NetworkDB's 24 h: one
		// connection attempt per interval, whatever the number of dead.
		ReconnectInterval: 2 * time.Second,
		ReconnectTimeout:  24 * time.Hour,
		// NetworkDB's values: a tombstone outlives any reasonable partition,
		// and expiring ones are swept every 5 s.
		TombstoneTTL: 30 * time.Minute,
		ReapInterval: 5 * time.Second,
	}
}

// LocalConfig returns fast timers for several nodes in one process on
// 127.0.0.1, as tests use: free ports, updates in tens of milliseconds,
// a dead node noticed in about two seconds.
func LocalConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0                           // tests run many nodes side by side
	c.GossipInterval = 20 * time.Millisecond // loopback carries it easily
	// Suspicion lasts 4 * 300 ms: a node is declared dead quickly, yet a
	// test binary stalled for a second (-race on a busy machine) does not
	// see its nodes flap.
	c.ProbeInterval = 300 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.SuspicionMult = 4
	c.PushPullInterval = 2 * time.Second
	c.GossipToTheDeadTime = time.Second
	c.ReconnectInterval = 500 * time.Millisecond
	c.TombstoneTTL = 5 * time.Second
	c.ReapInterval = 100 * time.Millisecond
	return c
}

// withDefaults fills zero durations and counts, then validates.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.BindAddr == "" {
		c.BindAddr = d.BindAddr
	}
	fillDuration(&c.GossipInterval, d.GossipInterval)
	fillDuration(&c.ProbeInterval, d.ProbeInterval)
	fillDuration(&c.ProbeTimeout, d.ProbeTimeout)
	fillDuration(&c.PushPullInterval, d.PushPullInterval)
	fillDuration(&c.GossipToTheDeadTime, d.GossipToTheDeadTime)
	fillDuration(&c.ReconnectInterval, d.ReconnectInterval)
	fillDuration(&c.ReconnectTimeout, d.ReconnectTimeout)
	fillDuration(&c.TombstoneTTL, d.TombstoneTTL)
	fillDuration(&c.ReapInterval, d.ReapInterval)
	fillInt(&c.GossipNodes, d.GossipNodes)
	fillInt(&c.RetransmitMult, d.RetransmitMult)
	fillInt(&c.SuspicionMult, d.SuspicionMult)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.SecretKey = clone(c.SecretKey)
	c.Meta = clone(c.Meta)
	return c, c.validate()
}

func fillDuration(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}

func fillInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

func (c Config) validate() error {
	for _, n := range []struct {
		field string
		v     int64
	}{
		{"GossipInterval", int64(c.GossipInterval)}, {"GossipNodes", int64(c.GossipNodes)},
		{"RetransmitMult", int64(c.RetransmitMult)}, {"ProbeInterval", int64(c.ProbeInterval)},
		{"ProbeTimeout", int64(c.ProbeTimeout)}, {"SuspicionMult", int64(c.SuspicionMult)},
		{"PushPullInterval", int64(c.PushPullInterval)}, {"GossipToTheDeadTime", int64(c.GossipToTheDeadTime)},
		{"ReconnectInterval", int64(c.ReconnectInterval)},
		{"ReconnectTimeout", int64(c.ReconnectTimeout)}, {"TombstoneTTL", int64(c.TombstoneTTL)},
		{"ReapInterval", int64(c.ReapInterval)},
	} {
		if n.v < 0 {
			return fmt.Errorf("gossip: config: %s must not be negative", n.field)
		}
	}
	for _, ch := range []struct {
		bad   bool
		field string
		why   string
	}{
		{c.Name == "", "Name", "is required"},
		{len(c.Name) > maxNameSize, "Name", fmt.Sprintf("is longer than %d bytes", maxNameSize)},
		{net.ParseIP(c.BindAddr) == nil, "BindAddr", fmt.Sprintf("%q is not an IP address", c.BindAddr)},
		{c.BindPort < 0 || c.BindPort > 65535, "BindPort", fmt.Sprintf("%d is out of range 0-65535", c.BindPort)},
		{c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil, "AdvertiseAddr",
			fmt.Sprintf("%q is not an IP address", c.AdvertiseAddr)},
		{c.AdvertisePort < 0 || c.AdvertisePort > 65535, "AdvertisePort",
			fmt.Sprintf("%d is out of range 0-65535", c.AdvertisePort)},
		{len(c.SecretKey) > 0 && memberlist.ValidateKey(c.SecretKey) != nil, "SecretKey",
			fmt.Sprintf("is %d bytes, want 16, 24 or 32", len(c.SecretKey))},
		{len(c.Meta) > memberlist.MetaMaxSize, "Meta",
			fmt.Sprintf("is %d bytes, limit %d", len(c.Meta), memberlist.MetaMaxSize)},
		{c.ProbeTimeout >= c.ProbeInterval, "ProbeTimeout",
			fmt.Sprintf("%v must be shorter than ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)},
	} {
		if ch.bad {
			return fmt.Errorf("gossip: config: %s %s", ch.field, ch.why)
		}
	}
	return nil
}

// memberlistConfig translates c for memberlist. Values not in Config keep
// memberlist's LAN defaults.
func (c Config) memberlistConfig(d memberlist.Delegate, ev memberlist.EventDelegate, ping memberlist.PingDelegate, lw logWriter) *memberlist.Config {
	m := memberlist.DefaultLANConfig()
	m.Name = c.Name
	m.BindAddr = c.BindAddr
	m.BindPort = c.BindPort
	m.AdvertiseAddr = c.AdvertiseAddr
	m.AdvertisePort = c.AdvertisePort
	if m.AdvertisePort == 0 {
		m.AdvertisePort = c.BindPort // memberlist replaces 0 by the picked port
	}
	m.SecretKey = c.SecretKey
	m.GossipInterval = c.GossipInterval
	m.GossipNodes = c.GossipNodes
	m.RetransmitMult = c.RetransmitMult
	m.ProbeInterval = c.ProbeInterval
	m.ProbeTimeout = c.ProbeTimeout
	m.SuspicionMult = c.SuspicionMult
	m.PushPullInterval = c.PushPullInterval
	// memberlist's LZW costs more CPU than the bytes it saves are worth on
	// a LAN: a push/pull carries every entry (about 1 MB at 1000
	// services), compressed and decompressed on both sides each time; it
	// was a sixth of an idle node's CPU there. A gossip packet is filled
	// before compression, so it carries as many updates either way: at 30
	// nodes and 100 puts/s, twice the bytes (about 190 kB/s a node) and a
	// lower p99, as the nodes spend less CPU (make bench-gossip).
	// Receivers decode compressed and plain messages alike, so nodes with
	// and without it talk.
	m.EnableCompression = c.compress
	m.GossipToTheDeadTime = c.GossipToTheDeadTime
	m.Transport = c.Transport
	m.Delegate = d
	m.Events = ev
	m.Ping = ping
	m.Logger = log.New(lw, "", 0)
	return m
}

// logWriter turns memberlist's "[LEVEL] memberlist: text" lines into slog
// records. memberlist logs an error for every packet it cannot decrypt or
// decode, so anyone who can send to the gossip port could fill the log:
// warnings and errors go through a limiter, keyed by the source address
// (memberlist's "from=host:port", the port aside, as a sender can vary
// it) and the message's leading phrase.
//
// It is also how this node learns that its probe of a member failed:
// memberlist logs "Suspect NAME has failed, no acks received" and tells
// its delegates nothing, so suspect, if set, gets NAME from that line.
type logWriter struct {
	l       *slog.Logger
	limit   *ratelog.Limiter
	suspect func(name string)
}

// suspectPrefix and suspectSuffix frame memberlist's line (v0.5 to v0.7) for a probe that got
// no ack; TestSuspectEvent fails if a new version changes it.
const suspectPrefix, suspectSuffix = "Suspect ", " has failed, no acks received"

func (w logWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, lv := range map[string]slog.Level{
		"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo,
		"[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError,
	} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			msg, level = strings.TrimSpace(rest), lv
			break
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	if name, ok := strings.CutPrefix(msg, suspectPrefix); ok && w.suspect != nil {
		if name, ok = strings.CutSuffix(name, suspectSuffix); ok {
			w.suspect(name)
		}
	}
	if level < slog.LevelWarn {
		w.l.Log(context.Background(), level, msg, "component", "memberlist")
		return len(p), nil
	}
	w.limit.Log(context.Background(), w.l, level, logKey(level, msg), msg, "component", "memberlist")
	return len(p), nil
}

var _ io.Writer = logWriter{}

// logKey is what a memberlist line is rate-limited by: its level, the
// host of its "from=" address and its text up to the first ": " without
// that address, so "Decrypt packet failed: … from=10.0.0.9:40000" from
// any port of 10.0.0.9 is one line.
func logKey(level slog.Level, msg string) string {
	host := ""
	if i := strings.LastIndex(msg, "from="); i >= 0 {
		addr, _, _ := strings.Cut(msg[i+len("from="):], " ")
		host = addr
		if h, _, err := net.SplitHostPort(addr); err == nil {
			host = h
		}
		msg = msg[:i]
	}
	phrase, _, _ := strings.Cut(msg, ": ")
	return level.String() + "|" + host + "|" + strings.TrimSpace(phrase)
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
