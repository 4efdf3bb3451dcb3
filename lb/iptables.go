package lb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// Rules applies iptables-restore payloads: "iptables-restore --noflush -w".
// One call per batch, never one process per rule.
type Rules interface {
	Apply(ctx context.Context, payload []byte) error
	// Save returns every table's rules: "iptables-save". The syncers read
	// it for a full resync, to find what is really there.
	Save(ctx context.Context) ([]byte, error)
}

// IPTables is the real Rules. The zero value works in the caller's network
// namespace.
type IPTables struct {
	// NetNS is the namespace file to work in, e.g.
	// /var/run/meshd/netns/ingress_sbox; "" is the caller's namespace.
	// Each call runs one process on a thread that has entered it.
	NetNS string

	exec execer     // nil: nsExec; tests set a fake
	sets setApplier // nil: netlinkSets; tests set a fake
	kept *keeper    // nil: a process per Apply; see Keep
}

// Keep returns t with its Apply writing to one iptables-restore process
// kept running in t.NetNS from one call to the next (kept_linux.go), as
// a data plane's rules are. Close ends the process.
func (t IPTables) Keep() IPTables {
	if t.exec == nil {
		t.kept = newKeeper()
	}
	return t
}

// Close ends the process Keep keeps, if any; Apply then starts one per
// call.
func (t IPTables) Close() error {
	if t.kept != nil {
		t.kept.close()
	}
	return nil
}

var _ Rules = IPTables{}

// Apply runs iptables-restore --noflush with payload on stdin. An empty
// payload runs nothing. The payload's "*ipset" table (sets.go) is applied
// over netlink, its sets made and filled before the iptables tables and
// destroyed after them.
func (t IPTables) Apply(ctx context.Context, payload []byte) error {
	pre, rules, post := splitSetPayload(payload)
	if err := t.ipset(pre); err != nil {
		return err
	}
	if len(bytes.TrimSpace(rules)) > 0 {
		argv := []string{"iptables-restore", "--noflush", "-w"}
		var out []byte
		err := errNotKept
		if t.kept != nil && len(post) == 0 {
			// A payload that destroys sets needs a process of its own:
			// see restoreOnce.
			out, err = t.kept.apply(ctx, t.NetNS, rules, argv...)
		}
		if errors.Is(err, errNotKept) {
			out, err = t.restoreOnce(ctx, rules, len(post) > 0, argv)
		}
		if err != nil {
			return fmt.Errorf("iptables-restore%s: %w: %s", t.where(), err, strings.TrimSpace(string(out)))
		}
	}
	return t.ipset(post)
}

// restoreOnce runs an iptables-restore of its own for rules, and returns
// once it has committed them, or when it exits if it destroys sets; out
// is what it wrote, when it was waited for.
func (t IPTables) restoreOnce(ctx context.Context, rules []byte, destroysSets bool, argv []string) (out []byte, err error) {
	r, ok := t.runner().(restorer)
	if !ok {
		stdout, stderr, err := t.runner().run(ctx, t.NetNS, rules, argv...)
		return append(append([]byte(nil), stdout...), stderr...), err
	}
	n, _ := commits(rules)
	if destroysSets {
		// A set the rules stop matching can be destroyed only once the
		// deleted rules are freed (they hold it), which the child's exit
		// waits for.
		n = 0
	}
	out, _, err = r.restore(ctx, t.NetNS, rules, n, argv...)
	return out, err
}

// lingering is what Apply left to finish in the background
// (restore_linux.go): sockets being closed, iptables-restore children
// being reaped, each done within a few tens of milliseconds.
var lingering = newBackground()

// WaitBackground ends the iptables-restore processes kept for data
// planes (Keep) and waits until what Apply left to finish in the
// background is done, so that a daemon stopping, or a test ending,
// leaves no iptables-restore process behind.
func WaitBackground() {
	closeKeepers()
	lingering.wait()
}

// background counts goroutines and lets one wait until none runs. Unlike
// a WaitGroup's, its wait may overlap new work, as one daemon's or
// test's may overlap another's Apply in the same process.
type background struct {
	mu   sync.Mutex
	n    int
	none *sync.Cond
}

func newBackground() *background {
	b := &background{}
	b.none = sync.NewCond(&b.mu)
	return b
}

// run runs f in a goroutine of its own, counted until it returns.
func (b *background) run(f func()) {
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	go func() {
		defer func() {
			b.mu.Lock()
			if b.n--; b.n == 0 {
				b.none.Broadcast()
			}
			b.mu.Unlock()
		}()
		f()
	}()
}

func (b *background) wait() {
	b.mu.Lock()
	for b.n > 0 {
		b.none.Wait()
	}
	b.mu.Unlock()
}

// restorer is an execer that can tell when an iptables-restore child's
// tables are all committed, before it exits (restore_linux.go).
type restorer interface {
	restore(ctx context.Context, netns string, payload []byte, commits int, argv ...string) (out []byte, early bool, err error)
}

// commits counts the tables an iptables-restore payload commits, and
// says whether each of them holds a command that changes something when
// it succeeds (an append, insert, delete, replace or chain deletion), so
// that each COMMIT is a new generation. A table of chain declarations
// alone may commit nothing: the chains may be there, empty.
func commits(payload []byte) (n int, everyTableChanges bool) {
	everyTableChanges = true
	changes := true
	for _, line := range bytes.Split(payload, []byte("\n")) {
		line = bytes.TrimSpace(line)
		switch {
		case bytes.HasPrefix(line, []byte("*")):
			changes = false
		case len(line) > 3 && line[0] == '-' && bytes.IndexByte([]byte("AIDRX"), line[1]) >= 0 && line[2] == ' ':
			changes = true
		case string(line) == "COMMIT":
			n++
			everyTableChanges = everyTableChanges && changes
		}
	}
	return n, everyTableChanges
}

// ipset applies an "*ipset" table in the namespace.
func (t IPTables) ipset(table []byte) error {
	if len(table) == 0 {
		return nil
	}
	var sets setApplier = netlinkSets{}
	if t.sets != nil {
		sets = t.sets
	}
	if err := sets.apply(t.NetNS, table); err != nil {
		return fmt.Errorf("%w%s", err, t.where())
	}
	return nil
}

// Save runs iptables-save, and "ipset save" for the namespace's sets,
// which it appends as the "*ipset" table.
func (t IPTables) Save(ctx context.Context) ([]byte, error) { return t.save(ctx, "iptables-save") }

// SaveCounters runs "iptables-save -c": the same text with each chain's
// and each rule's [packets:bytes] (sets' members have none).
func (t IPTables) SaveCounters(ctx context.Context) ([]byte, error) {
	return t.save(ctx, "iptables-save", "-c")
}

func (t IPTables) save(ctx context.Context, argv ...string) ([]byte, error) {
	stdout, stderr, err := t.runner().run(ctx, t.NetNS, nil, argv...)
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w: %s", strings.Join(argv, " "), t.where(), err, strings.TrimSpace(string(stderr)))
	}
	sets, stderr, err := t.runner().run(ctx, t.NetNS, nil, "ipset", "save")
	switch {
	case errors.Is(err, exec.ErrNotFound) && !bytes.Contains(stdout, []byte(" --map-set ")):
		// No rule uses a set: nothing to read without the ipset tool.
	case errors.Is(err, exec.ErrNotFound):
		return nil, fmt.Errorf("ipset save%s: the rules use sets, and reading them needs the ipset tool (Debian's ipset package): %w", t.where(), err)
	case err != nil:
		return nil, fmt.Errorf("ipset save%s: %w: %s", t.where(), err, strings.TrimSpace(string(stderr)))
	default:
		stdout = append(stdout, savedSets(sets)...)
	}
	return stdout, nil
}

func (t IPTables) runner() execer { return orNSExec(t.exec) }

// orNSExec is e, or the real execer for nil: the real types ([IPTables],
// [Nft]) hold a nil execer unless a test sets a fake.
func orNSExec(e execer) execer {
	if e == nil {
		return nsExec{}
	}
	return e
}

func (t IPTables) where() string {
	if t.NetNS == "" {
		return ""
	}
	return " in " + t.NetNS
}
