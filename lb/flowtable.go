package lb

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// FlowTables writes and reads the nftables table "inet meshd" of one
// sandbox, which holds the iptables plane's flowtable (see "Flow offload"
// in doc.go).
type FlowTables interface {
	// Apply runs script as one nft transaction ("nft -f -"), all or
	// nothing; with check it is only checked by the kernel ("nft -c"),
	// which changes nothing.
	Apply(ctx context.Context, script string, check bool) error
	// List returns "nft list table inet meshd", or "" when there is no
	// such table.
	List(ctx context.Context) (string, error)
}

// Nft is the real FlowTables: the nft command, run in the namespace file
// NetNS ("" = the caller's namespace).
type Nft struct {
	NetNS string
	exec  execer // nil: nsExec; tests set a fake
}

var _ FlowTables = Nft{}

func (n Nft) run(ctx context.Context, stdin []byte, argv ...string) (stdout, stderr []byte, err error) {
	return orNSExec(n.exec).run(ctx, n.NetNS, stdin, argv...)
}

// Apply runs nft -f - (or nft -c -f -) with script on stdin.
func (n Nft) Apply(ctx context.Context, script string, check bool) error {
	argv := []string{"nft", "-f", "-"}
	if check {
		argv = []string{"nft", "-c", "-f", "-"}
	}
	_, stderr, err := n.run(ctx, []byte(script), argv...)
	if err != nil {
		return fmt.Errorf("%s in %q: %w: %s", strings.Join(argv[:len(argv)-2], " "), n.NetNS, err, firstLine(stderr))
	}
	return nil
}

// List runs nft list table inet meshd. nft answers a missing table with
// ENOENT's message, and a kernel without nftables with one of the others
// kernelLacks knows: either way there is no table, rather than a failure.
func (n Nft) List(ctx context.Context) (string, error) {
	out, stderr, err := n.run(ctx, nil, "nft", "list", "table", "inet", flowTableName)
	if err != nil {
		if kernelLacks(string(stderr)) {
			return "", nil
		}
		return "", fmt.Errorf("nft list table inet %s in %q: %w: %s", flowTableName, n.NetNS, err, firstLine(stderr))
	}
	return string(out), nil
}

// firstLine is nft's error message without the script lines and carets it
// quotes below it.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// The sandbox's nftables table of ours ("inet meshd"), its flowtable and
// its chain. nft's parser takes "offload", "forward" and "fwd" for
// keywords, not names.
const (
	flowTableName  = "meshd"
	Flowtable      = "fastpath" // the flowtable's name, as nft lists it
	flowTableChain = "balanced"
)

// ifaceName is what a sandbox's interface name may be, as the flowtable's
// script names it: Linux's limit of 15 bytes, and nothing nft would read
// as syntax.
var ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// renderFlowTable is the script that makes the table hold exactly the
// flowtable over ifaces and the rule that fills it, in one transaction:
// the table removed (flowTableRemoval), then declared again whole. Only
// connections the sandbox's DNAT balanced are offloaded ("ct status
// dnat"); the kernel adds a connection once it is established, so its
// first packets still meet every rule.
func renderFlowTable(ifaces []string) string {
	return flowTableRemoval + fmt.Sprintf(`table inet %[1]s {
	flowtable %[3]s {
		hook ingress priority filter
		devices = { %[2]s }
	}
	chain %[4]s {
		type filter hook forward priority filter; policy accept;
		ct status dnat meta l4proto { tcp, udp } flow add @%[3]s
	}
}
`, flowTableName, strings.Join(ifaces, ", "), Flowtable, flowTableChain)
}

// flowTableRemoval deletes the table, whether or not it is there: it is
// declared first, so that deleting it cannot fail.
var flowTableRemoval = fmt.Sprintf("table inet %[1]s\ndelete table inet %[1]s\n", flowTableName)

// flowProbe is checked, never applied, when a table fails: a kernel
// without flowtables (CONFIG_NF_FLOW_TABLE unset) refuses it with ENOENT.
// It names no device, so a missing one cannot make it fail.
var flowProbe = "table inet meshd-probe {\n\tflowtable " + Flowtable + " {\n\t\thook ingress priority filter\n\t}\n}\n"

// flowOffload keeps one sandbox's flowtable as wanted: the table over the
// sandbox's interfaces while it balances something, none otherwise. It
// compares nft's listing with the one taken after its last write every
// DefaultFullResyncPeriod (or when told to recheck), and writes the table
// again when they differ. A kernel or a node without flowtables (or
// without nft) turns it off for the plane's life: the rules alone carry
// every packet, as before.
type flowOffload struct {
	ft FlowTables // nil: off

	mu      sync.Mutex // guards the fields below
	lacking error      // why this node cannot hold a flowtable; nil: it can, or not known yet
	synced  bool       // the last write (ifaces, listing) stands; false: write at the next sync
	ifaces  []string   // the devices of the table written; nil: no table of ours
	listing string     // nft's listing after the last write; "" for no table
	checked time.Time  // when listing was last compared
	recheck bool       // compare at the next sync whatever the time
	rebuilt uint64     // drifted tables written again (or removed)
}

// target is the devices of the table wanted, sorted; nil for none.
// Sandbox.validate checked the names.
func target(want bool, ifaces []string) []string {
	if !want || len(ifaces) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(ifaces))
}

// sync makes the table match: the flowtable over ifaces when want is
// true, no table otherwise.
func (f *flowOffload) sync(ctx context.Context, want bool, ifaces []string, now time.Time) error {
	if f.ft == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lacking != nil {
		return nil
	}
	devs := target(want, ifaces)
	if f.synced && slices.Equal(f.ifaces, devs) {
		if !f.recheck && now.Sub(f.checked) < DefaultFullResyncPeriod {
			return nil
		}
		have, err := f.ft.List(ctx)
		if err != nil {
			return err
		}
		f.checked, f.recheck = now, false
		if have == f.listing {
			return nil
		}
		f.rebuilt++
	}
	script := flowTableRemoval
	if devs != nil {
		script = renderFlowTable(devs)
	}
	if err := f.apply(ctx, script); err != nil {
		return err
	}
	if f.lacking != nil {
		return nil
	}
	have := ""
	if devs != nil {
		var err error
		if have, err = f.ft.List(ctx); err != nil {
			f.ifaces, f.synced = nil, false // write it again next time
			return err
		}
	}
	f.ifaces, f.listing, f.synced, f.checked, f.recheck = devs, have, true, now, false
	return nil
}

// check compares the table with what sync would make it and returns the
// differences, changing nothing. A table sync wrote over these
// interfaces is compared with nft's listing taken after that write, as
// sync compares it; otherwise with the script sync would write, which nft
// lists line for line but for its spacing.
func (f *flowOffload) check(ctx context.Context, want bool, ifaces []string) ([]Diff, error) {
	if f.ft == nil {
		return nil, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lacking != nil {
		return nil, nil
	}
	have, err := f.ft.List(ctx)
	if errors.Is(err, exec.ErrNotFound) {
		return nil, nil // no nft: sync turns offload off
	}
	if err != nil {
		return nil, err
	}
	devs := target(want, ifaces)
	table := "table inet " + flowTableName
	switch {
	case devs == nil && have != "":
		return []Diff{{Kind: DiffFlowTable, State: Extra, Object: table, Where: "nftables"}}, nil
	case devs == nil:
		return nil, nil
	case have == "":
		return []Diff{{Kind: DiffFlowTable, State: Missing, Where: "nftables",
			Object: fmt.Sprintf("%s (flowtable %s over %s)", table, Flowtable, strings.Join(devs, ", "))}}, nil
	}
	wanted := f.listing
	if !f.synced || !slices.Equal(f.ifaces, devs) {
		wanted = strings.TrimPrefix(renderFlowTable(devs), flowTableRemoval)
	}
	missing, extra := multisetDiff(nftLines(wanted), nftLines(have), strings.Compare)
	var out []Diff
	for _, l := range missing {
		out = append(out, Diff{Kind: DiffFlowTable, State: Missing, Object: l, Where: "inet " + flowTableName})
	}
	for _, l := range extra {
		out = append(out, Diff{Kind: DiffFlowTable, State: Extra, Object: l, Where: "inet " + flowTableName})
	}
	return out, nil
}

// nftLines are a table's lines as nft lists it, each without its spacing
// and inside a flowtable or chain prefixed with it ("chain balanced: ct
// status dnat …"), so that a difference says where it is; closing braces
// and blank lines left out.
func nftLines(listing string) []string {
	var out []string
	block := ""
	for _, l := range strings.Split(listing, "\n") {
		l = strings.Join(strings.Fields(l), " ")
		switch {
		case l == "" || l == "}" || strings.HasPrefix(l, "table "):
		case strings.HasSuffix(l, " {"):
			block = strings.TrimSuffix(l, " {")
			out = append(out, block)
		default:
			out = append(out, block+": "+l)
		}
	}
	return out
}

// OffloadDevices reads nft's listing of a sandbox's table of ours (as
// [Nft.List] returns it, e.g. in a kernel snapshot): the interfaces its
// flowtable carries connections between, or nil when it holds no
// flowtable that a rule fills. "flow offload" is nft's older spelling of
// "flow add".
func OffloadDevices(listing string) []string {
	var devices []string
	filled := false
	for _, l := range nftLines(listing) {
		if list, ok := strings.CutPrefix(l, "flowtable "+Flowtable+": devices = {"); ok {
			for d := range strings.SplitSeq(strings.TrimSuffix(list, "}"), ",") {
				if d = strings.Trim(strings.TrimSpace(d), `"`); d != "" {
					devices = append(devices, d)
				}
			}
		}
		filled = filled || strings.HasPrefix(l, "chain ") &&
			(strings.HasSuffix(l, " flow add @"+Flowtable) || strings.HasSuffix(l, " flow offload @"+Flowtable))
	}
	if !filled {
		return nil
	}
	return devices
}

// apply writes script. When it fails, the probe tells a node that cannot
// hold a flowtable (which then has none, and no error) from a failure to
// report and retry.
func (f *flowOffload) apply(ctx context.Context, script string) error {
	err := f.ft.Apply(ctx, script, false)
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		f.lacking = fmt.Errorf("no nft on this node: %w", err)
		return nil
	}
	if perr := f.ft.Apply(ctx, flowProbe, true); perr != nil && kernelLacks(perr.Error()) {
		f.lacking = fmt.Errorf("the kernel has no flowtables: %w", perr)
		return nil
	}
	return err
}

// kernelLacks tells the kernel's refusal (ENOENT: no flowtable type for
// the family, or no such table to list; EOPNOTSUPP, EPROTONOSUPPORT or
// EAFNOSUPPORT: no nftables at all) from anything else, such as a script
// nft cannot parse, which is ours to fix and is reported: msg is nft's
// error or its stderr.
func kernelLacks(msg string) bool {
	for _, lacks := range []string{"No such file or directory", "Operation not supported",
		"Protocol not supported", "Address family not supported"} {
		if strings.Contains(msg, lacks) {
			return true
		}
	}
	return false
}

// state says whether the sandbox offloads: "on" (devices), "off" (no
// table: nothing to balance, or not written yet) or why it cannot.
func (f *flowOffload) state() string {
	if f.ft == nil {
		return "off"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.lacking != nil:
		return "unavailable: " + f.lacking.Error()
	case f.ifaces != nil:
		return "on (" + strings.Join(f.ifaces, ", ") + ")"
	}
	return "off"
}

func (f *flowOffload) rebuilds() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rebuilt
}

func (f *flowOffload) markRecheck() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recheck = true
}
