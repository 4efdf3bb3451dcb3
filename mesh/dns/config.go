package dns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Limits shared with resolv.conf and Swarm.
const (
	// maxUpstreams is how many upstream servers are used, in order: glibc's
	// MAXNS, and what Swarm's resolver takes from the host's resolv.conf.
	maxUpstreams = 3
	// defaultResolvConf is where the node's upstream servers are read.
	defaultResolvConf = "/etc/resolv.conf"
)

// ExchangeFunc sends m to upstream over proto ("udp" or "tcp") and returns
// the reply. It must honour ctx's deadline and cancellation. The server
// calls it from many goroutines at once; m is the caller's, not to be
// kept after the call returns. The default opens its sockets from the
// calling goroutine, so in the network namespace the process runs in:
// the node's, as forwarded queries must leave from there.
type ExchangeFunc func(ctx context.Context, m *dns.Msg, upstream netip.AddrPort, proto string) (*dns.Msg, error)

// ObserveFunc is told of each query a [Resolver] answered: the answer's
// rcode as dig prints it ("NOERROR", "NXDOMAIN", "SERVFAIL", …) and how
// long the answer took from reading the query to being ready to send,
// forwarded ones included. Dropped queries (no answer) are not reported.
// It is called from many goroutines at once and must not block.
type ObserveFunc func(rcode string, took time.Duration)

// Config configures a [Server]. [New] copies it: later changes have no
// effect.
type Config struct {
	// TTL of local answers, whole seconds. Zero means 600 s, Swarm's
	// value: long enough that clients that cache do not hammer the
	// resolver, short enough that a rescheduled dnsrr task is picked up.
	// VIP answers rarely change, task IPs do; clients that pin one address
	// for the TTL should use VIPs.
	TTL time.Duration
	// Upstreams are the servers unknown names are forwarded to, in order;
	// only the first three are used. Empty means: read the nameserver
	// lines of ResolvConf.
	Upstreams []netip.AddrPort
	// ResolvConf is the file read when Upstreams is empty. Empty means
	// /etc/resolv.conf. A missing file, or one without nameservers, leaves
	// no upstream: forwarded queries then get SERVFAIL (Docker falls back to
	// public servers; meshd sends nothing where nobody said).
	ResolvConf string
	// Timeout is how long one upstream gets to answer before the next one
	// is tried. Zero means 4 s (Swarm's): under the 5 s glibc waits for one
	// try, so a dead first upstream delays a lookup without failing it.
	Timeout time.Duration
	// MaxInFlight bounds the forwarded queries of one task in flight at
	// once; beyond it a query gets REFUSED at once. Zero means 1024
	// (Swarm's). It keeps one task's resolver storm from piling up
	// goroutines and sockets; local answers are not bounded by it.
	MaxInFlight int
	// Exchange sends one forwarded query. Nil means the server's own: UDP
	// on a few random-port sockets per upstream shared by the queries in
	// flight, TCP on a connection each, all opened from the calling
	// goroutine (see ExchangeFunc).
	Exchange ExchangeFunc
	// Observe, when set, is told of every answered query (metrics). Nil
	// times nothing.
	Observe ObserveFunc
	// Logger receives warnings (unusable upstreams, dropped queries) and
	// debug lines per forward failure. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults New applies to zero fields, spelled
// out.
func DefaultConfig() Config {
	return Config{
		TTL:         600 * time.Second,
		ResolvConf:  defaultResolvConf,
		Timeout:     4 * time.Second,
		MaxInFlight: 1024,
	}
}

// withDefaults validates c, fills zero fields and reads the upstreams.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	switch {
	case c.TTL < 0 || c.TTL > (1<<31-1)*time.Second:
		return c, fmt.Errorf("dns: TTL %s out of range [0, 2^31-1 s]", c.TTL)
	case c.Timeout < 0:
		return c, fmt.Errorf("dns: Timeout %s is negative", c.Timeout)
	case c.MaxInFlight < 0:
		return c, fmt.Errorf("dns: MaxInFlight %d is negative", c.MaxInFlight)
	}
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.ResolvConf == "" {
		c.ResolvConf = d.ResolvConf
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.Upstreams) == 0 {
		ups, err := readResolvConf(c.ResolvConf)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return c, fmt.Errorf("dns: ResolvConf: %w", err)
		}
		c.Upstreams = ups
	}
	for _, u := range c.Upstreams {
		if !u.IsValid() || u.Port() == 0 {
			return c, fmt.Errorf("dns: Upstreams: invalid address %q", u)
		}
	}
	c.Upstreams = append([]netip.AddrPort(nil), c.Upstreams...)
	return c, nil
}

// logUpstreams tells what forwarding will do with the configured servers.
func (c Config) logUpstreams() []netip.AddrPort {
	ups := c.Upstreams
	if len(ups) == 0 {
		c.Logger.Warn("dns: no upstream servers: unknown names will get SERVFAIL", "resolv_conf", c.ResolvConf)
	}
	if len(ups) > maxUpstreams {
		c.Logger.Warn("dns: ignoring upstream servers past the first three", "ignored", ups[maxUpstreams:])
		ups = ups[:maxUpstreams]
	}
	for _, u := range ups {
		if u.Addr().IsLoopback() {
			c.Logger.Warn("dns: upstream on loopback: reachable only from the node namespace, not from tasks",
				"upstream", u)
		}
	}
	return ups
}

// readResolvConf returns the nameservers of a resolv.conf file, port 53.
func readResolvConf(path string) ([]netip.AddrPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseResolvConf(f)
}

// parseResolvConf reads nameserver lines, as glibc does: other lines are
// ignored, and so are addresses that do not parse.
func parseResolvConf(r io.Reader) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read resolv.conf: %w", err)
	}
	return out, nil
}
