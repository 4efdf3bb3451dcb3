package main

import (
	"cmp"
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type servicePsOptions struct {
	service string
	list    listOptions
	// now is the clock CURRENT STATE ages are measured with; nil is
	// time.Now.
	now func() time.Time
}

func newServicePsCommand(c *cli) *cobra.Command {
	var opts servicePsOptions
	cmd := &cobra.Command{
		Use: "ps SERVICE", Short: "List a service's tasks", Args: cobra.ExactArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.service = args[0]
			return runServicePs(ctx, cl, c.out, opts)
		}),
	}
	addListFlags(cmd, &opts.list, "only IDs", taskFilters.keys())
	addNoTruncFlag(cmd, &opts.list)
	return cmd
}

// taskStates are swarmkit's task states, the values docker's
// desired-state filter takes; meshd's tasks are desired running or
// shutdown.
var taskStates = []string{"new", "pending", "assigned", "accepted", "preparing", "ready", "starting",
	"running", "complete", "shutdown", "failed", "rejected", "remove", "orphaned"}

// taskFilters are docker service ps's, matched as swarmkit does. A name is
// matched by prefix against swarmkit's full task name, www.1.<task ID>, so
// that name=www.1 is the slot's current task and its history (and, as in
// docker, www.10's once there are ten slots). A node is its hostname or an
// ID prefix.
var taskFilters = filterSpec[api.Task]{
	"name": func(t api.Task, v string) bool { return matchPrefix(api.ContainerName(t), v) },
	"id":   func(t api.Task, v string) bool { return matchPrefix(t.ID, v) },
	"node": func(t api.Task, v string) bool { return t.NodeName == v || matchPrefix(t.NodeID, v) },
	"desired-state": func(t api.Task, v string) bool {
		return strings.EqualFold(t.DesiredState, v)
	},
}

// runServicePs prints a service's tasks as docker service ps does: per
// slot, its current task, then its history, newest first, named
// " \_ www.1".
func runServicePs(ctx context.Context, cl serviceAPI, out io.Writer, opts servicePsOptions) error {
	tasks, err := listFiltered(ctx, func(ctx context.Context) ([]api.Task, error) { return cl.Tasks(ctx, opts.service, "") },
		taskFilters, opts.list.filter, func(f filters) error { return f.oneOf("desired-state", taskStates...) })
	if err != nil {
		return err
	}
	slices.SortStableFunc(tasks, bySlotNewestFirst)
	now := time.Now()
	if opts.now != nil {
		now = opts.now()
	}
	// As in docker, a slot's history is named " \_ www.1" in a table, and
	// www.1 in a --format that is not one.
	indent := ` \_ `
	if opts.list.format != "" && !isTableFormat(opts.list.format) {
		indent = ""
	}
	rows := make(map[string]taskRow, len(tasks))
	prev := ""
	for _, t := range tasks {
		name := t.Name()
		if name == prev {
			name = indent + name
		}
		prev = t.Name()
		rows[t.ID] = taskRow{Task: t, name: name, now: now, noTrunc: opts.list.noTrunc}
	}
	return printList(out, opts.list, tasks, listView[api.Task, taskRow]{
		id:     func(t api.Task) string { return rows[t.ID].ID() },
		header: []string{"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"},
		row: func(t api.Task) []string {
			r := rows[t.ID]
			return []string{r.ID(), r.Name(), r.Image(), r.Node(), r.DesiredState(), r.CurrentState(), r.Error(), r.Ports()}
		},
		context: func(t api.Task) taskRow { return rows[t.ID] },
		fields:  taskFields,
	})
}

// bySlotNewestFirst orders tasks by service and slot, a slot's current
// task first, then its history, newest first (as meshd lists them).
func bySlotNewestFirst(a, b api.Task) int {
	if c := cmp.Or(strings.Compare(a.ServiceName, b.ServiceName), cmp.Compare(a.Slot, b.Slot)); c != 0 {
		return c
	}
	if a.Current() != b.Current() {
		if a.Current() {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(b.Restarts, a.Restarts), b.CreatedAt.Compare(a.CreatedAt))
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// currentState is "Running 42 seconds ago".
func currentState(s api.TaskStatus, now time.Time) string {
	if s.Timestamp.IsZero() {
		return title(s.State)
	}
	return title(s.State) + " " + ago(now.Sub(s.Timestamp))
}

func ago(d time.Duration) string {
	switch {
	case d < 2*time.Second:
		return "less than a second ago"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " seconds ago"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " minutes ago"
	}
	return strconv.Itoa(int(d.Hours())) + " hours ago"
}

// taskError is the ERROR column: the first line, at most 60 characters
// unless noTrunc, quoted as docker quotes it; empty when there is none.
func taskError(s string, noTrunc bool) string {
	if s == "" {
		return ""
	}
	if noTrunc {
		return strconv.Quote(s)
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return strconv.Quote(s)
}
