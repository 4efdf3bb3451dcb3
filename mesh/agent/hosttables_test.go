package agent

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
)

// TestGrowConntrack: the agent raises a small table at its first pass,
// reads nothing more until the resync tick, raises it again at the tick
// after someone shrank it, waits for conntrack to be loaded, and a node
// whose namespace may not size it says so once.
func TestGrowConntrack(t *testing.T) {
	small := lb.ConntrackSize{Max: 8192, Buckets: 8192}
	agentWith := func(sys lb.Sysctls, least int) (*Agent, *testutil.Buffer) {
		var logs testutil.Buffer
		return &Agent{cfg: Config{ConntrackMax: least, Sysctls: func(string) lb.Sysctls { return sys }}, log: slog.New(slog.NewTextHandler(&logs, nil))}, &logs
	}

	t.Run("raised, and again after a shrink", func(t *testing.T) {
		sys := lb.NewFakeConntrackSysctls(small)
		a, logs := agentWith(sys, 131072)
		a.growHostTables()
		a.growHostTables()
		want := []string{"net/netfilter/nf_conntrack_buckets=131072", "net/netfilter/nf_conntrack_max=131072"}
		if strings.Join(sys.Writes, " ") != strings.Join(want, " ") {
			t.Errorf("writes %v, want %v once", sys.Writes, want)
		}
		if err := sys.Set("net/netfilter/nf_conntrack_max", "4096"); err != nil {
			t.Fatal(err)
		}
		a.growHostTables()
		if got := sys.Vals["net/netfilter/nf_conntrack_max"]; got != "4096" {
			t.Errorf("nf_conntrack_max after a shrink and a pass before the tick: %s, want 4096 (not looked at)", got)
		}
		a.conntrack.checked = false // the resync tick
		a.growHostTables()
		if got := sys.Vals["net/netfilter/nf_conntrack_max"]; got != "131072" {
			t.Errorf("nf_conntrack_max after a shrink and the tick: %s, want 131072", got)
		}
		if n := strings.Count(logs.String(), `msg="conntrack table raised"`); n != 2 {
			t.Errorf("%d raises logged, want 2:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), `from="nf_conntrack_max=8192 nf_conntrack_buckets=8192" to="nf_conntrack_max=131072 nf_conntrack_buckets=131072"`) {
			t.Errorf("the first raise's log does not say from what to what:\n%s", logs.String())
		}
	})

	t.Run("a lab's node: said once", func(t *testing.T) {
		sys := lb.NewFakeConntrackSysctls(small)
		sys.ReadOnly = lb.ConntrackSysctls
		a, logs := agentWith(sys, 131072)
		for range 3 {
			a.growHostTables()
			a.conntrack.checked = false // the resync tick
		}
		if n := strings.Count(logs.String(), `msg="conntrack table not raised"`); n != 1 || !strings.Contains(logs.String(), "level=INFO") ||
			!strings.Contains(logs.String(), "read-only in this network namespace") {
			t.Errorf("want one INFO line saying the table is read-only here:\n%s", logs.String())
		}
	})

	t.Run("not loaded yet, or left alone: quiet", func(t *testing.T) {
		a, logs := agentWith(&lb.FakeSysctls{Vals: map[string]string{}}, 131072)
		a.growHostTables()
		b, logs2 := agentWith(lb.NewFakeConntrackSysctls(small), 0)
		b.growHostTables()
		if logs.String()+logs2.String() != "" {
			t.Errorf("logged:\n%s%s", logs.String(), logs2.String())
		}
		// Loaded by the next pass's NAT: raised then, without a tick.
		loaded := lb.NewFakeConntrackSysctls(small)
		a.cfg.Sysctls = func(string) lb.Sysctls { return loaded }
		a.growHostTables()
		if got := loaded.Vals["net/netfilter/nf_conntrack_max"]; got != "131072" {
			t.Errorf("nf_conntrack_max once loaded: %s, want 131072 at the next pass", got)
		}
	})
}

// TestGrowNeighbourTable: the agent raises the kernel's neighbour table
// limits at its first pass and logs it, looks again at the resync tick,
// and a lab's node, whose namespace does not show them, says so once.
func TestGrowNeighbourTable(t *testing.T) {
	kernel := lb.NeighbourLimits{GC1: 128, GC2: 512, GC3: 1024}
	agentWith := func(sys lb.Sysctls) (*Agent, *testutil.Buffer) {
		var logs testutil.Buffer
		return &Agent{cfg: Config{NeighbourMax: lb.DefaultNeighbourMax, Sysctls: func(string) lb.Sysctls { return sys }},
			log: slog.New(slog.NewTextHandler(&logs, nil))}, &logs
	}

	t.Run("raised, and again after a shrink", func(t *testing.T) {
		sys := lb.NewFakeNeighbourSysctls(kernel)
		a, logs := agentWith(sys)
		a.growHostTables()
		a.growHostTables()
		if len(sys.Writes) != 3 || sys.Vals["net/ipv4/neigh/default/gc_thresh3"] != "65536" {
			t.Errorf("writes %v, want the three limits raised once", sys.Writes)
		}
		if err := sys.Set("net/ipv4/neigh/default/gc_thresh3", "1024"); err != nil {
			t.Fatal(err)
		}
		a.neighbours.checked = false // the resync tick
		a.growHostTables()
		if got := sys.Vals["net/ipv4/neigh/default/gc_thresh3"]; got != "65536" {
			t.Errorf("gc_thresh3 after a shrink and the tick: %s, want 65536", got)
		}
		if !strings.Contains(logs.String(), `msg="neighbour table raised" from="gc_thresh1=128 gc_thresh2=512 gc_thresh3=1024" to="gc_thresh1=8192 gc_thresh2=32768 gc_thresh3=65536"`) ||
			strings.Count(logs.String(), `msg="neighbour table raised"`) != 2 {
			t.Errorf("want two raises logged, the first from the kernel's limits:\n%s", logs.String())
		}
	})

	t.Run("a lab's node: said once", func(t *testing.T) {
		a, logs := agentWith(&lb.FakeSysctls{})
		for range 3 {
			a.growHostTables()
			a.neighbours.checked = false // the resync tick
		}
		if n := strings.Count(logs.String(), `msg="neighbour table not raised"`); n != 1 || !strings.Contains(logs.String(), "level=INFO") ||
			!strings.Contains(logs.String(), "not in this network namespace") {
			t.Errorf("want one INFO line saying the table is the host's to set:\n%s", logs.String())
		}
	})
}
