package lb

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
)

func withIfaces(sb Sandbox, ifaces ...string) Sandbox {
	sb.Ifaces = ifaces
	return sb
}

// TestFlowTableGolden checks the script the iptables plane writes for an
// ingress sandbox, and that the fake holds what the script declares.
func TestFlowTableGolden(t *testing.T) {
	ft := NewFakeFlowTables()
	p, _, _, _ := newFakePlane(t, ModeIPTables, WithFlowTables(ft, true))
	mustSync(t, p, withIfaces(worldTwo.ingress, "eth1", "eth0"))
	if len(applied(ft)) != 1 {
		t.Fatalf("applied %d scripts, want 1", len(applied(ft)))
	}
	testutil.Golden(t, goldenPath("flowtable_ingress"), applied(ft)[0])
	// The listing other packages' tests take for a sandbox's is this
	// table's, as nft lists it.
	if got, want := nftLines(testutil.FlowTableListing), nftLines(ft.Table()); !slices.Equal(got, want) {
		t.Errorf("testutil.FlowTableListing lines %q, want %q", got, want)
	}
	if got := p.flow.state(); got != "on (eth0, eth1)" {
		t.Errorf("state %q", got)
	}
}

func TestFlowTable(t *testing.T) {
	ingress := withIfaces(worldTwo.ingress, "eth0", "eth1")
	empty := withIfaces(Sandbox{Kind: SandboxIngress}, "eth0", "eth1")
	noFlowtables := errors.New("nft -c -f: exit status 1: /dev/stdin:2:12-13: Error: Could not process rule: No such file or directory")
	tests := []struct {
		name string
		mode Mode
		ft   *FakeFlowTables
		run  func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables)
	}{
		{"nothing written again while nothing changed", ModeIPTables, NewFakeFlowTables(), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, ingress)
			c.t = c.t.Add(DefaultFullResyncPeriod / 2)
			mustSync(t, p, ingress)
			if n, _ := calls(ft); n != 1 {
				t.Errorf("applied %d scripts, want 1", n)
			}
		}},
		{"a table edited by hand is written again at the next check", ModeIPTables, NewFakeFlowTables(), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, ingress)
			want := ft.Table()
			ft.SetTable(strings.Replace(want, "eth1", "eth9", 1))
			mustSync(t, p, ingress)
			if ft.Table() == want {
				t.Fatal("repaired before the check was due")
			}
			c.t = c.t.Add(DefaultFullResyncPeriod)
			mustSync(t, p, ingress)
			if ft.Table() != want || p.Rebuilt() != 1 {
				t.Errorf("table %q, rebuilt %d; want it written again, once", ft.Table(), p.Rebuilt())
			}
		}},
		{"a deleted table is written again after Recheck", ModeIPTables, NewFakeFlowTables(), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, ingress)
			want := ft.Table()
			ft.SetTable("")
			p.Recheck()
			mustSync(t, p, ingress)
			if ft.Table() != want {
				t.Errorf("table %q, want it written again", ft.Table())
			}
		}},
		{"new interfaces rewrite it", ModeIPTables, NewFakeFlowTables(), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, withIfaces(ingress, "eth0"))
			mustSync(t, p, ingress)
			if !strings.Contains(ft.Table(), "devices = { eth0, eth1 }") {
				t.Errorf("table:\n%s", ft.Table())
			}
		}},
		{"no services: no table, and a leftover one removed", ModeIPTables, withTable("leftover"), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, empty)
			if ft.Table() != "" {
				t.Errorf("table %q left", ft.Table())
			}
			mustSync(t, p, ingress)
			mustSync(t, p, empty)
			if ft.Table() != "" || p.flow.state() != "off" {
				t.Errorf("table %q, state %q after the last service", ft.Table(), p.flow.state())
			}
			mustSync(t, p, empty)
			if n, _ := calls(ft); n != 3 {
				t.Errorf("applied %d scripts, want 3 (remove, write, remove)", n)
			}
		}},
		{"a kernel without flowtables: rules alone, no error, no more tries", ModeIPTables, failing(noFlowtables, noFlowtables), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, ingress)
			c.t = c.t.Add(2 * DefaultFullResyncPeriod)
			p.Recheck()
			mustSync(t, p, ingress)
			if n, checks := calls(ft); n != 1 || checks != 1 {
				t.Errorf("%d applies and %d checks, want one of each", n, checks)
			}
			if got := p.flow.state(); !strings.HasPrefix(got, "unavailable: ") {
				t.Errorf("state %q", got)
			}
			if len(p.rules.rules.(*FakeRules).Payloads()) == 0 {
				t.Error("no rules written")
			}
		}},
		{"no nft on the node: rules alone", ModeIPTables, failing(exec.ErrNotFound, exec.ErrNotFound), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, ingress)
			if _, checks := calls(ft); checks != 0 || !strings.HasPrefix(p.flow.state(), "unavailable: ") {
				t.Errorf("%d checks, state %q", checks, p.flow.state())
			}
		}},
		{"a failure the probe does not explain is reported and retried", ModeIPTables, failing(errors.New("nft -f: exit status 1: Error: Could not process rule: Device or resource busy"), nil), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			err := p.Sync(context.Background(), ingress)
			if err == nil || !strings.Contains(err.Error(), "resource busy") {
				t.Fatalf("sync: %v", err)
			}
			if len(p.rules.rules.(*FakeRules).Payloads()) == 0 {
				t.Error("no rules written")
			}
			ft.FailApply(nil, nil)
			mustSync(t, p, ingress)
			if ft.Table() == "" {
				t.Error("not written on the next sync")
			}
		}},
		{"a script nft cannot parse is reported, not taken for a kernel without flowtables", ModeIPTables, failing(errors.New("nft -f: exit status 1: Error: syntax error, unexpected offload"), errors.New("nft -c: exit status 1: Error: syntax error, unexpected offload")), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			if err := p.Sync(context.Background(), ingress); err == nil || !strings.Contains(err.Error(), "syntax error") {
				t.Fatalf("sync: %v", err)
			}
			if strings.HasPrefix(p.flow.state(), "unavailable") {
				t.Errorf("state %q", p.flow.state())
			}
		}},
		{"a table made while none is wanted is removed at the next check", ModeIPTables, NewFakeFlowTables(), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, empty)
			ft.SetTable("made by hand")
			mustSync(t, p, empty)
			if ft.Table() == "" {
				t.Fatal("removed before the check was due")
			}
			c.t = c.t.Add(DefaultFullResyncPeriod)
			mustSync(t, p, empty)
			if ft.Table() != "" || p.Rebuilt() != 1 {
				t.Errorf("table %q, rebuilt %d; want it removed, once", ft.Table(), p.Rebuilt())
			}
		}},
		{"the IPVS plane has none, and removes one left", ModeIPVS, withTable("left by an iptables-plane run"), func(t *testing.T, p *plane, c *fixedClock, ft *FakeFlowTables) {
			mustSync(t, p, ingress)
			mustSync(t, p, empty)
			mustSync(t, p, ingress)
			if n, _ := calls(ft); n != 1 || ft.Table() != "" {
				t.Errorf("%d applies, table %q; want one removal", n, ft.Table())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, _, c := newFakePlane(t, tt.mode, WithFlowTables(tt.ft, true))
			tt.run(t, p, c, tt.ft)
		})
	}
}

// TestFlowTableCheck: the dry run reports, line by line, what the next
// sync would write again, and changes nothing.
func TestFlowTableCheck(t *testing.T) {
	ingress := withIfaces(worldTwo.ingress, "eth0", "eth1")
	empty := withIfaces(Sandbox{Kind: SandboxIngress}, "eth0", "eth1")
	const rule = "chain balanced: ct status dnat meta l4proto { tcp, udp } flow add @fastpath"
	written := strings.TrimPrefix(renderFlowTable([]string{"eth0", "eth1"}), flowTableRemoval)
	tests := []struct {
		name   string
		mode   Mode
		synced Sandbox // synced before the edit; zero: the plane never synced
		sb     Sandbox // checked, and synced after
		table  string  // the table before the edit
		edit   func(string) string
		want   []Diff
	}{
		{name: "in step", mode: ModeIPTables, synced: ingress, sb: ingress},
		{name: "written by an earlier run, in step", mode: ModeIPTables, sb: ingress, table: written},
		{name: "its rule deleted", mode: ModeIPTables, synced: ingress, sb: ingress,
			edit: func(s string) string { return strings.Replace(s, "ct status", "# ct status", 1) },
			want: []Diff{
				{Kind: DiffFlowTable, State: Missing, Object: rule, Where: "inet meshd"},
				{Kind: DiffFlowTable, State: Extra, Object: "chain balanced: # " + strings.TrimPrefix(rule, "chain balanced: "), Where: "inet meshd"},
			}},
		{name: "a device changed", mode: ModeIPTables, synced: ingress, sb: ingress,
			edit: func(s string) string { return strings.Replace(s, "eth1", "eth9", 1) },
			want: []Diff{
				{Kind: DiffFlowTable, State: Missing, Object: "flowtable fastpath: devices = { eth0, eth1 }", Where: "inet meshd"},
				{Kind: DiffFlowTable, State: Extra, Object: "flowtable fastpath: devices = { eth0, eth9 }", Where: "inet meshd"},
			}},
		{name: "deleted", mode: ModeIPTables, synced: ingress, sb: ingress,
			edit: func(string) string { return "" },
			want: []Diff{{Kind: DiffFlowTable, State: Missing, Object: "table inet meshd (flowtable fastpath over eth0, eth1)", Where: "nftables"}}},
		{name: "new interfaces", mode: ModeIPTables, synced: withIfaces(ingress, "eth0"), sb: ingress,
			want: []Diff{
				{Kind: DiffFlowTable, State: Missing, Object: "flowtable fastpath: devices = { eth0, eth1 }", Where: "inet meshd"},
				{Kind: DiffFlowTable, State: Extra, Object: "flowtable fastpath: devices = { eth0 }", Where: "inet meshd"},
			}},
		{name: "none wanted, one made by hand", mode: ModeIPTables, synced: empty, sb: empty,
			edit: func(string) string { return written },
			want: []Diff{{Kind: DiffFlowTable, State: Extra, Object: "table inet meshd", Where: "nftables"}}},
		{name: "the IPVS plane, one left", mode: ModeIPVS, sb: ingress, table: written,
			want: []Diff{{Kind: DiffFlowTable, State: Extra, Object: "table inet meshd", Where: "nftables"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := withTable(tt.table)
			p, _, _, c := newFakePlane(t, tt.mode, WithFlowTables(ft, true))
			if tt.synced.Kind != "" {
				mustSync(t, p, tt.synced)
			}
			if tt.edit != nil {
				ft.SetTable(tt.edit(ft.Table()))
			}
			before, n := ft.Table(), len(applied(ft))
			got, err := p.Check(context.Background(), tt.sb)
			if err != nil {
				t.Fatal(err)
			}
			var flow []Diff
			for _, d := range got {
				if d.Kind == DiffFlowTable {
					flow = append(flow, d)
				}
			}
			if !slices.Equal(flow, tt.want) {
				t.Errorf("diffs:\n%v\nwant:\n%v", flow, tt.want)
			}
			if ft.Table() != before || len(applied(ft)) != n {
				t.Fatal("the check changed the table")
			}
			// What it reported, the next due sync repairs.
			c.t = c.t.Add(DefaultFullResyncPeriod)
			mustSync(t, p, tt.sb)
			if got, err := p.Check(context.Background(), tt.sb); err != nil || slices.ContainsFunc(got, func(d Diff) bool { return d.Kind == DiffFlowTable }) {
				t.Errorf("after a sync: %v, %v", got, err)
			}
		})
	}
}

// TestFlowOffloadOff: meshd --flow-offload=false, a table left by an
// earlier run with it is removed and none written.
func TestFlowOffloadOff(t *testing.T) {
	ft := withTable("left by a run with offload")
	p, _, _, _ := newFakePlane(t, ModeIPTables, WithFlowTables(ft, false))
	mustSync(t, p, withIfaces(worldTwo.ingress, "eth0", "eth1"))
	mustSync(t, p, withIfaces(worldTwo.ingress, "eth0", "eth1"))
	if n, _ := calls(ft); n != 1 || ft.Table() != "" || p.flow.state() != "off" {
		t.Errorf("%d applies, table %q, state %q; want one removal", n, ft.Table(), p.flow.state())
	}
}

func TestSandboxIfaceNames(t *testing.T) {
	p, _, _, _ := newFakePlane(t, ModeIPTables, WithFlowTables(NewFakeFlowTables(), true))
	for _, name := range []string{"", "eth0 }", "eth0;flush", "a-name-of-16-chr"} {
		if err := p.Sync(context.Background(), withIfaces(worldTwo.ingress, "eth0", name)); err == nil {
			t.Errorf("interface %q accepted", name)
		}
	}
}

func TestNftExec(t *testing.T) {
	const ns = "/run/meshd/netns/ingress_sbox"
	ctx := context.Background()
	fe := &fakeExec{}
	n := Nft{NetNS: ns, exec: fe}
	if err := n.Apply(ctx, "table inet meshd\n", false); err != nil {
		t.Fatal(err)
	}
	if err := n.Apply(ctx, flowProbe, true); err != nil {
		t.Fatal(err)
	}
	want := []execCall{{NetNS: ns, Argv: "nft -f -", Stdin: "table inet meshd\n"}, {NetNS: ns, Argv: "nft -c -f -", Stdin: flowProbe}}
	if len(fe.calls) != 2 || fe.calls[0] != want[0] || fe.calls[1] != want[1] {
		t.Errorf("calls %+v, want %+v", fe.calls, want)
	}
	fe.err, fe.stderr = errors.New("exit status 1"), "Error: No such file or directory\nlist table inet meshd\n^^^\n"
	if got, err := n.List(ctx); got != "" || err != nil {
		t.Errorf("missing table: %q, %v", got, err)
	}
	fe.stderr = "netlink: Error: cache initialization failed: Protocol not supported\n"
	if got, err := n.List(ctx); got != "" || err != nil {
		t.Errorf("a kernel without nftables: %q, %v", got, err)
	}
	fe.stderr = "Error: syntax error, unexpected junk\n"
	if _, err := n.List(ctx); err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("nft's own failure: %v, want it reported", err)
	}
	fe.stderr = "Error: Could not process rule: Operation not permitted\nmore\n"
	err := n.Apply(ctx, "x", false)
	if err == nil || !strings.HasSuffix(err.Error(), "Operation not permitted") || !strings.Contains(err.Error(), ns) {
		t.Errorf("error %v", err)
	}
}

func withTable(s string) *FakeFlowTables {
	f := NewFakeFlowTables()
	f.SetTable(s)
	return f
}

func failing(err, probe error) *FakeFlowTables {
	f := NewFakeFlowTables()
	f.FailApply(err, probe)
	return f
}

func applied(f *FakeFlowTables) []string {
	a, _ := f.Calls()
	return a
}

func calls(f *FakeFlowTables) (applied, checks int) {
	a, c := f.Calls()
	return len(a), c
}

// TestOffloadDevices reads listings as nft prints them, and as a table
// edited by hand may read.
func TestOffloadDevices(t *testing.T) {
	listing := testutil.FlowTableListing
	for _, tt := range []struct {
		name, listing string
		want          []string
	}{
		{"an ingress sandbox's", listing, []string{"eth0", "eth1"}},
		{"an lb sandbox's", strings.Replace(listing, "eth0, eth1", "eth0", 1), []string{"eth0"}},
		{"quoted devices", strings.Replace(listing, "eth0, eth1", `"eth0", "eth1"`, 1), []string{"eth0", "eth1"}},
		{"nft's older spelling", strings.Replace(listing, "flow add", "flow offload", 1), []string{"eth0", "eth1"}},
		{"a rule for another flowtable", strings.Replace(listing, "@fastpath", "@fastpath2", 1), nil},
		{"no rule", strings.Replace(listing, "flow add @fastpath", "accept", 1), nil},
		{"no devices", strings.Replace(listing, "\t\tdevices = { eth0, eth1 }\n", "", 1), nil},
		{"devices of another flowtable", strings.Replace(listing, "flowtable fastpath {", "flowtable other {", 1), nil},
		{"no table", "", nil},
	} {
		if got := OffloadDevices(tt.listing); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
