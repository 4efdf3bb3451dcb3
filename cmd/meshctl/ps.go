package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

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
	addListFlags(cmd, &opts, "only container IDs", containerFilters.keys())
	addNoTruncFlag(cmd, &opts)
	return cmd
}

// containerStates are docker's container states, the values its ps
// status filter takes.
var containerStates = []string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}

// containerFilters are the docker ps filters that mean something for a
// task, matched as docker's daemon does: the ID and name as regular
// expressions (a plain word is a substring) against the container's, the
// name being www.1.<task ID> as NAMES shows it; status as docker names a
// container's state; network by name or ID prefix.
var containerFilters = filterSpec[api.Task]{
	"id":      func(t api.Task, v string) bool { return matchName(t.ContainerID(), v) },
	"name":    func(t api.Task, v string) bool { return matchName(t.Name()+"."+t.ID, v) },
	"status":  func(t api.Task, v string) bool { return containerState(t.Status.State) == v },
	"network": matchTaskNetwork,
	"label":   noLabel[api.Task],
}

// containerState is docker's name for the state of a task's container:
// created until its process runs, exited once it has ended.
func containerState(taskState string) string {
	switch taskState {
	case api.TaskRunning:
		return "running"
	case api.TaskComplete, api.TaskFailed, api.TaskShutdown:
		return "exited"
	}
	return "created"
}

// checkStatus refuses a status docker does not know, with its daemon's
// words; its other filters simply match none for an unknown value.
func checkStatus(f filters) error {
	for _, v := range f["status"] {
		if !slices.Contains(containerStates, v) {
			return fmt.Errorf("invalid filter 'status=%s'", v)
		}
	}
	return nil
}

func matchTaskNetwork(t api.Task, v string) bool {
	return slices.ContainsFunc(t.Networks, func(n api.TaskNetwork) bool { return n.NetworkName == v || matchPrefix(n.NetworkID, v) })
}

// runPs prints the tasks of the answering node as docker ps prints
// containers.
func runPs(ctx context.Context, cl taskAPI, out io.Writer, opts listOptions) error {
	tasks, err := listFiltered(ctx, func(ctx context.Context) ([]api.Task, error) { return nodeTasks(ctx, cl) },
		containerFilters, opts.filter, checkStatus)
	if err != nil {
		return err
	}
	now := time.Now()
	if opts.now != nil {
		now = opts.now()
	}
	rowOf := func(t api.Task) containerRow { return containerRow{Task: t, now: now, noTrunc: opts.noTrunc} }
	return printList(out, opts, tasks, listView[api.Task, containerRow]{
		id:     func(t api.Task) string { return rowOf(t).ID() },
		header: []string{"CONTAINER ID", "IMAGE", "STATUS", "NETWORKS", "NAMES"},
		row: func(t api.Task) []string {
			var nets []string
			for _, tn := range t.Networks {
				nets = append(nets, tn.NetworkName+"="+tn.Addr)
			}
			c := rowOf(t)
			return []string{c.ID(), c.Image(), c.Status(), joinOr(nets, "-"), c.Names()}
		},
		context: rowOf,
		fields:  containerFields,
	})
}

// nodeTasks returns the current tasks of the answering node: it runs them
// (one that just ended shows until the manager shuts it down); the history
// is service ps's.
func nodeTasks(ctx context.Context, cl taskAPI) ([]api.Task, error) {
	info, err := cl.Info(ctx)
	if err != nil {
		return nil, err
	}
	tasks, err := cl.Tasks(ctx, "", info.NodeID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(tasks, func(t api.Task) bool { return !t.Current() }), nil
}

func joinOr(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	return strings.Join(s, ",")
}
