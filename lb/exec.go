package lb

import (
	"bytes"
	"context"
	"os/exec"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
)

// execer runs one command in a network namespace: the seam between
// [IPTables] and the processes it starts, as knftables' exec.go is for
// nft. Tests swap in a fake that checks the argv and stdin; the real one
// is nsExec.
type execer interface {
	// run runs argv in the namespace file netns ("" = the caller's
	// namespace) with stdin (nil = none), and returns what the command
	// wrote to stdout and to stderr, also when it failed.
	run(ctx context.Context, netns string, stdin []byte, argv ...string) (stdout, stderr []byte, err error)
}

// nsExec is the real execer. A child started from a thread that entered
// the namespace is born there, so no nsenter process is needed.
type nsExec struct{}

func (nsExec) run(ctx context.Context, netns string, stdin []byte, argv ...string) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	start := func() error {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		ownProcs.started(cmd.Process.Pid)
		defer func() { ownProcs.exited(cmd.Process.Pid, time.Now()) }()
		return cmd.Wait()
	}
	err := inNetNS(netns, start)
	return stdout.Bytes(), stderr.Bytes(), err
}

// inNetNS calls f on a thread inside the namespace file netns, or where
// it is for "".
func inNetNS(netns string, f func() error) error {
	if netns == "" {
		return f()
	}
	return nsfile.Do(netns, f)
}
