package task

import "time"

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
}

// State is a task's state as Run reports it.
type State struct {
	State string // starting, running, complete, failed, shutdown
	PID   int
	Err   string
}

// stopGrace is how long a task has to exit after SIGTERM.
const stopGrace = 5 * time.Second
