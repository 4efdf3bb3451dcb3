//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

// runTTY needs Linux's pseudo-terminals and session calls; exec runs
// nsenter, which is Linux's anyway.
func runTTY(*exec.Cmd, ttyIO) error {
	return errors.New("-t: pseudo-terminals are supported on Linux only")
}
