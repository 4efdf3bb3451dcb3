package task

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// A fake process reports running at once, runs until Exit or its context
// ends it, and reports how it ended.
func TestFakeRunner(t *testing.T) {
	r := NewFakeRunner()
	if err := r.Exit("t1", State{State: api.TaskComplete}); err == nil {
		t.Error("Exit of a task never started: got nil, want an error")
	}
	start := func(ctx context.Context, id string) <-chan []State {
		running := make(chan struct{})
		done := make(chan []State, 1)
		go func() {
			var got []State
			r.Run(ctx, Spec{ID: id, Image: "alpine"}, func(s State) {
				got = append(got, s)
				if s.State == api.TaskRunning {
					close(running)
				}
			})
			done <- got
		}()
		<-running
		return done
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t1, t2 := start(ctx, "t1"), start(ctx, "t2")
	if got := r.Running(); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Errorf("Running() = %v, want [t1 t2]", got)
	}
	if got := r.Spec("t1").Image; got != "alpine" {
		t.Errorf("Spec(t1).Image = %q, want alpine", got)
	}
	if err := r.Exit("t1", State{State: api.TaskFailed, Err: "task: non-zero exit (1)"}); err != nil {
		t.Fatal(err)
	}
	want := []State{{State: api.TaskRunning, PID: FakePID}, {State: api.TaskFailed, Err: "task: non-zero exit (1)"}}
	if got := <-t1; !slices.Equal(got, want) {
		t.Errorf("t1 reported %+v, want %+v", got, want)
	}
	cancel()
	want = []State{{State: api.TaskRunning, PID: FakePID}, {State: api.TaskShutdown, ExitCode: new(143)}}
	if got := <-t2; !reflect.DeepEqual(got, want) {
		t.Errorf("t2 reported %+v, want %+v", got, want)
	}
	again, stop := context.WithCancel(context.Background())
	defer stop()
	start(again, "t1")
	if got, want := r.Dump(), "task t1: started 2, running true\ntask t2: started 1, running false\n"; got != want {
		t.Errorf("Dump() = %q, want %q", got, want)
	}
}
