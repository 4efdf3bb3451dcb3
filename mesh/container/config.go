package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/task"
	"github.com/meshd/meshd/overlay"
)

// Config is what an [Engine] needs; zero seams take the real kernel.
type Config struct {
	// RunDir holds the state file, the containers' dirs and, under
	// netns/, their namespace files. Required, absolute.
	RunDir string
	// NodeID and NodeName are the node's, shown on every container; empty
	// outside a cluster.
	NodeID, NodeName string
	// DNSUpstreams are where names the containers' resolvers do not know
	// go; empty reads /etc/resolv.conf.
	DNSUpstreams []netip.AddrPort
	DNSTTL       time.Duration
	// DNSObserve is told of every query the containers' resolvers answer
	// (metrics); nil times nothing.
	DNSObserve dns.ObserveFunc
	// ResyncInterval is how often the bridges and rules are compared with
	// the kernel and repaired. Zero means 10 s.
	ResyncInterval time.Duration
	Logger         *slog.Logger

	// Seams, for the tests.
	Kernel overlay.Kernel
	// Rules returns the iptables of a namespace ("" = the node's own).
	Rules  func(nsPath string) lb.Rules
	Runner func(ctx context.Context, spec task.Spec, report func(task.State))
	Listen func(sandbox string) (net.PacketConn, net.Listener, error)
	// Taken returns the node's prefixes in use, which a new network's
	// subnet must not overlap.
	Taken func() []netip.Prefix
	// PortFree says whether a host port is free for a published port.
	PortFree func(proto string, port uint16) bool
	Now      func() time.Time
}

const defaultResync = 10 * time.Second

func (c Config) withDefaults() (Config, error) {
	if !filepath.IsAbs(c.RunDir) {
		return c, fmt.Errorf("container: RunDir %q: want an absolute path", c.RunDir)
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = defaultResync
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Kernel == nil {
		c.Kernel = overlay.NewKernel()
	}
	if c.Rules == nil {
		c.Rules = func(ns string) lb.Rules { return lb.IPTables{NetNS: ns} }
	}
	if c.Runner == nil {
		c.Runner = task.Run
	}
	if c.Listen == nil {
		c.Listen = dns.ListenIn
	}
	if c.Taken == nil {
		return c, errors.New("container: Taken is required")
	}
	if c.PortFree == nil {
		c.PortFree = func(string, uint16) bool { return true }
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
