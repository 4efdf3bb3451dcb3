package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// eventsAPI is what events needs: the node's event stream.
type eventsAPI interface {
	Events(ctx context.Context, o api.EventsOptions, fn func(api.Event) error) error
}

var _ eventsAPI = (*api.Client)(nil)

// eventsOptions are docker events's flags.
type eventsOptions struct {
	since, until string
	filter       []string // --filter type=VALUE, as given
	format       string   // --format: a Go template per event, or json
}

func newEventsCommand(c *cli) *cobra.Command {
	var opts eventsOptions
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from this node: nodes, tasks, backends and drift repaired",
		Long: "Prints what this node saw happen, one line per event as docker events prints them:\n" +
			"node join|suspect|alive|down|leave|leader, task states, backend added|drained|removed, drift repaired.\n" +
			"Without --until it follows new events until interrupted; without --since and --until\n" +
			"it shows only those, as docker events does. The node keeps its last\n" +
			"1000 events in memory; a restarted meshd starts with none.",
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			return checkEventsOptions(opts, time.Now())
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runEvents(ctx, cl, c.out, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	f := cmd.Flags()
	f.StringVar(&opts.since, "since", "", "Show events created since timestamp (RFC 3339, Unix seconds, or a duration ago such as 10m)")
	f.StringVar(&opts.until, "until", "", "Stream events until this timestamp (same forms as --since)")
	f.StringVar(&opts.format, flagFormat, "", "Format the output using the given Go template, or json")
	addFilterFlag(cmd, &opts.filter, []string{"type (" + strings.Join(api.EventTypes, "|") + ")"})
	return cmd
}

// checkEventsOptions refuses what meshd would, before asking it.
func checkEventsOptions(opts eventsOptions, now time.Time) error {
	if _, err := api.ParseEventTime(opts.since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if _, err := api.ParseEventTime(opts.until, now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	_, err := api.ParseEventFilters(opts.filter)
	return err
}

// runEvents prints each event as it comes: Docker's line, or the
// --format template run on it (json: the event as JSON).
func runEvents(ctx context.Context, cl eventsAPI, out io.Writer, opts eventsOptions) error {
	print := func(e api.Event) error {
		_, err := fmt.Fprintln(out, e.String())
		return err
	}
	if opts.format != "" {
		print = func(e api.Event) error { return printEach(out, opts.format, []api.Event{e}) }
		if opts.format != formatJSON {
			if _, err := parseTemplate(opts.format); err != nil {
				return err
			}
		}
	}
	return cl.Events(ctx, api.EventsOptions{Since: opts.since, Until: opts.until, Filters: opts.filter}, print)
}
