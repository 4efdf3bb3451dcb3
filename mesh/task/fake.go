package task

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/meshd/meshd/mesh/api"
)

// FakePID is the PID every process of a [FakeRunner] reports.
const FakePID = 4242

// FakeRunner stands for task processes in memory, for the tests of what
// runs tasks (the node agent, the container engine). Its Run takes
// [Run]'s place. Safe for concurrent use.
type FakeRunner struct {
	mu      sync.Mutex            // guards the fields below
	starts  map[string]int        // task ID → how often its process was started
	running map[string]bool       // task ID → its process runs
	specs   map[string]Spec       // task ID → what its process was last started with
	exits   map[string]chan State // task ID → ends its last process (see Exit)
}

// NewFakeRunner returns a runner that has started nothing.
func NewFakeRunner() *FakeRunner {
	return &FakeRunner{starts: map[string]int{}, running: map[string]bool{}, specs: map[string]Spec{},
		exits: map[string]chan State{}}
}

// Run is a process that reports running (PID [FakePID]) at once, from
// the caller's goroutine as [Run] does, then runs until ctx ends
// (shutdown, exit status 143) or [FakeRunner.Exit] ends it with the state its end reports.
// report is called without the runner's lock held.
func (r *FakeRunner) Run(ctx context.Context, spec Spec, report func(State)) {
	exit := make(chan State, 1)
	r.mu.Lock()
	r.starts[spec.ID]++
	r.specs[spec.ID] = spec
	r.exits[spec.ID] = exit
	r.running[spec.ID] = true
	r.mu.Unlock()
	report(State{State: api.TaskRunning, PID: FakePID})
	end := State{State: api.TaskShutdown, ExitCode: new(143)} // as the stop's SIGTERM ends a command under tini
	select {
	case <-ctx.Done():
	case end = <-exit:
	}
	r.mu.Lock()
	r.running[spec.ID] = false
	r.mu.Unlock()
	report(end)
}

// Exit ends the last process of task id with s, as its exit would. It
// fails when the task was never started.
func (r *FakeRunner) Exit(id string, s State) error {
	r.mu.Lock()
	exit := r.exits[id]
	r.mu.Unlock()
	if exit == nil {
		return fmt.Errorf("task %s has no process", id)
	}
	exit <- s
	return nil
}

// Starts is how often the process of task id was started.
func (r *FakeRunner) Starts(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts[id]
}

// Spec is what the process of task id was last started with; zero when
// it never was.
func (r *FakeRunner) Spec(id string) Spec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.specs[id]
}

// Running lists the tasks whose process runs, sorted.
func (r *FakeRunner) Running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, on := range r.running {
		if on {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Dump prints every task ever started, one line each in ID order: "task
// ID: started N, running true|false".
func (r *FakeRunner) Dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(r.starts)) {
		fmt.Fprintf(&b, "task %s: started %d, running %v\n", id, r.starts[id], r.running[id])
	}
	return b.String()
}
