package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type swarmCAOptions struct {
	rotate bool // --rotate: a new root CA, the join tokens with it
}

func newSwarmCACommand(c *cli) *cobra.Command {
	var opts swarmCAOptions
	cmd := &cobra.Command{
		Use: "ca [OPTIONS]", Short: "Display and rotate the root CA", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runSwarmCA(ctx, cl, c.out, opts)
		}),
	}
	cmd.Flags().BoolVar(&opts.rotate, "rotate", false, "rotate the swarm CA: nodes renew their certificates, and the join tokens change")
	return cmd
}

// runSwarmCA prints the root CA's certificate as PEM, as docker swarm ca
// does; while a rotation is under way, the old root follows the new one.
func runSwarmCA(ctx context.Context, cl swarmAPI, out io.Writer, opts swarmCAOptions) error {
	root, err := cl.CA(ctx, opts.rotate)
	if err != nil {
		return err
	}
	if opts.rotate {
		fmt.Fprintln(out, "Root CA rotated: nodes renew their certificates; the old root is dropped once all have.")
	}
	for _, der := range root.Certs {
		if err := pem.Encode(out, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
			return err
		}
	}
	return nil
}
