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

// serviceAPI is what service create, ls, ps and scale need from meshd;
// inspect and rm take the one method they call (see newInspectCommand).
type serviceAPI interface {
	Services(ctx context.Context) ([]api.Service, error)
	Service(ctx context.Context, ref string) (api.Service, error)
	CreateService(ctx context.Context, req api.ServiceCreate) (api.Service, error)
	ScaleService(ctx context.Context, ref string, replicas int) (api.Service, error)
	Tasks(ctx context.Context, service, node string) ([]api.Task, error)
}

var _ serviceAPI = (*api.Client)(nil)

func newServiceCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Manage services"}
	cmd.AddCommand(newServiceCreateCommand(c), newServiceLsCommand(c), newServicePsCommand(c),
		newInspectCommand(c, "inspect SERVICE [SERVICE...]", "Show services in detail", (*api.Client).Service),
		newServiceScaleCommand(c),
		newRmCommand(c, "rm SERVICE [SERVICE...]", "Remove services", (*api.Client).RemoveService))
	return cmd
}

// waitOptions say whether and how long create and scale wait for the
// service to converge.
type waitOptions struct {
	detach  bool          // --detach: do not wait
	timeout time.Duration // --timeout
}

func addWaitFlags(cmd *cobra.Command, opts *waitOptions, detachUsage, timeoutUsage string) {
	cmd.Flags().BoolVarP(&opts.detach, flagDetach, "d", false, detachUsage)
	cmd.Flags().DurationVar(&opts.timeout, flagTimeout, 60*time.Second, timeoutUsage)
}

// waitConverged waits until every task of the service runs, then prints
// docker's progress summary.
func waitConverged(ctx context.Context, cl serviceAPI, out io.Writer, id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		svc, err := cl.Service(ctx, id)
		if err != nil {
			return err
		}
		tasks, err := cl.Tasks(ctx, id, "")
		if err != nil {
			return err
		}
		if svc.Running == svc.Replicas && len(tasks) == svc.Replicas {
			fmt.Fprintf(out, "overall progress: %d out of %d tasks\n", svc.Running, svc.Replicas)
			for _, t := range tasks {
				fmt.Fprintf(out, "%d/%d: %s\n", t.Slot, svc.Replicas, t.Status.State)
			}
			fmt.Fprintln(out, "verify: Service converged")
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s did not converge in %s: %d out of %d tasks running%s", svc.Name, timeout, svc.Running, svc.Replicas, firstTaskError(tasks))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func firstTaskError(tasks []api.Task) string {
	for _, t := range tasks {
		if t.Status.Err != "" {
			return fmt.Sprintf(" (%s: %s)", t.Name(), t.Status.Err)
		}
	}
	return ""
}

// imageOf is the IMAGE column: the image, or "-- CMD ARGS" for a host
// command.
func imageOf(image string, args []string) string {
	if image == "" && len(args) > 0 {
		return "-- " + strings.Join(args, " ")
	}
	return image
}
