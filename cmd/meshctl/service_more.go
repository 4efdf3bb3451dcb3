package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newServicePsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ps SERVICE", Short: "List a service's tasks", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			tasks, err := cl.Tasks(cmd.Context(), args[0], "")
			if err != nil {
				return err
			}
			return printTasks(c.out, tasks, opts, time.Now())
		},
	}
	cmd.Flags().StringVarP(&opts.format, flagFormat, "f", "", "Go template or json")
	cmd.Flags().BoolVarP(&opts.quiet, flagQuiet, "q", false, "only IDs")
	return cmd
}

// printTasks prints tasks as docker service ps does.
func printTasks(out io.Writer, tasks []api.Task, opts listOptions, now time.Time) error {
	switch {
	case opts.quiet:
		for _, t := range tasks {
			fmt.Fprintln(out, shortID(t.ID))
		}
		return nil
	case opts.format != "":
		return printEach(out, opts.format, tasks)
	}
	tb := table{header: []string{"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"}}
	for _, t := range tasks {
		tb.add(shortID(t.ID), t.Name(), imageOf(t.Image, t.Args), t.NodeName, title(t.DesiredState),
			currentState(t.Status, now), oneLine(t.Status.Err), "")
	}
	return tb.write(out)
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// currentState is "Running 42 seconds ago".
func currentState(s api.TaskStatus, now time.Time) string {
	if s.Timestamp.IsZero() {
		return title(s.State)
	}
	return title(s.State) + " " + ago(now.Sub(s.Timestamp))
}

func ago(d time.Duration) string {
	switch {
	case d < 2*time.Second:
		return "less than a second ago"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " seconds ago"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " minutes ago"
	}
	return strconv.Itoa(int(d.Hours())) + " hours ago"
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func newServiceInspectCommand(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "inspect SERVICE [SERVICE...]", Short: "Show services in detail", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var svcs []api.Service
			for _, ref := range args {
				s, err := cl.Service(cmd.Context(), ref)
				if err != nil {
					return err
				}
				svcs = append(svcs, s)
			}
			return printInspect(c.out, format, svcs)
		},
	}
	cmd.Flags().StringVarP(&format, flagFormat, "f", "", "Go template or json")
	return cmd
}

func newServiceScaleCommand(c *cli) *cobra.Command {
	var detach bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use: "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]", Short: "Change the number of tasks", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return runServiceScale(cmd.Context(), cl, c.out, args, detach, timeout)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "do not wait for the tasks")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for convergence")
	return cmd
}

func runServiceScale(ctx context.Context, cl serviceAPI, out io.Writer, args []string, detach bool, timeout time.Duration) error {
	type scale struct {
		ref string
		n   int
	}
	var scales []scale
	for _, a := range args {
		ref, num, ok := strings.Cut(a, "=")
		n, err := strconv.Atoi(num)
		if !ok || ref == "" || err != nil || n < 0 {
			return fmt.Errorf("invalid scale %q: want SERVICE=REPLICAS with REPLICAS ≥ 0", a)
		}
		scales = append(scales, scale{ref, n})
	}
	for _, s := range scales {
		svc, err := cl.ScaleService(ctx, s.ref, s.n)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s scaled to %d\n", s.ref, s.n)
		if !detach {
			if err := waitConverged(ctx, cl, out, svc.ID, timeout); err != nil {
				return err
			}
		}
	}
	return nil
}

func newServiceRmCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use: "rm SERVICE [SERVICE...]", Aliases: []string{"remove"}, Short: "Remove services", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return removeEach(c, args, func(ref string) error { return cl.RemoveService(cmd.Context(), ref) })
		},
	}
}
