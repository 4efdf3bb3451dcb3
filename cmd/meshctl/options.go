package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// What several command groups share: flag names, list options and
// argument checks.

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
	filter []string // --filter KEY=VALUE, as given
	// noTrunc (--no-trunc, where docker has it) prints full IDs, commands
	// and errors.
	noTrunc bool
	// now is the clock ages are measured with; nil is time.Now.
	now func() time.Time
}

// addListFlags adds a list's flags as docker has them: --format without
// a shorthand, since -f is --filter on lists; -q, quietUsage saying what
// it prints; -f/--filter with the keys the list accepts.
func addListFlags(cmd *cobra.Command, opts *listOptions, quietUsage string, keys []string) {
	cmd.Flags().StringVar(&opts.format, flagFormat, "", "Go template on docker's fields, table TEMPLATE with a header, or json")
	cmd.Flags().BoolVarP(&opts.quiet, flagQuiet, "q", false, quietUsage)
	addFilterFlag(cmd, &opts.filter, keys)
}

// addNoTruncFlag adds --no-trunc, as docker's service ps, ps and network
// ls have it.
func addNoTruncFlag(cmd *cobra.Command, opts *listOptions) {
	cmd.Flags().BoolVar(&opts.noTrunc, "no-trunc", false, "Do not truncate output")
}

// addFormatFlag adds -f/--format, as docker's inspect and info have it.
func addFormatFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, flagFormat, "f", "", "Go template or json")
}

// listFiltered checks the filters against spec, then lists and keeps the
// items that match. Filters that fail fail before meshd is asked.
func listFiltered[T any](ctx context.Context, list func(context.Context) ([]T, error), spec filterSpec[T], args []string, check func(filters) error) ([]T, error) {
	f, err := spec.parse(args)
	if err == nil && check != nil {
		err = check(f)
	}
	if err != nil {
		return nil, err
	}
	items, err := list(ctx)
	if err != nil {
		return nil, err
	}
	return spec.keep(items, f), nil
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
