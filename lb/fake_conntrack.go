package lb

import (
	"cmp"
	"slices"
	"sync"
)

// FakeConntrack is an in-memory conntrack table: tests add the entries a
// namespace would hold and see which the mesh deletes. Like the kernel's
// it refuses a filter that selects everything, and a failed call deletes
// nothing. Safe for concurrent use.
type FakeConntrack struct {
	mu       sync.Mutex // guards the fields below
	flows    []Flow
	calls    [][]ConntrackFilter
	failNext error
}

var _ Conntrack = (*FakeConntrack)(nil)

// NewFakeConntrack returns an empty table.
func NewFakeConntrack() *FakeConntrack { return &FakeConntrack{} }

// Add puts entries in the table, as traffic would.
func (f *FakeConntrack) Add(flows ...Flow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flows = append(f.flows, flows...)
}

// FailNext makes the next DeleteUDP return err and delete nothing.
func (f *FakeConntrack) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = err
}

// DeleteUDP deletes the UDP entries matching any filter.
func (f *FakeConntrack) DeleteUDP(filters []ConntrackFilter) (int, error) {
	for _, fl := range filters {
		if err := fl.check(); err != nil {
			return 0, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return 0, err
	}
	f.calls = append(f.calls, slices.Clone(filters))
	n := len(f.flows)
	f.flows = slices.DeleteFunc(f.flows, func(fl Flow) bool {
		return slices.ContainsFunc(filters, func(c ConntrackFilter) bool { return c.matches(fl) })
	})
	return n - len(f.flows), nil
}

// Flows returns the entries left, sorted.
func (f *FakeConntrack) Flows() []Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.flows)
	slices.SortFunc(out, func(a, b Flow) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), a.Src.Compare(b.Src), a.Dst.Compare(b.Dst), a.ReplySrc.Compare(b.ReplySrc))
	})
	return out
}

// Calls returns the filters of each successful DeleteUDP, in order, so
// tests can check that a sync with nothing to forget deletes nothing.
func (f *FakeConntrack) Calls() [][]ConntrackFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
