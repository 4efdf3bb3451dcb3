package lb

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Why meshd raises the kernel's neighbour (ARP) table limits, with what
// it measured: doc.go, "The neighbour table".

// The IPv4 neighbour table's garbage-collection thresholds, below
// /proc/sys: one table for the machine, every network namespace's
// entries counted together, and only the initial namespace shows them.
const (
	neighThresh1Key = "net/ipv4/neigh/default/gc_thresh1"
	neighThresh2Key = "net/ipv4/neigh/default/gc_thresh2"
	neighThresh3Key = "net/ipv4/neigh/default/gc_thresh3"
)

// NeighbourSysctls are the thresholds' keys, for FakeSysctls.
var NeighbourSysctls = []string{neighThresh3Key, neighThresh2Key, neighThresh1Key}

// NeighbourLimits are the kernel's neighbour table thresholds: below GC1
// entries nothing is collected; past GC2 stale entries go at once; GC3
// is the hard limit, past which a new neighbour, and the packet that
// needed it, is refused ("neighbor table overflow!" in the kernel's log).
type NeighbourLimits struct {
	GC1, GC2, GC3 int
}

func (n NeighbourLimits) String() string {
	return fmt.Sprintf("gc_thresh1=%d gc_thresh2=%d gc_thresh3=%d", n.GC1, n.GC2, n.GC3)
}

// DefaultNeighbourMax is the gc_thresh3 meshd keeps: each sandbox
// learns a neighbour for every backend it sends to and each task one for
// every sandbox that sends to it, so a node's table grows with the
// cluster's tasks, past the kernel's 1024 at a few hundred. An entry is
// 336 bytes of kernel memory here, taken only while the entry exists.
const DefaultNeighbourMax = 65536

// WantNeighbourLimits are the limits the table should have, given those
// it has and the hard limit wanted: GC3 at least least, and GC2 and GC1
// at least half and an eighth of it, the kernel's own ratio (1024, 512,
// 128); never lower than they are. least 0 wants nothing changed.
func WantNeighbourLimits(cur NeighbourLimits, least int) NeighbourLimits {
	if least <= 0 {
		return cur
	}
	return NeighbourLimits{GC1: max(cur.GC1, least/8), GC2: max(cur.GC2, least/2), GC3: max(cur.GC3, least)}
}

// ErrNeighboursNotHere is a network namespace other than the initial one
// (a lab's node): the kernel shows the table's thresholds only there.
var ErrNeighboursNotHere = errors.New("the host's to set: not in this network namespace")

// GrowNeighbours raises the table's thresholds to
// WantNeighbourLimits(what they are, least), the hard limit first so that
// the others never pass it, and returns the limits before and after. It
// never lowers one and writes nothing when they are high enough. A
// refused write does not stop the others; the error is the first.
func GrowNeighbours(s Sysctls, least int) (before, after NeighbourLimits, err error) {
	if before, err = readNeighbourLimits(s); err != nil {
		return before, before, err
	}
	want := WantNeighbourLimits(before, least)
	after.GC3 = raiseCount(s, neighThresh3Key, before.GC3, want.GC3, &err, neighbourErr)
	after.GC2 = raiseCount(s, neighThresh2Key, before.GC2, want.GC2, &err, neighbourErr)
	after.GC1 = raiseCount(s, neighThresh1Key, before.GC1, want.GC1, &err, neighbourErr)
	return before, after, err
}

func readNeighbourLimits(s Sysctls) (n NeighbourLimits, err error) {
	if n.GC1, err = readCount(s, neighThresh1Key, neighbourErr); err != nil {
		return NeighbourLimits{}, err
	}
	if n.GC2, err = readCount(s, neighThresh2Key, neighbourErr); err != nil {
		return NeighbourLimits{}, err
	}
	if n.GC3, err = readCount(s, neighThresh3Key, neighbourErr); err != nil {
		return NeighbourLimits{}, err
	}
	return n, nil
}

// neighbourErr names the key and maps an absent or read-only key to
// ErrNeighboursNotHere.
func neighbourErr(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		err = ErrNeighboursNotHere
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}
