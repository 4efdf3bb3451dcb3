package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type execOptions struct {
	task string   // ID, ID prefix or name (www.1)
	argv []string // the command to run in it
}

func newExecCommand(c *cli) *cobra.Command {
	var opts execOptions
	return &cobra.Command{
		Use:   "exec TASK -- COMMAND [ARG...]",
		Short: "Run a command inside a task (its network, hostname and mounts)",
		Args:  cobra.MinimumNArgs(2),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.task, opts.argv = args[0], args[1:]
			return runExec(ctx, cl, c, opts)
		}),
	}
}

// runExec runs the command in the task's network, UTS, mount and PID
// namespaces with nsenter, passing its exit status through.
func runExec(ctx context.Context, cl taskAPI, m machine, opts execOptions) error {
	t, err := cl.Task(ctx, opts.task)
	if err != nil {
		return err
	}
	if err := checkLocal(ctx, cl, m, t); err != nil {
		return err
	}
	if t.Status.State != api.TaskRunning || t.Status.PID == 0 {
		return fmt.Errorf("task %s is not running (%s)", t.Name(), t.Status.State)
	}
	pid := strconv.Itoa(t.Status.PID)
	return passthrough(m, append([]string{"nsenter", "-t", pid, "-n", "-u", "-m", "-p", "--"}, opts.argv...))
}

// checkLocal refuses a task on another machine: its process is not here.
// Lab nodes all live on this machine, so any of them will do.
func checkLocal(ctx context.Context, cl taskAPI, m machine, t api.Task) error {
	info, err := cl.Info(ctx)
	if err != nil {
		return err
	}
	if t.NodeID == info.NodeID || m.labNode(t.NodeName) {
		return nil
	}
	return fmt.Errorf("task %s runs on %s: run meshctl exec there", t.Name(), t.NodeName)
}

// passthrough runs argv on m with meshctl's stdio, exiting with its status.
func passthrough(m machine, argv []string) error {
	return m.run(exec.Command(argv[0], argv[1:]...), "run "+argv[0])
}
