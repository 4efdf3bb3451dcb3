package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// -f/--filter KEY=VALUE on the list commands, with docker's keys, its
// matching per key and its words for a bad filter. docker filters on the
// daemon; meshctl filters what meshd lists, which gives the same rows for
// the lists meshd has, and checks the keys before meshd is asked.

// errBadFilter is docker's refusal of a filter without "="
// (filters.ErrBadFormat), raised as the flag is parsed: pflag then words
// it as docker's does, `invalid argument "foo" for "-f, --filter" flag:
// bad format of filter (expected name=value)`.
var errBadFilter = errors.New("bad format of filter (expected name=value)")

// filterFlag is the value of -f/--filter, repeatable, as docker's
// opts.FilterOpt: a value without "=" fails while flags are parsed.
type filterFlag struct{ args *[]string }

func (f filterFlag) String() string { return "" }
func (f filterFlag) Type() string   { return flagFilter }

func (f filterFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return errBadFilter
	}
	*f.args = append(*f.args, v)
	return nil
}

// addFilterFlag adds -f/--filter; keys are those the command accepts,
// listed in its help since docker's own help does not say them.
func addFilterFlag(cmd *cobra.Command, args *[]string, keys []string) {
	cmd.Flags().VarP(filterFlag{args}, flagFilter, "f",
		"Filter output based on conditions provided: KEY=VALUE, KEY one of "+strings.Join(keys, ", ")+"; repeatable")
}

// filters are parsed --filter values, key → values: docker's
// filters.Args.
type filters map[string][]string

// filterSpec is what a list command accepts: per key, whether an item
// matches one value of it.
type filterSpec[T any] map[string]func(it T, value string) bool

// keys returns the accepted keys, sorted, for the help and for errors.
func (spec filterSpec[T]) keys() []string {
	var ks []string
	for k := range spec {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// parse reads args as docker's filters.ParseFlag does (the key lowercased,
// key and value trimmed) and refuses a key spec lacks with the daemon's
// words (filters.Args.Validate): `invalid filter 'foo'`.
func (spec filterSpec[T]) parse(args []string) (filters, error) {
	f := filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, errBadFilter
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, known := spec[k]; !known {
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		f[k] = append(f[k], strings.TrimSpace(v))
	}
	return f, nil
}

// keep returns the items that match f as docker matches: an item must
// match every key given (AND) and, for each, one of its values (OR).
func (spec filterSpec[T]) keep(items []T, f filters) []T {
	if len(f) == 0 {
		return items
	}
	out := []T{}
	for _, it := range items {
		if spec.match(it, f) {
			out = append(out, it)
		}
	}
	return out
}

func (spec filterSpec[T]) match(it T, f filters) bool {
	for k, values := range f {
		if !slices.ContainsFunc(values, func(v string) bool { return spec[k](it, v) }) {
			return false
		}
	}
	return true
}

// oneOf refuses a value of key outside allowed, whatever its case, as
// swarmkit's enumerations do, with the daemon's words: `Invalid role
// filter: 'boss'`.
func (f filters) oneOf(key string, allowed ...string) error {
	for _, v := range f[key] {
		if !slices.Contains(allowed, strings.ToLower(v)) {
			return fmt.Errorf("Invalid %s filter: '%s'", key, v)
		}
	}
	return nil
}

// matchName is docker's filters.Args.Match, used for network and
// container names: equal, or the value as a regular expression found in
// the name, which for a plain word is a substring. A value that does not
// compile matches only itself.
func matchName(name, value string) bool {
	if name == value {
		return true
	}
	ok, err := regexp.MatchString(value, name)
	return err == nil && ok
}

// matchPrefix is swarmkit's NamePrefixes and IDPrefixes, and docker's
// network id filter.
func matchPrefix(s, value string) bool { return strings.HasPrefix(s, value) }

// noLabel is the label filter of objects that carry no labels: meshd
// keeps none, and docker shows no object lacking the label asked for.
func noLabel[T any](T, string) bool { return false }
