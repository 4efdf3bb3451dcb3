package task

import (
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/images"
)

// InitArg is the hidden first argument that makes meshd a task's init.
const InitArg = "__task-init"

// Spec is what a task runs and where.
type Spec struct {
	ID       string   // task ID, for logs
	Hostname string   // 12 hex characters
	NetNS    string   // network namespace file the task runs in
	Image    string   // a built-in image; empty when Args is a host command
	Args     []string // image arguments, or the host command
	Env      []string // KEY=VALUE, added to the task's environment
	// The task's own /etc files, bound over the host's in the task's
	// mount namespace only. Empty means the host's file shows through.
	ResolvConf   string // bound over /etc/resolv.conf (created if the host has none)
	HostsFile    string // bound over /etc/hosts, if the host has one
	HostnameFile string // bound over /etc/hostname, if the host has one
	// LogPath is where stdout and stderr go (appended). Its directory is
	// the task's own: an image's program that writes files (redis-server's
	// working directory) writes them there.
	LogPath string
	// WorkDir is where a host command starts (run's -w); it must exist
	// (the task's mounts are the host's: nothing is made). Empty: /.
	WorkDir string
	// OwnInit makes meshd's own init reap a host command even where
	// Debian's tini is installed (which it otherwise execs: see Run).
	OwnInit bool
}

// IdleImage is what an idle standalone container runs: a shell image
// without a command only holds the namespaces a foreground run executes
// in.
const IdleImage = "busybox"

// ProcessOf is the image and arguments a task's process runs: a
// service's, or a standalone container's as run said (idle, or its
// --entrypoint as a host command with the arguments after it), and the
// directory it starts in.
func ProcessOf(t api.Task) (image string, args []string, workDir string) {
	switch sa := t.Standalone; {
	case sa == nil:
		return t.Image, t.Args, ""
	case sa.Idle:
		return IdleImage, nil, sa.WorkingDir
	case sa.Entrypoint != "":
		return "", append([]string{sa.Entrypoint}, t.Args...), sa.WorkingDir
	default:
		return t.Image, t.Args, sa.WorkingDir
	}
}

// State is a task's state as Run reports it.
type State struct {
	State string // starting, running, complete, failed, shutdown
	PID   int
	Err   string
	// ExitCode is the process's exit status once it has ended, 128+N for
	// a death by signal N: also for a shutdown, where the stop's SIGTERM
	// often ends it (143), as docker stop shows. Nil when no process ran.
	ExitCode *int
}

// stopGrace is how long a task has to exit after SIGTERM.
const stopGrace = 5 * time.Second

// StandaloneOf is the standalone part of a container run asks for, named
// name: what the node's engine and the managers both keep. An idle
// container gets the command a foreground run executes in it, as the
// image runs it (images.Command); ref is the image as given, for the
// error.
func StandaloneOf(req api.ContainerCreate, name string) (*api.Standalone, error) {
	sa := &api.Standalone{Name: name, AutoRemove: req.AutoRemove, Idle: req.Idle, Entrypoint: req.Entrypoint,
		WorkingDir: req.WorkingDir, Hostname: req.Hostname}
	if req.Idle {
		cmd := req.Cmd
		if req.Entrypoint != "" {
			cmd = append([]string{req.Entrypoint}, cmd...)
		}
		sa.Command = images.Command(req.Image, cmd)
		if len(sa.Command) == 0 {
			return nil, api.Invalid("no command to run in %s: give one after the image", api.Clip(req.Image))
		}
	}
	return sa, nil
}
