package mesh

import (
	"os"
	"runtime"
)

// DaemonProcs is how many Ps (threads running Go code at once) meshd
// gives its scheduler, given the number Go chose at start (the CPUs the
// process may use) and whether GOMAXPROCS was set: half of them, at
// least one; an explicit GOMAXPROCS wins.
//
// meshd's busy work is many small exchanges: a DNS query forwarded from a
// task is handed from the reading goroutine to its flight and from the
// upstream socket's reader back to it. Each hand-off to a goroutine while
// a P is idle wakes a thread that spins looking for work, then sleeps
// again, and those threads run on the CPUs the node's tasks need. On a
// 2-CPU node, under dnsperf in a task asking one unknown name in five,
// one P instead of two answered 63-75k queries/s instead of 38-46k, and
// at a fixed 20k/s spent 32-34 µs of CPU per query instead of 40-43 (two
// 1-node labs side by side, one started with GOMAXPROCS=2, runs
// alternating). Names answered from the table, one goroutine's work,
// were as fast either way.
//
// Setting it also stops Go from following a later change of the
// process's CPU limit (a cgroup's): the number is fixed at start.
func DaemonProcs(atStart int, envSet bool) int {
	if envSet {
		return atStart
	}
	return max(1, atStart/2)
}

// SetDaemonProcs applies DaemonProcs to this process.
func SetDaemonProcs() {
	_, envSet := os.LookupEnv("GOMAXPROCS")
	runtime.GOMAXPROCS(DaemonProcs(runtime.GOMAXPROCS(0), envSet))
}
