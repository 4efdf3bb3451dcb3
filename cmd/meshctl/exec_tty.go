package main

import (
	"errors"
	"fmt"
	"io"
	"os/exec"

	"golang.org/x/term"
)

func (c *cli) attach(x *exec.Cmd, s stdio, what string) error {
	if !s.tty && s.stdin {
		return c.run(x, what)
	}
	var err error
	if s.tty {
		// docker sizes the pseudo-terminal after its output terminal.
		t := ttyIO{out: c.out, rawFd: -1, sizeFd: terminalFd(c.out)}
		if s.stdin {
			t.in, t.rawFd = c.in, terminalFd(c.in)
		}
		if t.sizeFd < 0 {
			t.sizeFd = terminalFd(c.in)
		}
		err = runTTY(x, t)
	} else {
		// Without -i the command reads /dev/null, as docker exec's does:
		// it must not eat the input meant for what follows meshctl in a
		// script.
		x.Stdin, x.Stdout, x.Stderr = nil, c.out, c.errOut
		err = x.Run()
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return exitCode(ee.ExitCode())
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ttyIO is meshctl's side of a command run on a pseudo-terminal.
type ttyIO struct {
	in  io.Reader // copied to the command; nil without -i
	out io.Writer // gets all it writes: a terminal has one output
	// rawFd is meshctl's terminal to put in raw mode while the command
	// runs, so that keys (^C, ^D, arrows) reach the command's terminal
	// rather than meshctl's; -1 for none.
	rawFd int
	// sizeFd is the terminal whose size the command's follows, through
	// SIGWINCH; -1 for none (the pseudo-terminal stays 0x0).
	sizeFd int
}

// terminalFd returns f's file descriptor when it is a terminal, else -1.
func terminalFd(f any) int {
	if f, ok := f.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		return int(f.Fd())
	}
	return -1
}
