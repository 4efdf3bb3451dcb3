package lb

import (
	"context"
	"strings"
	"sync"
)

// FakeFlowTables is a sandbox's nftables as [FlowTables] sees it: the
// table of ours that the scripts written leave, the scripts themselves
// and the checks. It understands the scripts this package writes (the
// table deleted, then declared again whole or not), nothing more. Safe for
// concurrent use.
type FakeFlowTables struct {
	mu       sync.Mutex // guards the fields below
	table    string     // "" = no table
	applied  []string
	checks   int
	applyErr error
	probeErr error
}

var _ FlowTables = (*FakeFlowTables)(nil)

// NewFakeFlowTables returns a namespace without a table of ours.
func NewFakeFlowTables() *FakeFlowTables { return &FakeFlowTables{} }

// Apply keeps what script declares after deleting the table, unless
// failing (FailApply, FailProbe).
func (f *FakeFlowTables) Apply(_ context.Context, script string, check bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if check {
		f.checks++
		return f.probeErr
	}
	f.applied = append(f.applied, script)
	if f.applyErr != nil {
		return f.applyErr
	}
	if _, body, ok := strings.Cut(script, "delete table inet "+flowTableName+"\n"); ok {
		f.table = body
	}
	return nil
}

// List returns the table, "" for none.
func (f *FakeFlowTables) List(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.table, nil
}

// Table is the table as Apply left it, "" for none.
func (f *FakeFlowTables) Table() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.table
}

// SetTable changes the table as a hand edit would ("" deletes it).
func (f *FakeFlowTables) SetTable(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table = s
}

// FailApply makes every Apply fail with err (nil: none), writing nothing,
// and the probe's check fail with probe.
func (f *FakeFlowTables) FailApply(err, probe error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applyErr, f.probeErr = err, probe
}

// Calls returns the scripts applied (failed ones too) and how many checks
// were made.
func (f *FakeFlowTables) Calls() (applied []string, checks int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.applied...), f.checks
}
