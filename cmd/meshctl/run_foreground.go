package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// A foreground run (no -d) has meshd make the container with its process
// only holding its namespaces (Idle), runs the command in them from here
// as meshctl exec does, attached to meshctl's terminal as -i and -t say,
// then stops the container with the command's status, removes it with
// --rm, and exits with that status. meshd never has to carry a terminal:
// the command is meshctl's child, as an exec'd one is.

// Timings of a foreground run.
const (
	// runStartTimeout bounds the wait for a new container's process,
	// which meshd usually reports running by the time it answers.
	runStartTimeout = 30 * time.Second
	// runPollInterval is how often that wait asks again.
	runPollInterval = 100 * time.Millisecond
	// runCleanupTimeout bounds the stop and the removal at the end, which
	// run does even after ^C has cancelled its context.
	runCleanupTimeout = 30 * time.Second
)

// runForeground runs the container idle and executes the command in it
// (see foregroundCommand), passing its exit status through.
func runForeground(ctx context.Context, cl containerAPI, m execMachine, opts runOptions) error {
	argv, _ := foregroundCommand(opts)
	info, err := cl.Info(ctx)
	if err != nil {
		return err
	}
	req := opts.req
	req.Idle = true
	t, err := cl.RunContainer(ctx, req)
	if err != nil {
		return err
	}
	ref := t.ContainerID()
	if t.Standalone != nil && len(t.Standalone.Command) > 0 {
		// meshd's word for how the image runs it: alpine's ping is
		// BusyBox's where the host has busybox.
		argv = t.Standalone.Command
	}
	if t, err = waitRunning(ctx, cl, info, t); err == nil {
		err = execIn(m, info, t, execOptions{task: ref, argv: argv, interactive: opts.interactive, tty: opts.tty,
			env: opts.env, workdir: opts.workdir})
	}
	var code exitCode
	stop := api.ContainerStop{}
	switch {
	case errors.As(err, &code):
		err = nil
		stop.ExitCode = new(int(code))
	case err == nil:
		stop.ExitCode = new(0)
	}
	// The command has ended, or never ran: in both cases the container
	// goes, whatever ^C did to ctx.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runCleanupTimeout)
	defer cancel()
	if err := errors.Join(err, endContainer(cctx, cl, ref, stop, opts.rm)); err != nil {
		return err
	}
	if code != 0 {
		return code
	}
	return nil
}

// runFollow runs a server image's own program, as -d would, and prints
// its output until it ends or ^C; then it stops the container, removes it
// with --rm and exits with its status, as docker run does when ^C reaches
// the program.
func runFollow(ctx context.Context, cl containerAPI, out io.Writer, opts runOptions) error {
	t, err := cl.RunContainer(ctx, opts.req)
	if err != nil {
		return err
	}
	ref := t.ContainerID()
	logs, err := cl.TaskLogs(ctx, ref, "all", true)
	if err == nil {
		_, err = io.Copy(out, logs)
		logs.Close()
		if ctx.Err() != nil {
			err = nil // ^C: the usual end
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runCleanupTimeout)
	defer cancel()
	var code exitCode
	err = errors.Join(err, cl.StopContainer(cctx, ref, api.ContainerStop{}))
	if c, ierr := cl.Container(cctx, ref); ierr == nil && c.State.ExitCode != nil {
		code = exitCode(*c.State.ExitCode)
	}
	if opts.rm {
		err = errors.Join(err, removeGone(cctx, cl, ref))
	}
	if err == nil && code != 0 {
		return code
	}
	return err
}

// waitRunning returns the container t once its node reports its process
// running: meshd's answer to RunContainer may come before.
func waitRunning(ctx context.Context, cl taskAPI, info api.Info, t api.Task) (api.Task, error) {
	t, err := waitStarted(ctx, cl, info, t)
	switch {
	case err != nil:
		return t, err
	case api.Terminal(t.Status.State):
		return t, fmt.Errorf("container %s ended before its command ran (%s)", api.ContainerName(t), t.Status.State)
	case t.Status.State != api.TaskRunning || t.Status.PID == 0:
		return t, fmt.Errorf("container %s is not running (%s): %w", api.ContainerName(t), t.Status.State, context.DeadlineExceeded)
	}
	return t, nil
}

// pastStarting says whether t's process runs or has ended.
func pastStarting(t api.Task) bool {
	return (t.Status.State == api.TaskRunning && t.Status.PID != 0) || api.Terminal(t.Status.State)
}

// waitStarted returns the container t once its process is past
// starting: running, or ended already. A container on a swarm overlay
// is run by its node's agent after meshd has answered. The wait ends,
// without an error, after runStartTimeout.
func waitStarted(ctx context.Context, cl taskAPI, info api.Info, t api.Task) (api.Task, error) {
	ctx, cancel := context.WithTimeout(ctx, runStartTimeout)
	defer cancel()
	tick := time.NewTicker(runPollInterval)
	defer tick.Stop()
	for {
		if pastStarting(t) {
			return t, nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return t, nil
			}
			return t, context.Cause(ctx)
		case <-tick.C:
		}
		next, err := resolveContainer(ctx, cl, info, t.ContainerID())
		if err != nil {
			return t, err
		}
		t = next
	}
}

// endContainer stops the container with the status its command ended
// with (none when it never ran), then removes it if rm.
func endContainer(ctx context.Context, cl containerAPI, ref string, stop api.ContainerStop, rm bool) error {
	if err := cl.StopContainer(ctx, ref, stop); err != nil {
		return err
	}
	if rm {
		return removeGone(ctx, cl, ref)
	}
	return nil
}

// removeGone removes a container run --rm made, which meshd may already
// have removed (AutoRemove), hence no error for one that is gone.
func removeGone(ctx context.Context, cl containerAPI, ref string) error {
	err := cl.RemoveContainer(ctx, ref, true)
	if api.StatusCode(err) == http.StatusNotFound {
		return nil
	}
	return err
}
