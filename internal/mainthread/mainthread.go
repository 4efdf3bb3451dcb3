// Package mainthread keeps the main goroutine on the process's main thread.
//
// Namespaces are entered by goroutines that lock their thread, unshare or
// setns, and exit still locked, so that the runtime ends the thread rather
// than hand a foreign namespace to other goroutines. The runtime never ends
// the main thread, though: a locked goroutine that exits there wedges it,
// still in the namespace it entered. /proc/PID/ns/net reads the main
// thread, so "nsenter -t PID --net" and "ip netns identify PID" would then
// name a sandbox instead of the daemon's own namespace, and a child cloned
// with Pdeathsig would outlive the goroutine that started it. Holding the
// main thread with the main goroutine from init keeps every such goroutine
// off it. Import it for the side effect in each package that locks a
// thread to change its namespace.
package mainthread

import "runtime"

func init() { runtime.LockOSThread() }
