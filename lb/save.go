package lb

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

func sortedKeys[V any](m map[chainKey]V) []chainKey {
	return sortKeys(slices.Collect(maps.Keys(m)))
}

func sortKeys(keys []chainKey) []chainKey {
	slices.SortFunc(keys, func(a, b chainKey) int {
		return cmp.Or(strings.Compare(a.table, b.table), strings.Compare(a.chain, b.chain))
	})
	return keys
}

// jumpTarget is the chain or target after "-j" in rule, "" if none.
func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" {
			return f[i+1]
		}
	}
	return ""
}

// builtinChains are the built-in chains of the tables we use.
var builtinChains = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
	setTable: {}, // sets.go: a "chain" per set
}

func isBuiltin(table, chain string) bool { return slices.Contains(builtinChains[table], chain) }

// saved is iptables-save output, parsed: per table, every chain and its
// rules in order.
type saved map[string]map[string][]string

// parseSave reads iptables-save output. Comments, counters and policies
// are dropped.
func parseSave(data []byte) (saved, error) {
	s, _, err := parseSaveCounters(data)
	return s, err
}

// Counter is a rule's packet and byte counts, as "iptables-save -c"
// prints them before the rule ("[packets:bytes] -A …").
type Counter struct{ Packets, Bytes uint64 }

// counters are a saved text's rule counters, at the same places as the
// rules: table → chain → one per rule.
type counters map[string]map[string][]Counter

// parseSaveCounters reads iptables-save output with or without -c; the
// counters of a text without them are zero.
func parseSaveCounters(data []byte) (saved, counters, error) {
	s, cs := saved{}, counters{}
	var table string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		var c Counter
		if strings.HasPrefix(line, "[") {
			pb, rest, ok := strings.Cut(line[1:], "] ")
			if _, err := fmt.Sscanf(pb, "%d:%d", &c.Packets, &c.Bytes); !ok || err != nil {
				return nil, nil, fmt.Errorf("iptables-save line %d: bad counters in %q", n, line)
			}
			line = rest
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			s[table], cs[table] = map[string][]string{}, map[string][]Counter{}
		case table == "":
			return nil, nil, fmt.Errorf("iptables-save line %d: %q outside a table", n, line)
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			s[table][name] = s[table][name][:0:0]
		case strings.HasPrefix(line, "-A "):
			chain, rule, _ := strings.Cut(line[3:], " ")
			s[table][chain] = append(s[table][chain], rule)
			cs[table][chain] = append(cs[table][chain], c)
		default:
			return nil, nil, fmt.Errorf("iptables-save line %d: unexpected %q", n, line)
		}
	}
	return s, cs, sc.Err()
}

// chainKeys are the non-built-in chains, sorted.
func (s saved) chainKeys() []chainKey {
	keys := map[chainKey]bool{}
	for t, chains := range s {
		for c := range chains {
			if !isBuiltin(t, c) {
				keys[chainKey{t, c}] = true
			}
		}
	}
	return sortedKeys(keys)
}

// builtinRules are the rules of built-in chains, in table/chain order.
func (s saved) builtinRules() []jump {
	var out []jump
	for _, t := range slices.Sorted(maps.Keys(s)) {
		for _, c := range builtinChains[t] {
			for _, r := range s[t][c] {
				out = append(out, jump{t, c, r})
			}
		}
	}
	return out
}

// canonicalRule spells rule as iptables-save prints it: the renderers
// write two things their own way (see render.go). It is idempotent.
func canonicalRule(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--set-mark" && !strings.Contains(f[i+1], "/") {
			f[i], f[i+1] = "--set-xmark", f[i+1]+"/0xffffffff"
		}
	}
	if len(f) >= 2 && f[len(f)-2] == "-j" && f[len(f)-1] == "REJECT" {
		f = append(f, "--reject-with", "icmp-port-unreachable")
	}
	return strings.Join(f, " ")
}
