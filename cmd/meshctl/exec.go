package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type execOptions struct {
	task        string   // CONTAINER: see [api.MatchContainer]
	argv        []string // the command to run in it
	interactive bool     // -i: give it meshctl's stdin
	tty         bool     // -t: run it on a pseudo-terminal
	env         []string // -e KEY=VALUE, or KEY to pass meshctl's own value
	workdir     string   // -w: its working directory, in the task's mounts
}

func newExecCommand(c *cli) *cobra.Command {
	return execCommand(c, func(ctx context.Context, cl *api.Client, opts execOptions) error {
		return runExec(ctx, cl, c, opts)
	})
}

// execCommand is exec's command line; run gets what it parsed, so a test
// can see where each word went without a meshd.
func execCommand(c *cli, run func(context.Context, *api.Client, execOptions) error) *cobra.Command {
	var opts execOptions
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running task (its network, hostname, mounts and processes)",
		Args:  cobra.MinimumNArgs(2),
		PreRunE: func(_ *cobra.Command, args []string) error {
			opts.task, opts.argv = args[0], args[1:]
			// "exec www.1 -- cmd", the only form before flags stopped
			// at CONTAINER, still works.
			if opts.argv[0] == "--" {
				opts.argv = opts.argv[1:]
			}
			if len(opts.argv) == 0 {
				return errors.New(`"meshctl exec" requires at least 2 arguments: CONTAINER COMMAND`)
			}
			if err := checkEnv(opts.env); err != nil {
				return err
			}
			return checkTTY(c, opts.interactive, opts.tty)
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return run(ctx, cl, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true // [OPTIONS] says it
	f := cmd.Flags()
	// Everything after CONTAINER is the command's, as docker exec has it:
	// "exec www.1 sh -c 'echo hi'" gives -c to sh.
	f.SetInterspersed(false)
	f.BoolVarP(&opts.interactive, "interactive", "i", false, "Keep STDIN open")
	f.BoolVarP(&opts.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.StringArrayVarP(&opts.env, "env", "e", nil, "Set environment variables (KEY=VALUE, or KEY for meshctl's own)")
	f.StringVarP(&opts.workdir, "workdir", "w", "", "Working directory inside the task")
	return cmd
}

// execMachine runs a command attached to meshctl's stdio as -i and -t
// ask. *cli is the real one.
type execMachine interface {
	machine
	// attach runs x as run does, except that x gets meshctl's stdin only
	// when s.stdin, and a pseudo-terminal for its stdio when s.tty.
	attach(x *exec.Cmd, s stdio, what string) error
}

// stdio is how a command is attached: docker exec's -i and -t.
type stdio struct{ stdin, tty bool }

var _ execMachine = (*cli)(nil)

// runExec runs the command in the task's network, UTS, mount and PID
// namespaces with nsenter, passing its exit status through.
func runExec(ctx context.Context, cl taskAPI, m execMachine, opts execOptions) error {
	info, err := cl.Info(ctx)
	if err != nil {
		return err
	}
	t, err := resolveContainer(ctx, cl, info, opts.task)
	if err != nil {
		return err
	}
	return execIn(m, info, t, opts)
}

// execIn runs opts.argv in the namespaces of task t, which the meshd
// that info describes listed; opts.task is not looked at. run executes
// a foreground container's command through it too.
func execIn(m execMachine, info api.Info, t api.Task, opts execOptions) error {
	if t.NodeID != info.NodeID && !m.labNode(t.NodeName) {
		// Lab nodes all live on this machine, so any of them will do;
		// on another machine the process is not here.
		return fmt.Errorf("task %s runs on %s: run meshctl exec there", t.Name(), t.NodeName)
	}
	if t.Status.State != api.TaskRunning || t.Status.PID == 0 {
		return fmt.Errorf("task %s is not running (%s)", t.Name(), t.Status.State)
	}
	argv := []string{"-t", strconv.Itoa(t.Status.PID), "-n", "-u", "-m", "-p"}
	if opts.workdir != "" {
		// --wd opens the directory before entering the namespaces: the
		// same one, since a task's mounts are a copy of this machine's
		// (only its resolv.conf and /proc differ). --wdns would be exact, but
		// util-linux before 2.38 lacks it.
		argv = append(argv, "--wd="+opts.workdir)
	}
	x := exec.Command("nsenter", append(append(argv, "--"), opts.argv...)...)
	if len(opts.env) > 0 {
		x.Env = append(os.Environ(), execEnv(opts.env, os.LookupEnv)...)
	}
	return m.attach(x, stdio{stdin: opts.interactive, tty: opts.tty}, "run nsenter")
}

// checkEnv refuses a -e value with no name, in docker's words.
func checkEnv(env []string) error {
	for _, kv := range env {
		if strings.HasPrefix(kv, "=") || kv == "" {
			return fmt.Errorf("invalid environment variable: %s", kv)
		}
	}
	return nil
}

// checkTTY is docker's check on -it: raw input from a pipe makes no
// sense.
func checkTTY(c *cli, interactive, tty bool) error {
	if interactive && tty && terminalFd(c.in) < 0 {
		return errors.New("the input device is not a TTY")
	}
	return nil
}

// execEnv turns -e values into environment entries: KEY=VALUE as given,
// a bare KEY takes meshctl's own value and is dropped when unset, as
// docker does.
func execEnv(flags []string, lookup func(string) (string, bool)) []string {
	var env []string
	for _, kv := range flags {
		if strings.Contains(kv, "=") {
			env = append(env, kv)
		} else if v, ok := lookup(kv); ok {
			env = append(env, kv+"="+v)
		}
	}
	return env
}

// resolveContainer finds the task ref names among those the answering
// meshd lists: the cluster's on a manager, its own on a node that cannot
// list the cluster's (a worker, or a manager without a leader), as the
// API's own task lookup does. Resolving here rather than in meshd lets
// one list serve the container IDs and names ps prints as well as task
// references.
func resolveContainer(ctx context.Context, cl taskAPI, info api.Info, ref string) (api.Task, error) {
	tasks, err := cl.Tasks(ctx, "", "")
	if api.StatusCode(err) == http.StatusServiceUnavailable {
		tasks, err = cl.Tasks(ctx, "", info.NodeID)
	}
	if err != nil {
		return api.Task{}, err
	}
	return api.MatchContainer(tasks, ref)
}

// passthrough runs argv on m with meshctl's stdio, exiting with its status.
func passthrough(m machine, argv []string) error {
	return m.run(exec.Command(argv[0], argv[1:]...), "run "+argv[0])
}
