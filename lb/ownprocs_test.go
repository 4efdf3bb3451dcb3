package lb

import (
	"testing"
	"time"
)

func TestProcSet(t *testing.T) {
	var s procSet
	t0 := time.Unix(1000, 0)
	s.started(10)
	s.started(11)
	if !s.has(10, t0.Add(time.Hour)) {
		t.Error("a running process was forgotten")
	}
	s.exited(11, t0)
	if !s.has(11, t0.Add(ownMemory)) {
		t.Error("forgotten right after its exit")
	}
	if s.has(11, t0.Add(ownMemory+time.Second)) {
		t.Error("remembered past ownMemory")
	}
	s.exited(12, t0) // never started: not added
	if s.has(12, t0) {
		t.Error("claims a process it never started")
	}
	s.exited(10, t0.Add(2*ownMemory)) // sweeps 11
	if _, ok := s.procs[11]; ok {
		t.Error("an old exit was not swept")
	}
	if !s.has(10, t0.Add(2*ownMemory)) {
		t.Error("forgot the process that just exited")
	}
}
