package lb

import (
	"io/fs"
	"strconv"
	"sync"
	"syscall"
)

// FakeSysctls is an in-memory /proc/sys ([Sysctls]) for tests: Vals by
// key, as the kernel shows them; an absent key is absent (a module not
// loaded). ReadOnly refuses every write as the kernel does outside the
// initial network namespace. Writes lists each write, "key=value", in
// order.
type FakeSysctls struct {
	mu       sync.Mutex
	Vals     map[string]string
	ReadOnly bool
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
	case f.ReadOnly:
		return &fs.PathError{Op: "open", Path: "/proc/sys/" + key, Err: syscall.EACCES}
	case !ok:
		return &fs.PathError{Op: "open", Path: "/proc/sys/" + key, Err: syscall.ENOENT}
	}
	f.Vals[key] = value
	f.Writes = append(f.Writes, key+"="+value)
	return nil
}

// NewFakeConntrackSysctls is a FakeSysctls holding a conntrack table of
// size s.
func NewFakeConntrackSysctls(s ConntrackSize) *FakeSysctls {
	return &FakeSysctls{Vals: map[string]string{
		conntrackMaxKey:     strconv.Itoa(s.Max),
		conntrackBucketsKey: strconv.Itoa(s.Buckets),
	}}
}
