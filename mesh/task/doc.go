// Package task runs a task's process inside its sandbox: the task's
// network namespace (made by the node agent), plus a UTS namespace (the
// hostname is the task's 12-hex ID), a mount namespace (its own
// /etc/resolv.conf pointing at the embedded DNS, its own /etc/hosts and
// /etc/hostname as Docker writes them for a container, its own /proc) and
// a PID namespace (the task sees its own processes only).
//
// meshd starts a task by re-executing itself as "meshd __task-init" from
// an OS thread that has entered the task's network namespace, with new
// UTS, mount and PID namespaces. The child, PID 1 of its namespace, sets
// the hostname, binds the /etc files, mounts /proc, then either serves a
// built-in image in-process, or execs the image's real program where the
// host has it (Debian's redis-server for redis: it becomes the task's
// PID 1, as in a container), or runs the host command as its child, as
// "docker run --init" does: it passes on signals, reaps orphans, and exits
// with the command's status when the command exits. Where Debian's tini
// (Docker's --init) is installed, the init execs it to do that instead:
// it holds under a megabyte for the task's life where the init's Go
// runtime holds some 15 MB (TestTaskInitOverhead). A shell image given no
// command (alpine, busybox: the idle task or container one execs into)
// runs "sleep infinity" under tini there, rather than waiting inside the
// init (TestIdleTask). The kernel then kills whatever else runs in the
// namespace, so a task's forked children die with it. The init gets
// SIGKILL when meshd's thread ends (Pdeathsig): tasks do not outlive
// their meshd, so a killed daemon leaves no process behind and a
// restarted one starts from a clean slate.
//
// A stop sends the task's PID 1 SIGTERM, then SIGKILL after a grace of
// 5 s. The kernel drops a signal that PID 1 of a namespace neither
// catches nor blocks, so meshd holds the SIGTERM back until the task can
// take it: the init keeps a pipe open until the exec of tini or of the
// image's program closes it, or until it passes signals on itself, and
// then the program must have caught or blocked SIGTERM (tini: forked its
// child, which it does once it has). A stop right after a start, as
// "meshctl run -d" then "meshctl stop" makes it, thus ends the command by
// SIGTERM (Exited (143)) rather than by the SIGKILL 5 s later (137), or
// by the init's Go runtime exiting 2 (TestStopRightAfterStart).
package task
