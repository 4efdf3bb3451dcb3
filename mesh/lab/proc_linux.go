package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process the lab may signal: a PID together with its start time,
// so that a reused PID is never signalled.
type proc struct {
	pid   int
	start uint64
	argv  []string
}

// procStat returns the state letter and start time (clock ticks after boot)
// from /proc/<pid>/stat. comm may hold spaces and parentheses, so fields are
// counted from the last ')'.
func procStat(pid int) (byte, uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64) // field 22 of proc(5)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return f[0][0], start, nil
}

// alive reports whether the process pid that started at start still runs.
// A zombie is dead; if it is our child it is reaped here.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, s, err := procStat(pid)
	if err != nil || s != start {
		return false
	}
	if st == 'Z' || st == 'X' {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, syscall.WNOHANG, nil) // ECHILD when not ours: init reaps it
		return false
	}
	return true
}

func cmdline(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

// nsInode returns the inode of a namespace file: /proc/<pid>/ns/net or a
// bind mount of one. Equal inodes are the same namespace.
func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// runDirUnder reports whether argv passes a --run-dir inside dir, as every
// meshd of the lab does.
func runDirUnder(argv []string, dir string) bool {
	for i, a := range argv {
		v, ok := strings.CutPrefix(a, "--run-dir=")
		if !ok && a == "--run-dir" && i+1 < len(argv) {
			v, ok = argv[i+1], true
		}
		if ok && strings.HasPrefix(filepath.Clean(v)+"/", dir+"/") {
			return true
		}
	}
	return false
}

// startDaemon starts n.Argv in n's network namespace but in the host mount
// namespace (nsenter, unlike "ip netns exec", makes no mount namespace), in a
// session of its own so that it outlives the caller, with stdout and stderr
// appended to n.Log. It records the PID and start time in n.
func startDaemon(n *Node) error {
	// Root's alone, as meshd makes its run dir: it holds the node's
	// secrets and socket.
	if err := os.MkdirAll(n.RunDir, 0o700); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	logf, err := openDaemonLog(n.Log)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", append([]string{"--net=" + netnsPath(n.Netns), "--"}, n.Argv...)...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release() // reaped by alive() or, once we exit, by init
	_, start, err := procStat(pid)
	if err != nil {
		return fmt.Errorf("start %s: pid %d: %w", n.Name, pid, err)
	}
	n.PID, n.Start = pid, start
	return nil
}

// openDaemonLog opens a daemon's log for appending, root's alone (0600),
// a log an older lab left readable included: a daemon's log is no one
// else's to read.
func openDaemonLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("log %s: %w", path, err)
	}
	return f, nil
}

// stopProcs sends SIGTERM to ps, waits up to timeout (less if ctx ends) and
// then SIGKILLs what is left. It fails only if something survives SIGKILL.
func stopProcs(ctx context.Context, ps []proc, timeout time.Duration) error {
	signalProcs(ps, syscall.SIGTERM)
	left := waitGone(ctx, ps, timeout)
	if len(left) == 0 {
		return nil
	}
	signalProcs(left, syscall.SIGKILL)
	left = waitGone(context.Background(), left, 5*time.Second)
	var errs []error
	for _, p := range left {
		errs = append(errs, fmt.Errorf("pid %d (%s) survived SIGKILL", p.pid, strings.Join(p.argv, " ")))
	}
	return errors.Join(errs...)
}

func signalProcs(ps []proc, sig syscall.Signal) {
	for _, p := range ps {
		if alive(p.pid, p.start) {
			syscall.Kill(p.pid, sig) // ESRCH: it just exited
		}
	}
}

// waitGone polls until none of ps is alive, timeout passes or ctx ends, and
// returns those still alive.
func waitGone(ctx context.Context, ps []proc, timeout time.Duration) []proc {
	deadline := time.Now().Add(timeout)
	for {
		var left []proc
		for _, p := range ps {
			if alive(p.pid, p.start) {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return left
		}
		ps = left
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
