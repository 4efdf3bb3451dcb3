package lb

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Why meshd sizes the host's conntrack table, with what it measured:
// doc.go, "The conntrack table's size".

// Conntrack table sysctls, below /proc/sys.
const (
	conntrackMaxKey     = "net/netfilter/nf_conntrack_max"
	conntrackBucketsKey = "net/netfilter/nf_conntrack_buckets"
)

// ConntrackSize is the kernel's conntrack table size: the entries a
// namespace may hold (nf_conntrack_max) and the hash buckets they are
// spread over (nf_conntrack_buckets), both one figure for the machine.
type ConntrackSize struct {
	Max, Buckets int
}

func (s ConntrackSize) String() string {
	return fmt.Sprintf("nf_conntrack_max=%d nf_conntrack_buckets=%d", s.Max, s.Buckets)
}

// Bounds of a conntrack limit meshd accepts (0 leaves the kernel's): an
// entry is a 256-byte slab object here (nf_conntrack in /proc/slabinfo),
// so a full table at the top holds some 4 GB of kernel memory.
const (
	MinConntrackMax = 1024
	MaxConntrackMax = 1 << 24
)

// DefaultConntrackMax is kube-proxy's default limit for a machine with
// cpus CPUs: 32,768 entries per CPU, at least 131,072.
func DefaultConntrackMax(cpus int) int {
	return min(max(32768*cpus, 131072), MaxConntrackMax)
}

// WantConntrackSize is the size the table should have, given the size it
// has and the limit wanted: never smaller than it is, and with a bucket
// for every entry, the ratio the kernel sets itself. Each entry sits in
// two chains (its original and reply directions), and kernels since
// 5.15 refuse to insert into a chain grown too long, so kube-proxy's
// bucket for every four entries would leave eight to a chain in a full
// table. A bucket costs 8 bytes. least 0 wants nothing changed.
func WantConntrackSize(cur ConntrackSize, least int) ConntrackSize {
	if least <= 0 {
		return cur
	}
	want := ConntrackSize{Max: max(cur.Max, least)}
	want.Buckets = max(cur.Buckets, want.Max)
	return want
}

// ErrConntrackReadOnly is the table's size being the host's to set, not
// this namespace's: outside the initial network namespace (a lab's node)
// the kernel shows nf_conntrack_max read-only.
var ErrConntrackReadOnly = errors.New("read-only in this network namespace")

// ErrNoConntrack is a kernel whose conntrack is not loaded yet: it loads
// with the first NAT rule.
var ErrNoConntrack = errors.New("conntrack not loaded")

// GrowConntrack raises the table to WantConntrackSize(its size, least),
// buckets first so that the larger limit never meets the old chains, and
// returns the size before and after. It never shrinks the table and
// writes nothing when it is large enough. A refused write does not stop
// the other (older kernels keep the buckets read-only but let the limit
// be raised); the error is the first refusal.
func GrowConntrack(s Sysctls, least int) (before, after ConntrackSize, err error) {
	if before, err = readConntrackSize(s); err != nil {
		return before, before, err
	}
	want := WantConntrackSize(before, least)
	after.Buckets = raiseCount(s, conntrackBucketsKey, before.Buckets, want.Buckets, &err, conntrackErr)
	after.Max = raiseCount(s, conntrackMaxKey, before.Max, want.Max, &err, conntrackErr)
	return before, after, err
}

func readConntrackSize(s Sysctls) (ConntrackSize, error) {
	limit, err := readCount(s, conntrackMaxKey, conntrackErr)
	if err != nil {
		return ConntrackSize{}, err
	}
	buckets, err := readCount(s, conntrackBucketsKey, conntrackErr)
	return ConntrackSize{Max: limit, Buckets: buckets}, err
}

// conntrackErr names the key and maps the kernel's refusals to
// ErrNoConntrack and ErrConntrackReadOnly.
func conntrackErr(op, key string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = ErrNoConntrack
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		err = ErrConntrackReadOnly
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}
