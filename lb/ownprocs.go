package lb

import (
	"sync"
	"time"
)

// ownMemory is how long a process lb started is remembered after its
// exit: the kernel's announcement of its last commit is read after that
// commit, possibly once the process is gone, and well within this.
const ownMemory = 30 * time.Second

// procSet remembers the processes lb starts (iptables-restore, nft, and
// the readers beside them), so that nftables' announcements, which name
// the process that committed, can be told from a change made by anyone
// else: meshd's own removals need no check for drift.
type procSet struct {
	mu    sync.Mutex
	procs map[int]time.Time // zero: running; else when it exited
}

// ownProcs is every process this package started.
var ownProcs procSet

func (s *procSet) started(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs == nil {
		s.procs = map[int]time.Time{}
	}
	s.procs[pid] = time.Time{}
}

// exited marks pid gone, and forgets those gone longer than ownMemory.
func (s *procSet) exited(pid int, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.procs[pid]; ok {
		s.procs[pid] = now
	}
	for p, at := range s.procs {
		if !at.IsZero() && now.Sub(at) > ownMemory {
			delete(s.procs, p)
		}
	}
}

func (s *procSet) has(pid int, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.procs[pid]
	return ok && (at.IsZero() || now.Sub(at) <= ownMemory)
}

// OwnProcess reports whether pid (as the initial PID namespace numbers
// it, as nftables announces a commit's process) is one this package
// started to write or read a namespace's rules, running or gone for less
// than ownMemory. Safe from any goroutine.
func OwnProcess(pid int) bool { return pid > 0 && ownProcs.has(pid, time.Now()) }
