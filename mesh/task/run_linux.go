package task

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/meshd/meshd/internal/mainthread" // locked goroutines die off the main thread

	"github.com/vishvananda/netns"
)

// Run runs the task's process once, as a Docker container runs, and
// calls report on every change: starting, running, then complete (exit
// status 0), failed (a non-zero status, or a failure to start) or, when
// ctx ends first, shutdown. It returns when the process has ended. It
// never restarts the process: whether a new task replaces it is the
// manager's restart policy. report must not block for long.
func Run(ctx context.Context, spec Spec, report func(State)) {
	report(State{State: "starting"})
	err := runOnce(ctx, spec, func(pid int) { report(State{State: "running", PID: pid}) })
	if ctx.Err() != nil {
		report(State{State: "shutdown", ExitCode: statusOf(err)})
		return
	}
	report(exitState(err))
}

// exitState turns how the process ended into the state reported, with
// Docker's text for a non-zero status.
func exitState(err error) State {
	code := statusOf(err)
	switch {
	case code == nil:
		return State{State: "failed", Err: err.Error()}
	case *code == 0:
		return State{State: "complete", ExitCode: code}
	}
	return State{State: "failed", Err: fmt.Sprintf("task: non-zero exit (%d)", *code), ExitCode: code}
}

// statusOf is the status of a process that ran (err an *exitError), or
// nil.
func statusOf(err error) *int {
	var ee *exitError
	if !errors.As(err, &ee) {
		return nil
	}
	return new(ee.code)
}

// exitError is a process that ran and exited with code: its status, or
// 128+N for a death by signal N as a shell reports it.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("task exited: exit status %d", e.code) }

// runOnce starts the task and waits for it; it stops the task when ctx
// ends. The whole life of the child happens on one locked OS thread that
// has entered the task's network namespace: the child is cloned from it
// (so it starts in that namespace) and is killed if it ends (Pdeathsig).
// The child is the init of the task's PID namespace, so killing it kills
// all of the task.
func runOnce(ctx context.Context, spec Spec, started func(pid int)) error {
	errc := make(chan error, 1)
	initc := make(chan taskInit, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		errc <- startAndWait(spec, initc)
	}()
	select {
	case in := <-initc:
		started(in.pid)
		return waitOrStop(ctx, in, errc)
	case err := <-errc:
		return err
	}
}

// taskInit is a task's init once it has said it is set up: its PID, the
// signals its Go runtime catches (as it said), and heard, which delivers
// once the task takes signals (see initTask): true when the init itself
// handles them, false when a program it exec'd does (or it exited).
type taskInit struct {
	pid      int
	goCaught uint64
	heard    <-chan bool
}

func waitOrStop(ctx context.Context, in taskInit, errc <-chan error) error {
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	quit := make(chan struct{})
	defer close(quit)
	listening := make(chan struct{})
	go func() {
		if awaitSIGTERM(in, quit) {
			close(listening)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-listening:
		_ = syscall.Kill(in.pid, syscall.SIGTERM)
		select {
		case err := <-errc:
			return err
		case <-grace.C:
		}
	case <-grace.C:
	}
	_ = syscall.Kill(in.pid, syscall.SIGKILL)
	return <-errc
}

// awaitSIGTERM returns true once the init of in may be sent a SIGTERM
// without losing it, false if quit comes first. The kernel drops a
// signal that PID 1 of a namespace neither catches nor blocks, and the
// init's Go runtime, catching one nobody asked for, exits 2. So it waits
// for the init to say the task takes signals (heard). A program the init
// exec'd must then have lost the Go runtime's handlers (the kernel
// closes the pipe a moment before it resets them) and blocked or caught
// SIGTERM itself: tini blocks the signals it passes on within
// microseconds, nginx and redis-server set handlers. A program that
// never does gets the SIGKILL after the grace, as it would anyway.
func awaitSIGTERM(in taskInit, quit <-chan struct{}) bool {
	var inProcess bool
	select {
	case inProcess = <-in.heard:
	case <-quit:
		return false
	}
	if inProcess {
		return true
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		blocked, caught, err := signalMasks(in.pid)
		if err != nil { // it has gone: a signal harms nothing
			return true
		}
		if caught != in.goCaught && ((blocked|caught)&sigBit(syscall.SIGTERM) != 0 || hasChildren(in.pid)) {
			return true
		}
		select {
		case <-tick.C:
		case <-quit:
			return false
		}
	}
}

// hasChildren says whether process pid has forked. tini forks the
// task's command only once it has blocked the signals it passes on, and
// while it waits for them (sigtimedwait) the kernel lifts the block, so
// its status shows none blocked.
func hasChildren(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	return err == nil && len(bytes.TrimSpace(b)) > 0
}

func sigBit(sig syscall.Signal) uint64 { return 1 << (uint(sig) - 1) }

// signalMasks are the signals process pid blocks and catches.
func signalMasks(pid int) (blocked, caught uint64, err error) {
	return readSignalMasks(fmt.Sprintf("/proc/%d/status", pid))
}

// readSignalMasks reads the masks of a process's status file.
func readSignalMasks(path string) (blocked, caught uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	return parseSignalMasks(string(b))
}

// parseSignalMasks reads the SigBlk and SigCgt masks of a /proc/PID/status.
func parseSignalMasks(status string) (blocked, caught uint64, err error) {
	found := 0
	for line := range strings.Lines(status) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "SigBlk" && key != "SigCgt") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s mask %q: %w", key, strings.TrimSpace(val), err)
		}
		if key == "SigBlk" {
			blocked = mask
		} else {
			caught = mask
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("process status without SigBlk and SigCgt")
	}
	return blocked, caught, nil
}

func startAndWait(spec Spec, initc chan<- taskInit) error {
	h, err := netns.GetFromPath(spec.NetNS)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", spec.NetNS, err)
	}
	err = netns.Set(h)
	h.Close()
	if err != nil {
		return fmt.Errorf("enter netns %s: %w", spec.NetNS, err)
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	logf, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log %s: %w", spec.LogPath, err)
	}
	defer logf.Close()
	args := []string{"meshd", InitArg, "--hostname", spec.Hostname, "--resolv-conf", spec.ResolvConf,
		"--hosts", spec.HostsFile, "--hostname-file", spec.HostnameFile, "--dir", filepath.Dir(spec.LogPath)}
	if spec.Image != "" {
		args = append(args, "--image", spec.Image)
	}
	if spec.WorkDir != "" {
		args = append(args, "--workdir", spec.WorkDir)
	}
	if tini := tiniPath(); tini != "" && !spec.OwnInit {
		args = append(args, "--tini", tini)
	}
	// The init says on this pipe when its mounts and hostname are set:
	// the task is reported running only then, so that an exec entering
	// its namespaces at once finds its resolv.conf, not the host's.
	ready, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start task %s: %w", spec.ID, err)
	}
	defer ready.Close()
	args = append(args, "--ready-fd", "3")
	args = append(append(args, "--"), spec.Args...)
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: args, Stdout: logf, Stderr: logf,
		Env: taskEnv(spec.Env),
		SysProcAttr: &syscall.SysProcAttr{
			// A PID namespace of its own, with the init as its PID 1:
			// when the init dies, however it dies, the kernel kills every
			// process the task forked.
			Cloneflags: syscall.CLONE_NEWUTS | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
			Pdeathsig:  syscall.SIGKILL,
			Setsid:     true,
		}}
	cmd.ExtraFiles = []*os.File{readyW} // fd 3
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start task %s: %w", spec.ID, err)
	}
	// A byte when ready, with the signals the init's Go runtime catches
	// (read here, the init might have exec'd already); EOF when the init
	// failed before (it exits, and Wait reports why).
	in := taskInit{pid: cmd.Process.Pid}
	msg := make([]byte, 9)
	if n, _ := io.ReadFull(ready, msg); n == len(msg) {
		in.goCaught = binary.LittleEndian.Uint64(msg[1:])
	}
	// Then EOF once the task takes signals, after a byte if the init
	// itself handles them; or once the init has exited.
	heard := make(chan bool, 1)
	go func() {
		n, _ := ready.Read(make([]byte, 1))
		heard <- n == 1
	}()
	in.heard = heard
	initc <- in
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return &exitError{code: code}
	}
	if err != nil {
		return fmt.Errorf("wait task %s: %w", spec.ID, err)
	}
	return &exitError{code: 0}
}

func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("command %q not found on this node", name)
	}
	return p, nil
}

// taskEnv is a task's environment: a PATH, then the service's variables
// (one of them may set PATH), which the init passes on to the image or
// command.
func taskEnv(env []string) []string {
	return append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
}
