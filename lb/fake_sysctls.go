package lb

import (
	"io/fs"
	"slices"
	"strconv"
	"sync"
	"syscall"
)

// FakeSysctls is an in-memory /proc/sys ([Sysctls]) for tests: Vals by
// key, as the kernel shows them; an absent key is absent (a module not
// loaded). ReadOnly are the keys whose writes it refuses, as the kernel
// refuses the conntrack table's outside the initial network namespace.
// AnyKey takes a write to a key it does not hold, as a namespace with
// every module loaded. Writes lists each write, "key=value", in order.
type FakeSysctls struct {
	mu       sync.Mutex
	Vals     map[string]string
	ReadOnly []string
	AnyKey   bool
	Writes   []string
}

// Get implements [Sysctls].
func (f *FakeSysctls) Get(key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.Vals[key]
	if !ok {
		return "", &fs.PathError{Op: "open", Path: "/proc/sys/" + key, Err: syscall.ENOENT}
	}
	return v + "\n", nil
}

// Set implements [Sysctls].
func (f *FakeSysctls) Set(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch _, ok := f.Vals[key]; {
	case slices.Contains(f.ReadOnly, key):
		return &fs.PathError{Op: "open", Path: "/proc/sys/" + key, Err: syscall.EACCES}
	case !ok && !f.AnyKey:
		return &fs.PathError{Op: "open", Path: "/proc/sys/" + key, Err: syscall.ENOENT}
	case f.Vals == nil:
		f.Vals = map[string]string{}
	}
	f.Vals[key] = value
	f.Writes = append(f.Writes, key+"="+value)
	return nil
}

// ConntrackSysctls are the conntrack table's keys, for
// FakeSysctls.ReadOnly.
var ConntrackSysctls = []string{conntrackMaxKey, conntrackBucketsKey}

// NewFakeConntrackSysctls is a FakeSysctls holding a conntrack table of
// size s.
func NewFakeConntrackSysctls(s ConntrackSize) *FakeSysctls {
	return &FakeSysctls{Vals: map[string]string{
		conntrackMaxKey:     strconv.Itoa(s.Max),
		conntrackBucketsKey: strconv.Itoa(s.Buckets),
	}}
}

// NewFakeNeighbourSysctls is a FakeSysctls holding neighbour table
// limits n.
func NewFakeNeighbourSysctls(n NeighbourLimits) *FakeSysctls {
	return &FakeSysctls{Vals: map[string]string{
		neighThresh1Key: strconv.Itoa(n.GC1),
		neighThresh2Key: strconv.Itoa(n.GC2),
		neighThresh3Key: strconv.Itoa(n.GC3),
	}}
}
