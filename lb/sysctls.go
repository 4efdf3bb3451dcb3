package lb

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/meshd/meshd/internal/nsfile"
)

// Sysctls reads and writes kernel settings by their path below /proc/sys
// ("net/netfilter/nf_conntrack_max"): a sandbox's forwarding settings
// (WithSysctls), and the host's conntrack and neighbour tables
// (GrowConntrack, GrowNeighbours). Errors
// wrap the file's: fs.ErrNotExist for an absent key, fs.ErrPermission
// for one this namespace may not write.
type Sysctls interface {
	Get(key string) (string, error)
	Set(key, value string) error
}

// ProcSysctls is [Sysctls] through /proc/sys in the network namespace
// at NetNS ("" = the caller's).
type ProcSysctls struct{ NetNS string }

// Get implements [Sysctls].
func (p ProcSysctls) Get(key string) (string, error) { return nsfile.ReadSysctl(p.NetNS, key) }

// Set implements [Sysctls].
func (p ProcSysctls) Set(key, value string) error { return nsfile.WriteSysctl(p.NetNS, key, value) }

// readCount reads key as a count; errs names what a refusal means for
// the table read (conntrackErr, neighbourErr).
func readCount(s Sysctls, key string, errs func(op, key string, err error) error) (int, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, errs("read", key, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("read %s: %q is not a count", key, v)
	}
	return n, nil
}

// raiseCount writes want to key where it differs from have, and returns
// the value key holds after. A refused write leaves have, and the first
// refusal in *first.
func raiseCount(s Sysctls, key string, have, want int, first *error, errs func(op, key string, err error) error) int {
	if want == have {
		return have
	}
	if err := s.Set(key, strconv.Itoa(want)); err != nil {
		*first = cmp.Or(*first, errs("set", key, err))
		return have
	}
	return want
}
