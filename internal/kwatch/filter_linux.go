package kwatch

import (
	"syscall"

	"github.com/meshd/meshd/internal/nlsub"
)

// rtnetlink message types and multicast groups (linux/rtnetlink.h).
const (
	rtmNewLink  = 16
	rtmDelLink  = 17
	rtmDelAddr  = 21
	rtmDelRoute = 25
	rtmDelNeigh = 29

	rtmgrpLink      = 0x1
	rtmgrpNeigh     = 0x4
	rtmgrpIPv4Addr  = 0x10
	rtmgrpIPv4Route = 0x40
)

// nftables message types (linux/netfilter/nf_tables.h).
const (
	nftMsgDelTable     = 2
	nftMsgDelChain     = 5
	nftMsgDelRule      = 8
	nftMsgDestroyTable = 26
	nftMsgDestroyChain = 27
	nftMsgDestroyRule  = 28
)

// routeGroups are the rtnetlink groups a watch joins.
const routeGroups = rtmgrpLink | rtmgrpNeigh | rtmgrpIPv4Addr | rtmgrpIPv4Route

// nftGroups is nfnetlink's nftables group as a bind mask.
const nftGroups = 1 << (nlsub.NFTablesGroup - 1)

// routeFilter follows one namespace's rtnetlink notifications.
//
// A notification names the port of the socket that asked for the change
// (0: the kernel made it). self is this process's ID, the port of its
// request sockets (nlsub.Open leaves it to them): an address this
// process removed is its own doing (a service's VIP), and so are the
// routes the kernel then removes. A route the kernel removes follows an
// address or link change, which is reported on its own unless it was
// ours.
type routeFilter struct {
	self uint32
}

// changed reports whether a datagram of rtnetlink notifications holds
// one that may undo meshd's work: a link changed or removed, an IPv4
// address removed by another process, a route removed by one, a
// neighbour or FDB entry removed. A datagram that does not parse counts
// as a change: what it said is unknown.
func (f routeFilter) changed(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) == 0 {
		return true
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case rtmDelAddr:
			if m.Header.Pid != f.self {
				return true
			}
		case rtmDelRoute:
			if m.Header.Pid != 0 {
				return true
			}
		case rtmNewLink, rtmDelLink, rtmDelNeigh:
			// A removed neighbour comes as FAILED whatever it was, so
			// a removed static entry cannot be told from an expired
			// learnt one: both are reported, and checking the
			// neighbours of a namespace is a netlink dump.
			return true
		}
	}
	return false
}

// nftFilter follows one namespace's nftables announcements. A commit's
// removals come first and its new generation, naming the process that
// committed, last; so a removal is held until its generation says whose
// it was, and reported only when ours (nil: nothing is) does not claim
// that process.
type nftFilter struct {
	ours    func(pid int) bool
	removed bool // the commit under way removed something
}

// changed reports whether a datagram of nftables notifications ends a
// commit, not ours, that removed a rule, chain or table. A datagram that
// does not parse counts as one.
func (f *nftFilter) changed(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) == 0 {
		f.removed = false
		return true
	}
	changed := false
	for _, m := range msgs {
		if m.Header.Type>>8 != nlsub.NFTablesSubsys {
			continue
		}
		switch m.Header.Type & 0xff {
		case nftMsgDelTable, nftMsgDelChain, nftMsgDelRule, nftMsgDestroyTable, nftMsgDestroyChain, nftMsgDestroyRule:
			f.removed = true
			continue
		}
		pid, gen, err := nlsub.CommitPID(m)
		if err != nil {
			f.removed = false
			return true
		}
		if gen {
			if f.removed && (f.ours == nil || !f.ours(pid)) {
				changed = true
			}
			f.removed = false
		}
	}
	return changed
}
