package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type swarmInitOptions struct {
	advertiseAddr string        // --advertise-addr; empty keeps meshd's own
	certExpiry    time.Duration // --cert-expiry; zero is meshd's default, 90 days
}

func newSwarmInitCommand(c *cli) *cobra.Command {
	var opts swarmInitOptions
	cmd := &cobra.Command{
		Use: "init [OPTIONS]", Short: "Initialize a swarm: this node becomes its first manager", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runSwarmInit(ctx, cl, c.out, opts)
		}),
	}
	cmd.Flags().StringVar(&opts.advertiseAddr, "advertise-addr", "", "address other nodes reach this one at (default: meshd's --advertise-addr)")
	cmd.Flags().DurationVar(&opts.certExpiry, "cert-expiry", 0, "validity period for node certificates (default 2160h0m0s)")
	return cmd
}

// runSwarmInit makes the node a manager and prints what docker swarm init
// prints: the worker join command from the answer itself, so that it
// needs no second request, and where to find the manager's.
func runSwarmInit(ctx context.Context, cl swarmAPI, out io.Writer, opts swarmInitOptions) error {
	if opts.certExpiry < 0 || opts.certExpiry > 0 && opts.certExpiry < time.Hour {
		return fmt.Errorf("invalid --cert-expiry %s: want at least 1h", opts.certExpiry)
	}
	resp, err := cl.SwarmInit(ctx, api.SwarmInit{AdvertiseAddr: opts.advertiseAddr, CertExpiry: opts.certExpiry})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Swarm initialized: current node (%s) is now a manager.\n\n", resp.NodeID)
	printJoinCommand(out, api.RoleWorker, resp.WorkerToken, resp.ManagerAddr)
	fmt.Fprint(out, "To add a manager to this swarm, run 'meshctl swarm join-token manager' and follow the instructions.\n\n")
	return nil
}
