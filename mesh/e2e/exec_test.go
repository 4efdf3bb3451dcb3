package e2e

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestExecLikeDocker runs exec as docker users type it: with the
// container ID ps -q prints or the name ps prints, no "--", flags after
// CONTAINER going to the command; and the older task-name form with "--".
func TestExecLikeDocker(t *testing.T) {
	l := newLab(t, 1)
	l.must(t, "--node", "node1", "service", "create", "--name", "shell", "alpine")
	id := strings.TrimSpace(l.must(t, "--node", "node1", "ps", "-q"))
	if len(id) != 12 {
		t.Fatalf("ps -q printed %q, want one 12-hex container ID", id)
	}

	t.Run("container ID", func(t *testing.T) {
		// The task's hostname is its container ID, as docker's is.
		if got := strings.TrimSpace(l.must(t, "--node", "node1", "exec", id, "hostname")); got != id {
			t.Errorf("got hostname %q, want %q", got, id)
		}
	})
	t.Run("container name, flags to the command", func(t *testing.T) {
		rows := strings.Split(strings.TrimSpace(l.must(t, "--node", "node1", "ps")), "\n")
		f := strings.Fields(rows[len(rows)-1])
		name := f[len(f)-1] // NAMES, the last column
		if !strings.HasPrefix(name, "shell.1.") {
			t.Fatalf("ps printed name %q, want shell.1.<task ID>", name)
		}
		if got := strings.TrimSpace(l.must(t, "--node", "node1", "exec", name, "sh", "-c", "echo $0", "x")); got != "x" {
			t.Errorf("got %q, want x", got)
		}
	})
	t.Run("task name with --", func(t *testing.T) {
		if got := strings.TrimSpace(l.must(t, "--node", "node1", "exec", "shell.1", "--", "hostname")); got != id {
			t.Errorf("got hostname %q, want %q", got, id)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		_, err := l.on("node1", "exec", id, "sh", "-c", "exit 3")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("got %v, want exit status 3", err)
		}
	})
	t.Run("-t without a terminal", func(t *testing.T) {
		out := l.must(t, "--node", "node1", "exec", "-t", id, "sh", "-c", "test -t 0 && test -t 1 && echo tty")
		if got := strings.TrimSpace(out); got != "tty" {
			t.Errorf("got %q, want tty", got)
		}
	})
	t.Run("no such container", func(t *testing.T) {
		out, err := l.on("node1", "exec", "nosuch", "hostname")
		if err == nil || strings.TrimSpace(out) != "meshctl: No such container: nosuch" {
			t.Errorf("got %q (%v), want meshctl: No such container: nosuch", out, err)
		}
	})
}
