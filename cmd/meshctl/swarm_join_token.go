package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type joinTokenOptions struct {
	role   string // worker or manager
	quiet  bool   // --quiet: only the token
	rotate bool   // --rotate: replace the token first
}

func newJoinTokenCommand(c *cli) *cobra.Command {
	var opts joinTokenOptions
	cmd := &cobra.Command{
		Use: "join-token [OPTIONS] (worker|manager)", Short: "Print the command that joins a node as a worker or a manager",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := exactArgs(1)(cmd, args); err != nil {
				return err
			}
			opts.role = args[0]
			return opts.validate()
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runJoinToken(ctx, cl, c.out, opts)
		}),
	}
	cmd.Flags().BoolVarP(&opts.quiet, flagQuiet, "q", false, "only display the token")
	cmd.Flags().BoolVar(&opts.rotate, "rotate", false, "rotate the join token first: the old one no longer admits nodes")
	return cmd
}

func (o joinTokenOptions) validate() error {
	if o.role != api.RoleWorker && o.role != api.RoleManager {
		return fmt.Errorf("unknown role %q: want worker or manager", o.role)
	}
	return nil
}

// runJoinToken prints the command that joins a node as opts.role, as
// docker swarm join-token does, after rotating the token if asked; the
// rotation answers with the new token, so one request does.
func runJoinToken(ctx context.Context, cl swarmAPI, out io.Writer, opts joinTokenOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	jt, err := cl.JoinToken(ctx, opts.role, opts.rotate)
	if err != nil {
		return err
	}
	if opts.quiet {
		fmt.Fprintln(out, jt.Token)
		return nil
	}
	if opts.rotate {
		fmt.Fprintf(out, "Successfully rotated %s join token.\n\n", opts.role)
	}
	printJoinCommand(out, opts.role, jt.Token, jt.ManagerAddr)
	return nil
}
