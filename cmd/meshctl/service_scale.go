package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type serviceScaleOptions struct {
	scales []string // SERVICE=REPLICAS
	wait   waitOptions
}

func newServiceScaleCommand(c *cli) *cobra.Command {
	var opts serviceScaleOptions
	cmd := &cobra.Command{
		Use: "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]", Short: "Change the number of tasks", Args: cobra.MinimumNArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.scales = args
			return runServiceScale(ctx, cl, c.out, opts)
		}),
	}
	addWaitFlags(cmd, &opts.wait, "do not wait for the tasks", "how long to wait for convergence", defaultWaitTimeout)
	return cmd
}

// runServiceScale checks every SERVICE=REPLICAS first, then scales each
// in turn, waiting for it to converge unless detached.
func runServiceScale(ctx context.Context, cl serviceAPI, out io.Writer, opts serviceScaleOptions) error {
	type scale struct {
		ref string
		n   int
	}
	var scales []scale
	for _, a := range opts.scales {
		ref, num, ok := strings.Cut(a, "=")
		n, err := strconv.Atoi(num)
		if !ok || ref == "" || err != nil || n < 0 {
			return fmt.Errorf("invalid scale %q: want SERVICE=REPLICAS with REPLICAS ≥ 0", a)
		}
		scales = append(scales, scale{ref, n})
	}
	for _, s := range scales {
		var ended map[string]bool
		if !opts.wait.detach {
			var err error
			if ended, err = endedTasks(ctx, cl, s.ref); err != nil {
				return err
			}
		}
		svc, err := cl.ScaleService(ctx, s.ref, s.n)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s scaled to %d\n", s.ref, s.n)
		if !opts.wait.detach {
			if err := waitConverged(ctx, cl, out, svc.ID, opts.wait.timeout, ended); err != nil {
				return err
			}
		}
	}
	return nil
}
