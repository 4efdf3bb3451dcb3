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
		newInspectCommand(c, "inspect SERVICE [SERVICE...]", "Show services in detail", inspectService),
		newServiceScaleCommand(c), newServiceUpdateCommand(c), newServiceRollbackCommand(c), newServiceLogsCommand(c),
		newRmCommand(c, "rm SERVICE [SERVICE...]", "Remove services", (*api.Client).RemoveService))
	return cmd
}

// waitOptions say whether and how long create, scale, update and
// rollback wait for the service to converge.
type waitOptions struct {
	detach  bool          // --detach: do not wait
	timeout time.Duration // --timeout
}

func addWaitFlags(cmd *cobra.Command, opts *waitOptions, detachUsage, timeoutUsage string, timeout time.Duration) {
	cmd.Flags().BoolVarP(&opts.detach, flagDetach, "d", false, detachUsage)
	cmd.Flags().DurationVar(&opts.timeout, flagTimeout, timeout, timeoutUsage)
}

// defaultWaitTimeout is how long create and scale wait by default.
const defaultWaitTimeout = 60 * time.Second

// stableFor is how long a service must stay settled before the wait says
// it converged, so that a task that runs for a moment and exits is caught
// as the failure it is. Docker waits 5 s ("verify: Waiting 5 seconds to
// verify that tasks are stable"); a second catches a command that fails
// at once and keeps labs and scripts quick.
var stableFor = time.Second

// waitConverged waits until every slot of the service has a running
// task, then prints docker's progress summary. A task that fails meanwhile
// ends the wait at once with its error: with a restart policy it would
// only fail again. ended are the IDs of tasks that had ended before the
// wait (a scale's), whose failures are old news. A slot whose task
// completed and that the policy does not restart counts as settled.
func waitConverged(ctx context.Context, cl serviceAPI, out io.Writer, id string, timeout time.Duration, ended map[string]bool) error {
	return waitService(ctx, cl, out, id, timeout, ended, waitCreate)
}

// waitKind says what a wait follows: a create or scale, an update, or a
// rollback asked for.
type waitKind int

const (
	waitCreate waitKind = iota
	waitUpdate
	waitRollback
)

// waitUpdated is [waitConverged] for an update or rollback: it also waits
// for every task to be replaced, and ends with Docker's error when the
// update pauses. An update that its failure rolls back says so, as
// Docker's progress does: "rollback: REASON" when the rollback starts,
// and the error "service rolled back: ..." once it is done.
func waitUpdated(ctx context.Context, cl serviceAPI, out io.Writer, id string, timeout time.Duration, ended map[string]bool, kind waitKind) error {
	return waitService(ctx, cl, out, id, timeout, ended, kind)
}

func waitService(ctx context.Context, cl serviceAPI, out io.Writer, id string, timeout time.Duration, ended map[string]bool, kind waitKind) error {
	update := kind != waitCreate
	rollbackSaid := kind == waitRollback // its command printed the line
	deadline := time.Now().Add(timeout)
	var stableSince time.Time // when the service was last seen settled, after not being
	for {
		svc, err := cl.Service(ctx, id)
		if err != nil {
			return err
		}
		tasks, err := cl.Tasks(ctx, id, "")
		if err != nil {
			return err
		}
		slots := newestBySlot(tasks, svc.Replicas)
		if us := svc.UpdateStatus; update && us != nil && (us.State == api.UpdatePaused || us.State == api.UpdateRollbackPaused) {
			printProgress(out, svc, slots)
			what := "update"
			if us.State == api.UpdateRollbackPaused {
				what = "rollback"
			}
			return fmt.Errorf("service %s paused: %s", what, oneLine(us.Message)) // Docker's words
		}
		if us := svc.UpdateStatus; kind == waitUpdate && us != nil {
			if us.State == api.UpdateRollbackStarted && !rollbackSaid {
				fmt.Fprintf(out, "rollback: %s\n", oneLine(us.Message))
				rollbackSaid = true
			}
			if us.State == api.UpdateRollbackCompleted {
				printProgress(out, svc, slots)
				return fmt.Errorf("service rolled back: %s", oneLine(us.Message))
			}
		}
		// While an update rolls, a new task's failure is the update's to
		// act on: its status then says paused or rolled back.
		for _, t := range tasks {
			if t.Status.State == api.TaskFailed && !ended[t.ID] && !(update && svc.UpdateStatus.Rolling()) {
				printProgress(out, svc, slots)
				return fmt.Errorf("service %s: task %s failed: %s", svc.Name, t.Name(), oneLine(t.Status.Err))
			}
		}
		switch {
		case !settled(svc, slots) || (update && svc.UpdateStatus.Rolling()):
			stableSince = time.Time{}
		case stableSince.IsZero():
			stableSince = time.Now()
		}
		if !stableSince.IsZero() && time.Since(stableSince) >= stableFor {
			printProgress(out, svc, slots)
			fmt.Fprintln(out, "verify: Service converged")
			return nil
		}
		if time.Now().After(deadline) {
			if update && svc.UpdateStatus.Rolling() {
				return fmt.Errorf("service %s did not converge in %s: %s", svc.Name, timeout, svc.UpdateStatus.Message)
			}
			return fmt.Errorf("service %s did not converge in %s: %d out of %d tasks running, %d reachable from every node%s",
				svc.Name, timeout, svc.Running, svc.Replicas, svc.Reachable, firstTaskError(tasks))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// endedTasks are the IDs of a service's tasks that have ended (history,
// or reported complete or failed), for a wait to ignore.
func endedTasks(ctx context.Context, cl serviceAPI, ref string) (map[string]bool, error) {
	tasks, err := cl.Tasks(ctx, ref, "")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, t := range tasks {
		if !t.Current() || api.Terminal(t.Status.State) {
			out[t.ID] = true
		}
	}
	return out, nil
}

// newestBySlot is each slot's newest task (1 to replicas), its current
// one when it has one; a slot without any task is left out. A global
// service's slots are its nodes (slot 0): a node counts while it has a
// current task, or one that ended on its own (a task stopped because the
// node was drained or left is no slot of the service any more).
func newestBySlot(tasks []api.Task, replicas int) []api.Task {
	sorted := slices.Clone(tasks)
	slices.SortStableFunc(sorted, bySlotNewestFirst)
	var out []api.Task
	seen := map[string]bool{}
	for _, t := range sorted {
		if t.Slot == 0 {
			if !seen[t.NodeID] && (t.Current() || api.Terminal(t.Status.State)) {
				out = append(out, t)
			}
			seen[t.NodeID] = true
			continue
		}
		if t.Slot >= 1 && t.Slot <= replicas && (len(out) == 0 || out[len(out)-1].Slot != t.Slot) {
			out = append(out, t)
		}
	}
	return out
}

// settled says whether every slot has its task running, or completed
// without a restart to come.
func settled(svc api.Service, slots []api.Task) bool {
	if len(slots) != svc.Replicas {
		return false
	}
	cond := svc.RestartPolicy.Condition
	n := 0
	for _, t := range slots {
		running := t.Current() && t.Status.State == api.TaskRunning
		done := t.Status.State == api.TaskComplete && (cond == api.RestartNone || cond == api.RestartOnFailure)
		if !running && !done {
			return false
		}
		if running {
			n++
		}
	}
	// Converged means reachable: every node that sends to the tasks has
	// programmed them (svc.Reachable, from the nodes' reports).
	return svc.Reachable >= n
}

// printProgress is docker's summary: the tasks running, then each slot's
// state, or its error.
func printProgress(out io.Writer, svc api.Service, slots []api.Task) {
	running := 0
	for _, t := range slots {
		if t.Current() && t.Status.State == api.TaskRunning {
			running++
		}
	}
	fmt.Fprintf(out, "overall progress: %d out of %d tasks\n", running, svc.Replicas)
	for _, t := range slots {
		id := fmt.Sprintf("%d/%d", t.Slot, svc.Replicas)
		if t.Slot == 0 { // docker's global progress: a line per node
			id = shortID(t.NodeID)
		}
		fmt.Fprintln(out, progressLine(id, t.Status.State, t.Status.Err))
	}
}

// progressSteps number the states a task goes through on its way to
// running, as docker's progress bar counts them.
var progressSteps = map[string]int{api.TaskNew: 1, api.TaskAssigned: 4, api.TaskStarting: 8, api.TaskRunning: 9}

// progressLine is one slot's line as docker prints it: the state padded
// to the longest one docker knows ("preparing"), then a bar of 50 for
// how far along it is; an ended task shows its error instead.
func progressLine(id, state, errText string) string {
	step, ok := progressSteps[state]
	if !ok || errText != "" {
		return strings.TrimRight(fmt.Sprintf("%s: %s %s", id, state, oneLine(errText)), " ")
	}
	filled := step * 100 / progressSteps[api.TaskRunning] / 2 // of 50, as docker's
	return fmt.Sprintf("%s: %-9s [%s>%s]", id, state, strings.Repeat("=", filled), strings.Repeat(" ", 50-filled))
}

// oneLine is an error's first line, at most 200 bytes: a node's text in
// a one-line message.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return api.Cut(s, 200)
}

// firstTaskError is the error of the first current task that has one.
func firstTaskError(tasks []api.Task) string {
	for _, t := range tasks {
		if t.Current() && t.Status.Err != "" {
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

// inspectService fetches a service for inspect, in docker's shape.
func inspectService(cl *api.Client, ctx context.Context, ref string) (api.ServiceResource, error) {
	return asResource(cl.Service)(ctx, ref)
}

// asResource turns a service getter into inspect's: docker's shape.
func asResource(get func(context.Context, string) (api.Service, error)) func(context.Context, string) (api.ServiceResource, error) {
	return func(ctx context.Context, ref string) (api.ServiceResource, error) {
		svc, err := get(ctx, ref)
		if err != nil {
			return api.ServiceResource{}, err
		}
		return svc.Resource(), nil
	}
}
