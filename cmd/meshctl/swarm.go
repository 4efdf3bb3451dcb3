package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// swarmAPI is what the swarm commands need from meshd.
type swarmAPI interface {
	JoinToken(ctx context.Context, role string, rotate bool) (api.JoinToken, error)
}

var _ swarmAPI = (*api.Client)(nil)

func newSwarmCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "swarm", Short: "Manage the cluster"}
	cmd.AddCommand(newJoinTokenCommand(c))
	return cmd
}

type joinTokenOptions struct {
	quiet bool // --quiet: only the token
}

func newJoinTokenCommand(c *cli) *cobra.Command {
	var opts joinTokenOptions
	cmd := &cobra.Command{
		Use: "join-token [worker]", Short: "Print the command that joins a node",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(cmd, args); err != nil {
				return err
			}
			if len(args) == 1 && args[0] != "worker" {
				return fmt.Errorf("unknown role %q: meshd has one manager; nodes join as worker", args[0])
			}
			return nil
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runJoinToken(ctx, cl, c.out, opts)
		}),
	}
	cmd.Flags().BoolVarP(&opts.quiet, flagQuiet, "q", false, "only the token")
	return cmd
}

// runJoinToken prints the meshd command line that joins a node, as docker
// swarm join-token prints docker's; the API port is left out when it is
// the default.
func runJoinToken(ctx context.Context, cl swarmAPI, out io.Writer, opts joinTokenOptions) error {
	jt, err := cl.JoinToken(ctx, api.RoleWorker, false)
	if err != nil {
		return err
	}
	if opts.quiet {
		fmt.Fprintln(out, jt.Token)
		return nil
	}
	join := jt.ManagerAddr
	if host, port, err := net.SplitHostPort(join); err == nil && port == fmt.Sprint(api.DefaultAPIPort) {
		join = host
	}
	fmt.Fprintf(out, "To add a worker to this cluster, run the following command on it:\n\n"+
		"    meshd --advertise-addr <ITS-ADDRESS> --join %s --token %s\n\n", join, jt.Token)
	return nil
}
