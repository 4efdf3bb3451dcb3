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

// psAPI is what ps needs: the node's tasks, and their containers for the
// ports they publish.
type psAPI interface {
	taskAPI
	Containers(ctx context.Context) ([]api.Container, error)
}

var _ psAPI = (*api.Client)(nil)

// psOptions are docker ps's flags.
type psOptions struct {
	listOptions
	all    bool // -a: the node's ended tasks too
	latest bool // -l: the latest created task only
	last   int  // -n: the last n created tasks
}

func newPsCommand(c *cli) *cobra.Command {
	var opts psOptions
	cmd := &cobra.Command{
		Use: "ps [OPTIONS]", Short: "List the tasks of this node as containers", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runPs(ctx, cl, c.out, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	addListFlags(cmd, &opts.listOptions, "Only display container IDs", containerFilters.keys())
	addNoTruncFlag(cmd, &opts.listOptions)
	f := cmd.Flags()
	f.BoolVarP(&opts.all, "all", "a", false, "Show all tasks of this node (default shows the current ones)")
	f.BoolVarP(&opts.latest, "latest", "l", false, "Show the latest created task (includes all states)")
	f.IntVarP(&opts.last, "last", "n", -1, "Show n last created tasks (includes all states)")
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
	"name":    func(t api.Task, v string) bool { return matchName(api.ContainerName(t), v) },
	"status":  func(t api.Task, v string) bool { return api.ContainerStatus(t.Status.State) == v },
	"network": matchTaskNetwork,
	"label":   noLabel[api.Task],
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
// containers: the current ones, or with -a, -l, -n or a status filter
// also those ended that the cluster still keeps, newest first for -l and
// -n.
func runPs(ctx context.Context, cl psAPI, out io.Writer, opts psOptions) error {
	if opts.latest {
		opts.last = 1
	}
	f, err := containerFilters.parse(opts.filter)
	if err == nil {
		err = checkStatus(f)
	}
	if err != nil {
		return err
	}
	// As docker's daemon: a status filter looks at every container.
	all := opts.all || opts.last > 0 || len(f["status"]) > 0
	tasks, err := nodeTasks(ctx, cl, all)
	if err != nil {
		return err
	}
	tasks = containerFilters.keep(tasks, f)
	if opts.last > 0 {
		slices.SortStableFunc(tasks, func(a, b api.Task) int { return b.CreatedAt.Compare(a.CreatedAt) })
		tasks = tasks[:min(opts.last, len(tasks))]
	}
	ports, commands := map[string]string{}, map[string]string{}
	if !opts.quiet || opts.format != "" {
		cs, err := cl.Containers(ctx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			ports[c.ID] = containerPorts(c.NetworkSettings.Ports)
			commands[c.ID] = commandLine(c.Path, c.Args)
		}
	}
	now := time.Now()
	if opts.now != nil {
		now = opts.now()
	}
	rowOf := func(t api.Task) containerRow {
		return containerRow{Task: t, ports: ports[t.ContainerID()], command: commands[t.ContainerID()], now: now, noTrunc: opts.noTrunc}
	}
	return printList(out, opts.listOptions, tasks, listView[api.Task, containerRow]{
		id:     func(t api.Task) string { return rowOf(t).ID() },
		header: []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"},
		row: func(t api.Task) []string {
			c := rowOf(t)
			return []string{c.ID(), c.Image(), c.Command(), c.RunningFor(), c.Status(), c.Ports(), c.Names()}
		},
		context: rowOf,
		fields:  containerFields,
	})
}

// nodeTasks returns the tasks of the answering node: the current ones,
// which it runs (one that just ended shows until the manager shuts it
// down), and with all those the cluster keeps as history too.
func nodeTasks(ctx context.Context, cl taskAPI, all bool) ([]api.Task, error) {
	info, err := cl.Info(ctx)
	if err != nil {
		return nil, err
	}
	tasks, err := cl.Tasks(ctx, "", info.NodeID)
	if err != nil {
		return nil, err
	}
	if all {
		return tasks, nil
	}
	return slices.DeleteFunc(tasks, func(t api.Task) bool { return !t.Current() }), nil
}

// containerPorts is the PORTS column: 0.0.0.0:8080->80/tcp, sorted.
func containerPorts(ports map[string][]api.PortBinding) string {
	var out []string
	for target, bs := range ports {
		for _, b := range bs {
			out = append(out, b.HostIP+":"+b.HostPort+"->"+target)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// humanDuration is docker's (go-units HumanDuration): how ps says how
// long ago, or for how long.
func humanDuration(d time.Duration) string {
	seconds := int(d.Seconds())
	minutes := int(d.Minutes())
	hours := int(d.Round(time.Hour).Hours())
	switch {
	case seconds < 1:
		return "Less than a second"
	case seconds == 1:
		return "1 second"
	case seconds < 60:
		return fmt.Sprintf("%d seconds", seconds)
	case minutes == 1:
		return "About a minute"
	case minutes < 60:
		return fmt.Sprintf("%d minutes", minutes)
	case hours == 1:
		return "About an hour"
	case hours < 48:
		return fmt.Sprintf("%d hours", hours)
	case hours < 24*7*2:
		return fmt.Sprintf("%d days", hours/24)
	case hours < 24*30*2:
		return fmt.Sprintf("%d weeks", hours/24/7)
	case hours < 24*365*2:
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// commandLine is a container's command as docker's daemon lists it: an
// argument holding a blank is single-quoted ("nginx -g 'daemon off;'").
func commandLine(path string, args []string) string {
	line := []string{path}
	for _, a := range args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		line = append(line, a)
	}
	return strings.TrimSpace(strings.Join(line, " "))
}
