package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// runFixture is meshd on node1 as run sees it: RunContainer makes the
// container "es" with the state given, and every call is logged in
// order, the commands the fake machine runs among them.
type runFixture struct {
	fake  *fakeAPI
	m     *fakeMachine
	calls []string
	task  api.Task // what RunContainer answers, with the request's Standalone part
	// command is the Standalone.Command RunContainer answers: what meshd
	// says the image runs for the command.
	command []string
}

// standaloneID is the task ID of the fixtures' standalone container; its
// container ID is api.Task{ID: standaloneID}.ContainerID().
const standaloneID = "c0n7a1n3r5t7v9x1z3b5d7f9h"

func newRunFixture(state string, status int) *runFixture {
	f := &runFixture{fake: newFakeAPI()}
	f.m = &fakeMachine{status: status, log: &f.calls}
	f.task = api.Task{ID: standaloneID, NodeID: testInfo.NodeID, NodeName: "node1", DesiredState: api.TaskRunning, CreatedAt: t0,
		Status: api.TaskStatus{State: state, Timestamp: testNow}}
	if state == api.TaskRunning {
		f.task.Status.PID = 5151
	}
	f.fake.runContainerFunc = func(req api.ContainerCreate) (api.Task, error) {
		f.calls = append(f.calls, fmt.Sprintf("run %s idle=%v rm=%v cmd=%q", req.Image, req.Idle, req.AutoRemove, req.Cmd))
		t := f.task
		t.Image, t.Args = req.Image, req.Cmd
		t.Standalone = &api.Standalone{Name: "es", Idle: req.Idle, AutoRemove: req.AutoRemove, Command: f.command}
		return t, nil
	}
	f.fake.stopContainerFunc = func(ref string, req api.ContainerStop) error {
		code := "none"
		if req.ExitCode != nil {
			code = fmt.Sprint(*req.ExitCode)
		}
		f.calls = append(f.calls, fmt.Sprintf("stop %s exit=%s", short(ref), code))
		return nil
	}
	f.fake.removeContainerFunc = func(ref string, force bool) error {
		f.calls = append(f.calls, fmt.Sprintf("rm %s force=%v", short(ref), force))
		return nil
	}
	return f
}

// short is a container ID as ps prints it, to keep the call logs short.
func short(ref string) string { return ref[:min(12, len(ref))] }

// TestRunForeground follows a run without -d: the container is made
// idle, the command runs in its namespaces from here, then the container
// is stopped with the command's status and, with --rm, removed; meshctl
// exits with that status.
func TestRunForeground(t *testing.T) {
	id := short(api.Task{ID: standaloneID}.ContainerID())
	nsenter := "exec nsenter -t 5151 -n -u -m -p -- "
	tests := []struct {
		name    string
		args    []string
		status  int
		state   string // what RunContainer reports; running has PID 5151
		command []string
		calls   []string
		stdio   stdio
		wantErr string
	}{
		{name: "deck: a shell on dev", args: []string{"--net", "dev", "alpine"}, calls: []string{
			`run alpine idle=true rm=false cmd=[]`, nsenter + "sh", "stop " + id + " exit=0"}},
		{name: "deck: a failing ping with --rm", args: []string{"--rm", "alpine", "ping", "es"}, status: 1, wantErr: "exit status 1", calls: []string{
			`run alpine idle=true rm=true cmd=["ping" "es"]`, nsenter + "ping es", "stop " + id + " exit=1", "rm " + id + " force=true"}},
		{name: "the command as meshd says the image runs it", args: []string{"--net", "dev", "alpine", "ping", "es"},
			command: []string{"/usr/bin/busybox", "ping", "es"}, calls: []string{
				`run alpine idle=true rm=false cmd=["ping" "es"]`, nsenter + "/usr/bin/busybox ping es", "stop " + id + " exit=0"}},
		{name: "deck: curl from centos", args: []string{"--rm", "--net", "dev", "centos", "curl", "-s", "es:9200"}, calls: []string{
			`run centos idle=true rm=true cmd=["curl" "-s" "es:9200"]`, nsenter + "curl -s es:9200", "stop " + id + " exit=0", "rm " + id + " force=true"}},
		{name: "-i, -e and -w reach the command", args: []string{"-i", "-e", "A=1", "-w", "/tmp", "busybox", "cat"}, stdio: stdio{stdin: true}, calls: []string{
			`run busybox idle=true rm=false cmd=["cat"]`, "exec nsenter -t 5151 -n -u -m -p --wd=/tmp -- cat", "stop " + id + " exit=0"}},
		{name: "--entrypoint runs in a server image", args: []string{"--entrypoint", "sh", "nginx", "-c", "exit 3"}, status: 3, wantErr: "exit status 3", calls: []string{
			`run nginx idle=true rm=false cmd=["-c" "exit 3"]`, nsenter + "sh -c exit 3", "stop " + id + " exit=3"}},
		{name: "a command given to a server image", args: []string{"redis", "redis-cli", "ping"}, calls: []string{
			`run redis idle=true rm=false cmd=["redis-cli" "ping"]`, nsenter + "redis-cli ping", "stop " + id + " exit=0"}},
		{name: "a container that ended first", args: []string{"--rm", "alpine", "true"}, state: api.TaskFailed,
			wantErr: "container es ended before its command ran (failed)", calls: []string{
				`run alpine idle=true rm=true cmd=["true"]`, "stop " + id + " exit=none", "rm " + id + " force=true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := tt.state
			if state == "" {
				state = api.TaskRunning
			}
			f := newRunFixture(state, tt.status)
			f.command = tt.command
			opts := runOptions{}
			parseRunArgs(t, &opts, tt.args)
			var out bytes.Buffer
			err := runRun(context.Background(), f.fake, f.m, &out, opts)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("got error %q, want %q", got, tt.wantErr)
			}
			if tt.status != 0 {
				var code exitCode
				if !errors.As(err, &code) || int(code) != tt.status {
					t.Errorf("got error %v, want exit status %d passed through", err, tt.status)
				}
			}
			if diff := cmp.Diff(tt.calls, f.calls); diff != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", diff)
			}
			if len(f.m.attached) > 0 && f.m.attached[0] != tt.stdio {
				t.Errorf("attached %+v, want %+v", f.m.attached[0], tt.stdio)
			}
			if out.Len() != 0 {
				t.Errorf("got output %q, want none: the command writes to the terminal itself", out.String())
			}
		})
	}
}

// TestRunForegroundWaits checks that a container meshd reports starting
// is waited for, through the task list, before its command runs.
func TestRunForegroundWaits(t *testing.T) {
	f := newRunFixture(api.TaskStarting, 0)
	asked := 0
	f.fake.tasksFunc = func(string, string) ([]api.Task, error) {
		asked++
		t := f.task
		t.Standalone = &api.Standalone{Name: "es"}
		if asked > 1 {
			t.Status.State, t.Status.PID = api.TaskRunning, 6161
		}
		return []api.Task{testTasks[0], t}, nil
	}
	opts := runOptions{}
	parseRunArgs(t, &opts, []string{"alpine", "hostname"})
	if err := runRun(context.Background(), f.fake, f.m, &bytes.Buffer{}, opts); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	want := [][]string{{"nsenter", "-t", "6161", "-n", "-u", "-m", "-p", "--", "hostname"}}
	if diff := cmp.Diff(want, f.m.ran); diff != "" {
		t.Errorf("ran mismatch (-want +got):\n%s", diff)
	}
	if asked != 2 {
		t.Errorf("asked for the tasks %d times, want 2 (starting, then running)", asked)
	}
}

// TestRunDetach checks run -d: one request, not idle, and the 64-hex
// container ID printed, as docker run -d prints it.
func TestRunDetach(t *testing.T) {
	f := newRunFixture(api.TaskRunning, 0)
	opts := runOptions{}
	parseRunArgs(t, &opts, []string{"-d", "--name", "es", "--net", "dev", "elasticsearch:2"})
	var out bytes.Buffer
	if err := runRun(context.Background(), f.fake, f.m, &out, opts); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	golden(t, "run-detach", out.String())
	if diff := cmp.Diff([]string{`run elasticsearch:2 idle=false rm=false cmd=[]`}, f.calls); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
}

// TestRunDetachWaits checks that run -d returns once the container is
// past starting (a container on a swarm overlay is run by its node's
// agent after meshd answers), and that one that ended at once, even
// removed with --rm, is no error.
func TestRunDetachWaits(t *testing.T) {
	for _, tt := range []struct {
		name  string
		later func(api.Task) ([]api.Task, error)
	}{
		{"runs", func(t api.Task) ([]api.Task, error) {
			t.Status.State, t.Status.PID = api.TaskRunning, 6161
			return []api.Task{t}, nil
		}},
		{"ended", func(t api.Task) ([]api.Task, error) {
			t.Status.State = api.TaskComplete
			return []api.Task{t}, nil
		}},
		{"removed", func(api.Task) ([]api.Task, error) { return nil, nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newRunFixture(api.TaskStarting, 0)
			asked := 0
			f.fake.tasksFunc = func(string, string) ([]api.Task, error) {
				asked++
				task := f.task
				task.Standalone = &api.Standalone{Name: "es"}
				if asked > 1 {
					return tt.later(task)
				}
				return []api.Task{task}, nil
			}
			opts := runOptions{}
			parseRunArgs(t, &opts, []string{"-d", "--rm", "alpine", "sleep", "1"})
			var out bytes.Buffer
			if err := runRun(context.Background(), f.fake, f.m, &out, opts); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if asked != 2 {
				t.Errorf("asked for the tasks %d times, want 2 (starting, then past it)", asked)
			}
			if got, want := strings.TrimSpace(out.String()), (api.Task{ID: standaloneID}).ContainerID(); got != want {
				t.Errorf("printed %q, want the container ID %q", got, want)
			}
		})
	}
}

// TestRunFollow checks a foreground run of a server image without a
// command: its program runs, its output is followed until it ends (or
// ^C), then the container is stopped, removed with --rm, and its status
// passed through.
func TestRunFollow(t *testing.T) {
	f := newRunFixture(api.TaskRunning, 0)
	id := api.Task{ID: standaloneID}.ContainerID()
	f.fake.taskLogsFunc = func(ref, tail string, follow bool) (string, error) {
		f.calls = append(f.calls, fmt.Sprintf("logs %s tail=%s follow=%v", short(ref), tail, follow))
		return "nginx: ready\n", nil
	}
	f.fake.containerFunc = func(ref string) (api.Container, error) {
		f.calls = append(f.calls, "inspect "+short(ref))
		return api.Container{ID: id, State: api.ContainerState{Status: "exited", ExitCode: new(2)}}, nil
	}
	opts := runOptions{}
	parseRunArgs(t, &opts, []string{"--rm", "-p", "8080:80", "nginx"})
	var out bytes.Buffer
	err := runRun(context.Background(), f.fake, f.m, &out, opts)
	if errString(err) != "exit status 2" {
		t.Errorf("got error %v, want exit status 2", err)
	}
	want := []string{`run nginx idle=false rm=true cmd=[]`, "logs " + short(id) + " tail=all follow=true",
		"stop " + short(id) + " exit=none", "inspect " + short(id), "rm " + short(id) + " force=true"}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
	if got := out.String(); got != "nginx: ready\n" {
		t.Errorf("got output %q, want the container's", got)
	}
}

// TestRunRemoveGone checks that --rm takes a container meshd already
// removed (AutoRemove) for removed, and reports any other failure.
func TestRunRemoveGone(t *testing.T) {
	for _, tt := range []struct {
		rmErr   error
		wantErr string
	}{
		{rmErr: api.NotFound("No such container: es")},
		{rmErr: api.Conflict("container es is busy"), wantErr: "container es is busy"},
	} {
		f := newRunFixture(api.TaskRunning, 0)
		f.fake.removeContainerFunc = func(string, bool) error { return tt.rmErr }
		opts := runOptions{}
		parseRunArgs(t, &opts, []string{"--rm", "alpine", "true"})
		if err := runRun(context.Background(), f.fake, f.m, &bytes.Buffer{}, opts); errString(err) != tt.wantErr {
			t.Errorf("remove failing with %v: got error %v, want %q", tt.rmErr, err, tt.wantErr)
		}
	}
}

// TestRunMeshdRefuses checks that a refused run runs nothing and stops
// nothing.
func TestRunMeshdRefuses(t *testing.T) {
	f := newRunFixture(api.TaskRunning, 0)
	f.fake.runContainerFunc = func(api.ContainerCreate) (api.Task, error) {
		return api.Task{}, api.Conflict(`Conflict. The container name "/es" is already in use`)
	}
	opts := runOptions{}
	parseRunArgs(t, &opts, []string{"--name", "es", "alpine"})
	err := runRun(context.Background(), f.fake, f.m, &bytes.Buffer{}, opts)
	if want := `Conflict. The container name "/es" is already in use`; errString(err) != want {
		t.Errorf("got error %v, want %q", err, want)
	}
	if len(f.calls) != 0 {
		t.Errorf("got calls %q, want none", f.calls)
	}
}

// parseRunArgs parses args as run's command line does.
func parseRunArgs(t *testing.T, opts *runOptions, args []string) {
	t.Helper()
	c := &cli{in: strings.NewReader(""), socket: "/nonexistent/meshd.sock"}
	cmd := runCommand(c, func(_ context.Context, _ *api.Client, o runOptions) error {
		*opts = o
		return nil
	})
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("run %q: %v", args, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
