package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/meshd/meshd/internal/testutil"
	"golang.org/x/sys/unix"
)

// These run real commands through runTTY, the code path of exec -t, with
// no nsenter in front: they need no root.

func TestRunTTYIsATerminal(t *testing.T) {
	var out testutil.Buffer
	x := exec.Command("sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo on-a-tty; tty")
	if err := runTTY(x, ttyIO{out: &out, rawFd: -1, sizeFd: -1}); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	// One output, as a terminal has, with the terminal's line endings.
	if got := out.String(); !strings.HasPrefix(got, "on-a-tty\r\n/dev/pts/") {
		t.Errorf("got output %q, want on-a-tty and a /dev/pts name", got)
	}
}

func TestRunTTYInputAndStatus(t *testing.T) {
	var out testutil.Buffer
	x := exec.Command("sh", "-c", "read n; echo got $n >&2; exit $n")
	err := runTTY(x, ttyIO{in: strings.NewReader("5\n"), out: &out, rawFd: -1, sizeFd: -1})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("got error %v, want exit status 5", err)
	}
	// The terminal echoes the input, then the command's stderr follows.
	if got, want := out.String(), "5\r\ngot 5\r\n"; got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
}

// TestRunTTYTerminal runs with a pseudo-terminal standing for meshctl's
// own: the command gets its size and follows a resize, and meshctl's
// terminal is raw while the command runs and restored after.
func TestRunTTYTerminal(t *testing.T) {
	outer, mine, err := pty.Open()
	if err != nil {
		t.Fatalf("open a terminal for meshctl: %v", err)
	}
	defer outer.Close()
	defer mine.Close()
	if err := pty.Setsize(outer, &pty.Winsize{Rows: 30, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	fd := int(mine.Fd())
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	// stdin is a pipe here (meshctl's terminal would be read in raw
	// mode); the command prints its size, waits for a line, then for the
	// resize to reach it.
	in, send := io.Pipe()
	defer send.Close()
	var out testutil.Buffer
	x := exec.Command("sh", "-c", `stty size; read x; i=0
		while [ "$(stty size)" != "40 120" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; stty size`)
	done := make(chan error, 1)
	go func() { done <- runTTY(x, ttyIO{in: in, out: &out, rawFd: fd, sizeFd: fd}) }()

	testutil.Eventually(t, 5*time.Second, "first size", func() error {
		if !strings.Contains(out.String(), "30 100") {
			return errors.New("output " + out.String())
		}
		return nil
	})
	during, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if during.Lflag&(unix.ECHO|unix.ICANON) != 0 {
		t.Errorf("got lflag %#x while the command runs, want raw (no ECHO, no ICANON)", during.Lflag)
	}
	if err := pty.Setsize(outer, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	// What the kernel sends a foreground process whose terminal resized.
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	if _, err := send.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("command still running after 10s")
	}
	if got := out.String(); !strings.HasSuffix(got, "40 120\r\n") {
		t.Errorf("got output %q, want it to end with the new size 40 120", got)
	}
	after, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("got termios %+v after, want it restored to %+v", *after, *before)
	}
}
