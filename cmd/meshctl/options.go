package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// What several command groups share: flag names, list options and
// filters.

// Flag names more than one command uses.
const (
	flagFormat  = "format"
	flagQuiet   = "quiet"
	flagFilter  = "filter"
	flagDetach  = "detach"
	flagTimeout = "timeout"
)

// listOptions are the output flags of the ls and ps commands.
type listOptions struct {
	format string   // --format: a Go template or json; empty prints the table
	quiet  bool     // --quiet: IDs only
	filter []string // --filter name=VALUE, where the command has it
}

// addFormatFlags adds --format and --quiet; quietUsage says what -q prints.
func addFormatFlags(cmd *cobra.Command, opts *listOptions, quietUsage string) {
	addFormatFlag(cmd, &opts.format)
	cmd.Flags().BoolVarP(&opts.quiet, flagQuiet, "q", false, quietUsage)
}

func addFormatFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, flagFormat, "f", "", "Go template or json")
}

// addListFlags adds --format, --quiet and --filter.
func addListFlags(cmd *cobra.Command, opts *listOptions) {
	addFormatFlags(cmd, opts, "only IDs")
	cmd.Flags().StringArrayVar(&opts.filter, flagFilter, nil, "name=VALUE (substring), repeatable")
}

// nameFilter returns the name= filters, or an error for other keys.
func nameFilter(filters []string) ([]string, error) {
	var names []string
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != "name" {
			return nil, fmt.Errorf("invalid filter %q: meshctl filters by name=VALUE", f)
		}
		names = append(names, v)
	}
	return names, nil
}

// listByName fetches objects with list and keeps those whose name
// contains the value of one of the name= filters; all of them without
// filters. A filter on another key fails before meshd is asked.
func listByName[T any](ctx context.Context, list func(context.Context) ([]T, error), filters []string, name func(T) string) ([]T, error) {
	names, err := nameFilter(filters)
	if err != nil {
		return nil, err
	}
	items, err := list(ctx)
	if err != nil || len(names) == 0 {
		return items, err
	}
	var out []T
	for _, it := range items {
		for _, n := range names {
			if strings.Contains(name(it), n) {
				out = append(out, it)
				break
			}
		}
	}
	return out, nil
}

// exactArgs and minArgs check the number of arguments as docker's
// cli.ExactArgs and cli.RequiresMinArgs do, with their wording, but on
// one line like every meshctl error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return argsError(cmd, "exactly", n)
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return argsError(cmd, "at least", n)
		}
		return nil
	}
}

func argsError(cmd *cobra.Command, how string, n int) error {
	noun := "arguments"
	if n == 1 {
		noun = "argument"
	}
	return fmt.Errorf("%q requires %s %d %s (see '%s --help')", cmd.CommandPath(), how, n, noun, cmd.CommandPath())
}
