package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// startLogged starts argv with stdout and stderr appended to log, in a
// session of its own as the lab's processes are, and kills it at the end.
func startLogged(t *testing.T, log string, argv ...string) *exec.Cmd {
	t.Helper()
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// A task as meshd now runs it: in a PID namespace of its own, logging to
// a file in its node's run dir, with a child that logs nowhere and is in
// no namespace Down knows by name. Down finds and stops all of it, and
// nothing that merely runs beside the lab.
func TestDownStopsEveryProcessOfATask(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux, installed by scripts/deps.sh) is needed")
	}
	root, prefix := t.TempDir(), testPrefix()
	dir, err := labDir(root, prefix)
	if err != nil {
		t.Fatal(err)
	}
	taskDir := filepath.Join(dir, "node1", "run", "tasks", "t1")
	if err := os.MkdirAll(taskDir, 0o700); err != nil {
		t.Fatal(err)
	}
	startLogged(t, filepath.Join(taskDir, "task.log"),
		"unshare", "--pid", "--fork", "sh", "-c", "sleep 1000 >/dev/null 2>&1 & exec sleep 1001")
	bystander := startLogged(t, filepath.Join(t.TempDir(), "other.log"), "sleep", "1002")

	var found []proc
	testutil.Eventually(t, 5*time.Second, "the task's processes found", func() error {
		found, err = labProcs(dir, nil, nil)
		if err != nil {
			return err
		}
		var argvs []string
		for _, p := range found {
			argvs = append(argvs, strings.Join(p.argv, " "))
		}
		got := strings.Join(argvs, "\n")
		if slices.Contains(argvs, "sleep 1002") {
			t.Fatalf("found a process that is not the lab's:\n%s", got)
		}
		for _, want := range []string{"sleep 1000", "sleep 1001"} {
			if !slices.Contains(argvs, want) {
				return fmt.Errorf("no %q among:\n%s", want, got)
			}
		}
		return nil
	})

	// SIGTERM is ignored by the namespace's init (a sleep): only the
	// SIGKILL after the grace stops it. Keep the grace short.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	removed, err := Down(ctx, root, prefix)
	if !removed || err != nil {
		t.Fatalf("Down = %v, %v, want true, nil", removed, err)
	}
	for _, p := range found {
		if alive(p.pid, p.start) {
			t.Errorf("pid %d (%s) alive after Down", p.pid, strings.Join(p.argv, " "))
		}
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("Down stopped a process that is not the lab's: %v", err)
	}
	if left, err := Leftovers(prefix, dir); len(left) > 0 || err != nil {
		t.Errorf("Leftovers = %q, %v, want none", left, err)
	}
}

func TestStdioUnder(t *testing.T) {
	dir := t.TempDir()
	in := startLogged(t, filepath.Join(dir, "task.log"), "sleep", "1000")
	out := startLogged(t, filepath.Join(t.TempDir(), "task.log"), "sleep", "1000")
	if !stdioUnder(in.Process.Pid, dir) {
		t.Errorf("a process logging to %s not found as the lab's", dir)
	}
	if stdioUnder(out.Process.Pid, dir) {
		t.Error("a process logging elsewhere found as the lab's")
	}
	// A sibling directory sharing dir's name as a prefix is not in dir.
	if stdioUnder(in.Process.Pid, strings.TrimSuffix(dir, "/")+"x") || stdioUnder(in.Process.Pid, dir[:len(dir)-1]) {
		t.Error("a process logging in dir found under a prefix of dir's name")
	}
}
