// Package task runs a task's process inside its sandbox: the task's
// network namespace (made by the node agent), plus a UTS namespace (the
// hostname is the task's 12-hex ID) and a mount namespace (its own
// /etc/resolv.conf pointing at the embedded DNS).
//
// meshd starts a task by re-executing itself as "meshd __task-init" from
// an OS thread that has entered the task's network namespace, with new
// UTS and mount namespaces. The child sets the hostname, binds the
// resolv.conf, then either serves a built-in image in-process or execs
// the host command. The child gets SIGKILL when that thread ends
// (Pdeathsig): tasks do not outlive their meshd, so a killed daemon
// leaves no process behind and a restarted one starts from a clean slate.
package task
