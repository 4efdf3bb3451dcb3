package lb

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// FakeRules is an in-memory netfilter that applies iptables-restore
// payloads the way the kernel and iptables-restore --noflush do, for the
// subset of commands and targets the mesh writes. It refuses what they
// refuse: a rule in or a jump to a chain that does not exist, deleting a
// rule that is not there, deleting a non-empty or referenced chain, a
// target outside its table or hook (DNAT reached from POSTROUTING), an
// unknown match. Like iptables-nft, each table is committed at its COMMIT:
// an error leaves earlier tables of the payload applied and the failing
// one untouched. Safe for concurrent use.
type FakeRules struct {
	mu       sync.Mutex                     // guards the fields below
	tables   map[string]map[string][]string // table → chain → rules
	payloads []string
	touched  []string
	failNext error
}

var _ Rules = (*FakeRules)(nil)

// NewFakeRules returns a netfilter with no tables.
func NewFakeRules() *FakeRules { return &FakeRules{tables: map[string]map[string][]string{}} }

// FailNext makes the next Apply return err and change nothing.
func (f *FakeRules) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = err
}

// Payloads returns every payload Apply was given, in order.
func (f *FakeRules) Payloads() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.payloads)
}

// Touched returns the chains ("nat/MESH-SERVICES") the last successful
// Apply declared or changed, sorted.
func (f *FakeRules) Touched() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.touched)
}

// Apply applies payload as iptables-restore --noflush would.
func (f *FakeRules) Apply(_ context.Context, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payloads = append(f.payloads, string(payload))
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	// As IPTables does: sets made and filled, the tables, sets destroyed.
	pre, rules, post := splitSetPayload(payload)
	touched := map[string]bool{}
	for _, part := range [][]byte{pre, rules, post} {
		if err := f.apply(part, touched); err != nil {
			return err
		}
	}
	f.touched = slices.Sorted(maps.Keys(touched))
	return nil
}

func (f *FakeRules) apply(payload []byte, touched map[string]bool) error {
	var tx *fakeTx
	sc := bufio.NewScanner(strings.NewReader(string(payload)))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		var err error
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			if tx != nil {
				err = fmt.Errorf("table %s not committed", tx.table)
			}
			tx = f.begin(line[1:])
		case tx == nil:
			err = fmt.Errorf("%q outside a table", line)
		case line == "COMMIT":
			if err = tx.check(); err == nil {
				f.tables[tx.table] = tx.chains
				for c := range tx.touched {
					touched[tx.table+"/"+c] = true
				}
				tx = nil
			}
		default:
			err = tx.do(line)
		}
		if err != nil {
			return fmt.Errorf("iptables-restore: line %d: %w", n, err)
		}
	}
	if tx != nil {
		return fmt.Errorf("iptables-restore: table %s: COMMIT expected", tx.table)
	}
	return nil
}

// Save prints every table as iptables-save does: built-in chains in kernel
// order, then ours sorted; rules in order. Counters are 0.
func (f *FakeRules) Save(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, t := range slices.Sorted(maps.Keys(f.tables)) {
		chains := f.tables[t]
		if t == setTable && len(chains) == 0 {
			continue // "ipset save" prints nothing without sets
		}
		order := slices.Clone(builtinChains[t])
		for _, c := range slices.Sorted(maps.Keys(chains)) {
			if !isBuiltin(t, c) {
				order = append(order, c)
			}
		}
		fmt.Fprintf(&b, "*%s\n", t)
		for _, c := range order {
			policy := "-"
			if isBuiltin(t, c) {
				policy = "ACCEPT"
			}
			fmt.Fprintf(&b, ":%s %s [0:0]\n", c, policy)
		}
		for _, c := range order {
			for _, r := range chains[c] {
				fmt.Fprintf(&b, "-A %s %s\n", c, r)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return []byte(b.String()), nil
}

// fakeTx is one table being changed, committed at COMMIT.
type fakeTx struct {
	f       *FakeRules // the other tables, for references to sets
	table   string
	chains  map[string][]string
	touched map[string]bool
}

func (f *FakeRules) begin(table string) *fakeTx {
	tx := &fakeTx{f: f, table: table, chains: map[string][]string{}, touched: map[string]bool{}}
	for c, rules := range f.tables[table] {
		tx.chains[c] = slices.Clone(rules)
	}
	for _, c := range builtinChains[table] {
		if tx.chains[c] == nil {
			tx.chains[c] = []string{}
		}
	}
	return tx
}

// do applies one command line.
func (tx *fakeTx) do(line string) error {
	if _, ok := builtinChains[tx.table]; !ok {
		return fmt.Errorf("table %q does not exist", tx.table)
	}
	if strings.HasPrefix(line, ":") {
		name, _, _ := strings.Cut(line[1:], " ")
		if len(name) > maxChainName {
			return fmt.Errorf("chain name %q too long", name)
		}
		tx.chains[name] = []string{} // create, or flush
		tx.touched[name] = true
		return nil
	}
	cmd, rest, _ := strings.Cut(line, " ")
	chain, rule, _ := strings.Cut(rest, " ")
	if _, ok := tx.chains[chain]; !ok {
		return fmt.Errorf("%s: chain %q does not exist", cmd, chain)
	}
	tx.touched[chain] = true
	if tx.table == setTable {
		return tx.doSet(cmd, chain, rule)
	}
	switch cmd {
	case "-A":
		return tx.insert(chain, -1, rule)
	case "-I":
		pos := 0
		if num, r, ok := strings.Cut(rule, " "); ok {
			if i, err := strconv.Atoi(num); err == nil && i >= 1 {
				pos, rule = i-1, r
			}
		}
		return tx.insert(chain, pos, rule)
	case "-D":
		i := slices.Index(tx.chains[chain], canonicalRule(rule))
		if i < 0 {
			return fmt.Errorf("-D %s: bad rule (does a matching rule exist in that chain?)", chain)
		}
		tx.chains[chain] = slices.Delete(tx.chains[chain], i, i+1)
		return nil
	case "-X":
		return tx.deleteChain(chain)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// doSet applies a command to a set as ipset -exist does: adding a member
// that is there and deleting one that is not change nothing; a set that a
// rule names cannot be destroyed.
func (tx *fakeTx) doSet(cmd, set, member string) error {
	members := tx.chains[set]
	i := slices.Index(members, member)
	switch cmd {
	case "-A":
		if setKindOf(set).typ == "" || !setMemberRE.MatchString(member) {
			return fmt.Errorf("add %s %q: not a member of a set of ours", set, member)
		}
		if i < 0 {
			tx.chains[set] = append(members, member)
		}
		return nil
	case "-D":
		if i >= 0 {
			tx.chains[set] = slices.Delete(members, i, i+1)
		}
		return nil
	case "-X":
		for t, chains := range tx.f.tables {
			for c, rules := range chains {
				for _, r := range rules {
					if strings.Contains(r+" ", " --map-set "+set+" ") {
						return fmt.Errorf("destroy %s: in use by %s/%s (set is in use by a kernel component)", set, t, c)
					}
				}
			}
		}
		delete(tx.chains, set)
		return nil
	}
	return fmt.Errorf("ipset: unknown command %q", cmd)
}

func (tx *fakeTx) insert(chain string, pos int, rule string) error {
	if err := tx.checkRule(rule); err != nil {
		return fmt.Errorf("%s %s: %w", chain, rule, err)
	}
	rules := tx.chains[chain]
	if pos < 0 || pos > len(rules) {
		pos = len(rules)
	}
	tx.chains[chain] = slices.Insert(rules, pos, canonicalRule(rule))
	return nil
}

func (tx *fakeTx) deleteChain(chain string) error {
	switch {
	case isBuiltin(tx.table, chain):
		return fmt.Errorf("-X %s: built-in chain", chain)
	case len(tx.chains[chain]) > 0:
		return fmt.Errorf("-X %s: chain not empty (device or resource busy)", chain)
	}
	for c, rules := range tx.chains {
		for _, r := range rules {
			if jumpTarget(r) == chain {
				return fmt.Errorf("-X %s: referenced from %s (device or resource busy)", chain, c)
			}
		}
	}
	delete(tx.chains, chain)
	return nil
}

// fakeMatches are the matches the mesh uses (-m NAME).
var fakeMatches = []string{"tcp", "udp", "mark", "conntrack", "comment", "statistic", "addrtype", "ipvs"}

// targetTables and targetHooks say where each target is allowed.
var (
	targetTables = map[string]string{"MARK": "mangle", "DNAT": "nat", "SNAT": "nat", "MASQUERADE": "nat", "REDIRECT": "nat", "REJECT": "filter", "SET": "mangle"}
	targetHooks  = map[string][]string{
		"DNAT": {"PREROUTING", "OUTPUT"}, "REDIRECT": {"PREROUTING", "OUTPUT"},
		"SNAT": {"POSTROUTING", "INPUT"}, "MASQUERADE": {"POSTROUTING"},
		"REJECT": {"INPUT", "FORWARD", "OUTPUT"},
	}
)

// checkRule refuses unknown matches and targets, and jumps to chains that
// do not exist.
func (tx *fakeTx) checkRule(rule string) error {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-m" && !slices.Contains(fakeMatches, f[i+1]) {
			return fmt.Errorf("couldn't load match %q", f[i+1])
		}
	}
	target := jumpTarget(rule)
	switch {
	case target == "":
		return fmt.Errorf("no target")
	case target == "ACCEPT" || target == "DROP" || target == "RETURN":
	case targetTables[target] != "":
		if targetTables[target] != tx.table {
			return fmt.Errorf("target %s is not valid in table %s", target, tx.table)
		}
		if target == "SET" {
			_, rest, _ := strings.Cut(rule, " --map-set ")
			set, _, _ := strings.Cut(rest, " ")
			if _, ok := tx.f.tables[setTable][set]; !ok {
				return fmt.Errorf("set %q does not exist", set)
			}
		}
	case isBuiltin(tx.table, target):
		return fmt.Errorf("jump to built-in chain %s", target)
	default:
		if _, ok := tx.chains[target]; !ok {
			return fmt.Errorf("chain %q does not exist", target)
		}
	}
	return nil
}

// check validates the whole table at COMMIT: no loops, and every target
// reachable only from hooks that allow it.
func (tx *fakeTx) check() error {
	for _, hook := range builtinChains[tx.table] {
		var walk func(chain string, depth int) error
		walk = func(chain string, depth int) error {
			if depth > len(tx.chains) {
				return fmt.Errorf("chain %s: loop (too many levels of symbolic links)", chain)
			}
			for _, r := range tx.chains[chain] {
				t := jumpTarget(r)
				if hooks, ok := targetHooks[t]; ok && !slices.Contains(hooks, hook) {
					return fmt.Errorf("chain %s: %s reached from %s (invalid argument)", chain, t, hook)
				}
				if _, ok := tx.chains[t]; ok && !isBuiltin(tx.table, t) {
					if err := walk(t, depth+1); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if err := walk(hook, 0); err != nil {
			return err
		}
	}
	return nil
}
