package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// TestWaitEndsOnAFailedTask: create's wait reports a task that fails
// with its error at once, not after the timeout; a failure that came
// before a scale does not end the scale's wait; a slot whose task
// completed and is not restarted is settled.
func TestWaitEndsOnAFailedTask(t *testing.T) {
	const svcID = "fail0000000000000000000000"
	starting := api.Task{ID: "a1", ServiceName: "t", Slot: 1, DesiredState: "running", Status: api.TaskStatus{State: "starting"}}
	failed := api.Task{ID: "a1", ServiceName: "t", Slot: 1, DesiredState: "running",
		Status: api.TaskStatus{State: "failed", Err: "task: non-zero exit (1)"}}
	oldFailed := api.Task{ID: "a0", ServiceName: "t", Slot: 1, DesiredState: "shutdown",
		Status: api.TaskStatus{State: "failed", Err: "task: non-zero exit (1)"}}
	running := api.Task{ID: "a2", ServiceName: "t", Slot: 1, DesiredState: "running", Restarts: 1, Status: api.TaskStatus{State: "running"}}
	complete := api.Task{ID: "a1", ServiceName: "t", Slot: 1, DesiredState: "shutdown", Status: api.TaskStatus{State: "complete"}}
	tests := []struct {
		name    string
		cond    string
		polls   [][]api.Task // what each poll of the tasks sees; the last repeats
		ended   map[string]bool
		want    string
		wantErr string
	}{
		{name: "fails after starting", cond: "any", polls: [][]api.Task{{starting}, {failed}},
			want:    "overall progress: 0 out of 1 tasks\n1/1: failed task: non-zero exit (1)\n",
			wantErr: "service t: task t.1 failed: task: non-zero exit (1)"},
		{name: "failed and shut down before the first poll", cond: "any", polls: [][]api.Task{{oldFailed}},
			want:    "overall progress: 0 out of 1 tasks\n1/1: failed task: non-zero exit (1)\n",
			wantErr: "service t: task t.1 failed: task: non-zero exit (1)"},
		{name: "an old failure does not end a scale's wait", cond: "any", polls: [][]api.Task{{running, oldFailed}},
			ended: map[string]bool{"a0": true},
			want:  "overall progress: 1 out of 1 tasks\n1/1: running   [==================================================>]\nverify: Service converged\n"},
		// A command that runs for a moment, then fails, as sh -c 'exit 3'
		// does: running is not converged until it has lasted stableFor.
		{name: "runs a moment then fails", cond: "any", polls: [][]api.Task{{running}, {running}, {failed}},
			want:    "overall progress: 0 out of 1 tasks\n1/1: failed task: non-zero exit (1)\n",
			wantErr: "service t: task t.1 failed: task: non-zero exit (1)"},
		{name: "complete, not restarted", cond: "on-failure", polls: [][]api.Task{{starting}, {complete}},
			want: "overall progress: 0 out of 1 tasks\n1/1: complete\nverify: Service converged\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeAPI()
			fake.serviceFunc = func(string) (api.Service, error) {
				return api.Service{ID: svcID, Name: "t", Replicas: 1, Reachable: 1, RestartPolicy: api.RestartPolicy{Condition: tt.cond}}, nil
			}
			poll := 0
			fake.tasksFunc = func(string, string) ([]api.Task, error) {
				tasks := tt.polls[min(poll, len(tt.polls)-1)]
				poll++
				return tasks, nil
			}
			var out bytes.Buffer
			start := time.Now()
			err := waitConverged(context.Background(), fake, &out, svcID, time.Minute, tt.ended)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the wait took %s", d)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("got error %v, want %q", err, tt.wantErr)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got output %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	bar := func(n int) string { return "[" + strings.Repeat("=", n) + ">" + strings.Repeat(" ", 50-n) + "]" }
	for _, tt := range []struct{ state, err, want string }{
		{api.TaskNew, "", "1/2: new       " + bar(5)},
		{api.TaskAssigned, "", "1/2: assigned  " + bar(22)},
		{api.TaskStarting, "", "1/2: starting  " + bar(44)},
		{api.TaskRunning, "", "1/2: running   " + bar(50)},
		{api.TaskFailed, "task: non-zero exit (3)", "1/2: failed task: non-zero exit (3)"},
		{api.TaskComplete, "", "1/2: complete"},
	} {
		if got := progressLine("1/2", tt.state, tt.err); got != tt.want {
			t.Errorf("%s %q:\n got %q\nwant %q", tt.state, tt.err, got, tt.want)
		}
	}
}
