package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// portOptions are docker port's arguments.
type portOptions struct {
	container string
	port      string // PRIVATE_PORT[/PROTO]; empty lists them all
}

func newPortCommand(c *cli) *cobra.Command {
	var opts portOptions
	cmd := &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires at least 1 and at most 2 arguments (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.container = args[0]
			if len(args) > 1 {
				opts.port = args[1]
			}
			return runPort(ctx, cl, c.out, opts)
		}),
	}
	return cmd
}

// runPort prints the container's published ports as docker port does:
// "80/tcp -> 0.0.0.0:32768" for each, or only the host addresses of one
// port, in natural order.
func runPort(ctx context.Context, cl containerAPI, out io.Writer, opts portOptions) error {
	var want string
	if opts.port != "" {
		port, proto, _ := strings.Cut(opts.port, "/")
		if proto == "" {
			proto = api.ProtoTCP
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("Error: invalid port (%s): %w", api.Clip(port), err) //nolint:staticcheck // docker's words
		}
		want = port + "/" + proto
	}
	c, err := cl.Container(ctx, opts.container)
	if err != nil {
		return err
	}
	var lines []string
	if want != "" {
		bindings := c.NetworkSettings.Ports[want]
		if len(bindings) == 0 {
			return fmt.Errorf("Error: No public port '%s' published for %s", api.Clip(opts.port), api.Clip(opts.container)) //nolint:staticcheck // docker's words
		}
		for _, b := range bindings {
			lines = append(lines, net.JoinHostPort(b.HostIP, b.HostPort))
		}
	} else {
		for from, bindings := range c.NetworkSettings.Ports {
			for _, b := range bindings {
				lines = append(lines, from+" -> "+net.JoinHostPort(b.HostIP, b.HostPort))
			}
		}
	}
	slices.SortFunc(lines, naturalCompare)
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	return nil
}

// naturalCompare orders strings as docker port does (sortorder's
// NaturalLess): runs of digits by their value, so 8080/tcp comes after
// 443/tcp.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

// digitRun is the length of the run of digits s starts with.
func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
