package lb

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultFullResyncPeriod is how often a syncer reads iptables-save even
// when nothing changed, so that rules lost to a firewall reload or a hand
// edit come back (docker/cli#2274). It rebuilds everything only when the
// kernel no longer holds what it applied (see inSync); otherwise the check
// costs one iptables-save and writes nothing. The agent also calls Recheck
// as soon as the kernel reports rules removed in a namespace (nftables
// notifications), so this period is the safety net for changes that come
// without one (iptables-legacy, a rule inserted by hand): a save per
// namespace costs a process, and a node with a hundred services has some
// seventy namespaces.
const DefaultFullResyncPeriod = time.Minute

// rulesRebuilt counts the rebuilds of drifted chains; see RulesRebuilt.
var rulesRebuilt atomic.Uint64

// RulesRebuilt returns how many times, since the process started, a syncer
// of this package (host, sandbox, task or bridge chains) found that the
// kernel no longer held the rules it had applied (a firewall reload, a hand
// edit) and rebuilt them. A first sync and the full resync that follows a
// failure are not drift and are not counted. It is one count for the
// process rather than a callback per syncer because syncers are made in
// many places that a callback would have to reach; it is safe from any
// goroutine.
func RulesRebuilt() uint64 { return rulesRebuilt.Load() }

// syncer keeps one namespace's chains of one kind (owner) in step with a
// wanted ruleset, kube-proxy style: it remembers what it applied and writes
// only the difference, in one Apply. After a failure, on its first run and
// every fullPeriod it does a full resync instead: it reads the namespace
// (Save), then declares (thus flushes) and rebuilds every chain of ours,
// removes chains of ours it does not want, and makes the jumps from
// built-in chains exactly the wanted ones.
type syncer struct {
	rules      Rules
	owner      owner
	fullPeriod time.Duration    // 0: DefaultFullResyncPeriod
	now        func() time.Time // nil: time.Now
	rebuilt    atomic.Uint64    // this syncer's share of rulesRebuilt

	mu       sync.Mutex // guards the fields below
	have     ruleset    // what the last successful Apply left
	counts   counts     // entries per shared chain in have
	needFull bool       // the next sync is a full resync
	check    bool       // the next sync compares with the kernel first
	lastFull time.Time
}

func newSyncer(r Rules, o owner) *syncer {
	return &syncer{rules: r, owner: o, have: ruleset{}, counts: counts{}, needFull: true}
}

// sync makes the namespace hold want. It returns whether it did a full
// resync.
func (s *syncer) sync(ctx context.Context, want ruleset) (full bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	full = s.needFull || s.check || s.due(s.lastFull)
	var (
		p     plan
		nc    counts
		drift bool // the kernel lost what the last sync applied
	)
	if full {
		data, err := s.rules.Save(ctx)
		if err != nil {
			s.needFull = true
			return full, err
		}
		observed, err := parseSave(data)
		if err != nil {
			s.needFull = true
			return full, err
		}
		if !s.needFull && inSync(observed, s.have, s.owner) {
			// A periodic check that found what was applied last: no drift,
			// so only the change, without resetting rotation counters.
			p, nc = diffPlan(s.have, want, s.counts)
		} else {
			drift = !s.needFull
			p, nc = fullPlan(observed, want, s.owner)
		}
	} else {
		p, nc = diffPlan(s.have, want, s.counts)
	}
	if payload := p.bytes(); len(payload) > 0 {
		if err := s.rules.Apply(ctx, payload); err != nil {
			s.needFull = true // the kernel may hold part of it: look next time
			return full, fmt.Errorf("apply rules: %w", err)
		}
	}
	s.have, s.counts = want, nc
	if drift {
		rulesRebuilt.Add(1)
		s.rebuilt.Add(1)
	}
	if full {
		s.needFull, s.check, s.lastFull = false, false, s.clock()
	}
	return full, nil
}

// recheck makes the next sync read the kernel's rules, as the periodic
// check does: it rebuilds only if they differ from what it applied. (A
// rebuild would itself remove rules and be reported again.)
func (s *syncer) recheck() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.check = true
}

func (s *syncer) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// due reports whether a full resync last done at last is due again.
func (s *syncer) due(last time.Time) bool {
	period := s.fullPeriod
	if period == 0 {
		period = DefaultFullResyncPeriod
	}
	return s.clock().Sub(last) >= period
}

// portSyncer is the part HostSyncer and BridgeSyncer share: a syncer of
// host chains that forward published ports, which also forgets the
// conntrack entries a UDP port had before it was forwarded. Packets that
// came while it was not made them, and a client sending on would keep
// them, and miss the new DNAT, forever.
type portSyncer struct {
	s     *syncer
	where string // the namespace, for errors

	mu  sync.Mutex      // guards the fields below
	udp map[uint16]bool // the UDP ports the last sync forwarded
	ct  ctCleanup
}

// newPortSyncer writes through r (nil: iptables in the caller's
// namespace). Of opts, only [WithConntrack] applies; without it,
// conntrack entries are deleted in the caller's namespace.
func newPortSyncer(r Rules, o owner, where string, opts []Option) *portSyncer {
	if r == nil {
		r = IPTables{}
	}
	var po planeOptions
	for _, opt := range opts {
		opt(&po)
	}
	if po.ct == nil {
		po.ct = KernelConntrack{}
	}
	return &portSyncer{s: newSyncer(r, o), where: where, ct: ctCleanup{ct: po.ct}}
}

// sync applies rs, udp being the UDP ports it forwards.
func (p *portSyncer) sync(ctx context.Context, rs ruleset, udp map[uint16]bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for port := range udp {
		if !p.udp[port] {
			p.ct.add(ConntrackFilter{OrigDstPort: port, NotNATed: true})
		}
	}
	p.udp = udp
	if _, err := p.s.sync(ctx, rs); err != nil {
		return err
	}
	return p.ct.flush(p.where)
}

// HostSyncer keeps the node's own namespace in step with [HostRules]:
// nat and filter MESH-INGRESS and nat MESH-INGRESS-SNAT, with their jumps.
// Its methods may be called concurrently.
type HostSyncer struct{ p *portSyncer }

// NewHostSyncer returns a HostSyncer writing through r (nil: iptables in
// the caller's namespace). Of opts, only [WithConntrack] applies; without
// it, conntrack entries are deleted in the caller's namespace. It writes
// nothing until Sync.
func NewHostSyncer(r Rules, opts ...Option) *HostSyncer {
	return &HostSyncer{newPortSyncer(r, hostOwner, "the host namespace", opts)}
}

// Sync makes the host rules match h. A zero HostRules removes every chain
// and jump it owns. The caller sets net.ipv4.conf.mesh_gwbridge.route_localnet=1
// so that connections to localhost can be DNATed. When a UDP port starts
// being forwarded, Sync then deletes the entries to that port that
// nothing NATed (see portSyncer).
func (h *HostSyncer) Sync(ctx context.Context, want HostRules) error {
	if err := want.validate(); err != nil {
		return err
	}
	return h.p.sync(ctx, hostRules(want), hostUDPPorts(want))
}

// Recheck makes the next Sync read the kernel's rules and repair them:
// the kernel said some were removed.
func (h *HostSyncer) Recheck() { h.p.s.recheck() }

// Rebuilt returns how many times this syncer rebuilt drifted rules (its
// part of [RulesRebuilt]). A caller that compares it around its own Sync
// calls knows which namespace drifted. Safe from any goroutine.
func (h *HostSyncer) Rebuilt() uint64 { return h.p.s.rebuilt.Load() }

// TaskSyncer keeps one task sandbox's nat MESH-REDIRECT in step with
// [TaskRules]. Its methods may be called concurrently.
type TaskSyncer struct{ s *syncer }

// NewTaskSyncer returns a TaskSyncer writing through r, typically
// IPTables{NetNS: <task sandbox file>}. It writes nothing until Sync.
func NewTaskSyncer(r Rules) *TaskSyncer {
	if r == nil {
		r = IPTables{}
	}
	return &TaskSyncer{newSyncer(r, taskOwner)}
}

// Sync makes the task's redirects match t. A zero TaskRules removes them.
// Other rules in the sandbox (the DNS DNAT) are left alone.
func (t *TaskSyncer) Sync(ctx context.Context, want TaskRules) error {
	if err := want.validate(); err != nil {
		return err
	}
	_, err := t.s.sync(ctx, taskRules(want))
	return err
}

// Recheck makes the next Sync read the kernel's rules and repair them.
func (t *TaskSyncer) Recheck() { t.s.recheck() }

// Rebuilt returns how many times this syncer rebuilt drifted rules, as
// [HostSyncer.Rebuilt].
func (t *TaskSyncer) Rebuilt() uint64 { return t.s.rebuilt.Load() }
