package main

import (
	"context"
	"io"
	"slices"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// taskAPI is what ps and exec need from meshd: the answering node and its
// tasks.
type taskAPI interface {
	Info(ctx context.Context) (api.Info, error)
	Tasks(ctx context.Context, service, node string) ([]api.Task, error)
	Task(ctx context.Context, ref string) (api.Task, error)
}

var _ taskAPI = (*api.Client)(nil)

func newPsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ps", Short: "List the tasks running on this node", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runPs(ctx, cl, c.out, opts)
		}),
	}
	addFormatFlags(cmd, &opts, "only container IDs")
	return cmd
}

// runPs prints the tasks of the answering node as docker ps prints
// containers.
func runPs(ctx context.Context, cl taskAPI, out io.Writer, opts listOptions) error {
	info, err := cl.Info(ctx)
	if err != nil {
		return err
	}
	tasks, err := cl.Tasks(ctx, "", info.NodeID)
	if err != nil {
		return err
	}
	// The node runs its current tasks (one that just ended shows until
	// the manager shuts it down); the history is service ps's.
	tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return !t.Current() })
	return printList(out, opts, tasks, api.Task.Hostname,
		[]string{"CONTAINER ID", "IMAGE", "STATUS", "NETWORKS", "NAMES"},
		func(t api.Task) []string {
			var nets []string
			for _, tn := range t.Networks {
				nets = append(nets, tn.NetworkName+"="+tn.Addr)
			}
			return []string{t.Hostname(), imageOf(t.Image, t.Args), title(t.Status.State), joinOr(nets, "-"), t.Name() + "." + t.ID}
		})
}

func joinOr(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	return strings.Join(s, ",")
}
