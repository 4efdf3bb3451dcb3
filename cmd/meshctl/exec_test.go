package main

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// TestMatchContainer resolves every form of CONTAINER docker exec takes,
// and the forms meshctl exec took before, against the fixtures: www.1
// (p7b0…, container 3ad5e5ad4ad6…) with two earlier tasks in its slot
// (k3m5…, d2f4…), www.2 (h4j6…, container d107523f553b…) and dns.1.
func TestMatchContainer(t *testing.T) {
	www1 := testTasks[0]
	tests := []struct {
		name, ref string
		want      string // the task ID found
		wantErr   string
	}{
		{name: "container ID as ps prints it", ref: "3ad5e5ad4ad6", want: www1.ID},
		{name: "full container ID", ref: www1.ContainerID(), want: www1.ID},
		{name: "container ID prefix", ref: "3ad5", want: www1.ID},
		{name: "container name as ps prints it", ref: "www.1.p7b0d3zr5n6hq1w8y2k4c9m0a", want: www1.ID},
		{name: "container name of an ended task", ref: "www.1.d2f4h6j8l0n2p4r6t8v0x2z4b", want: "d2f4h6j8l0n2p4r6t8v0x2z4b"},
		{name: "task name is the slot's current task", ref: "www.1", want: www1.ID},
		{name: "task ID", ref: "r8t0v2x4z6b8d0f2h4j6l8n0p", want: "r8t0v2x4z6b8d0f2h4j6l8n0p"},
		{name: "task ID prefix", ref: "r8t0", want: "r8t0v2x4z6b8d0f2h4j6l8n0p"},
		{name: "ambiguous: a task ID and a container ID", ref: "d",
			wantErr: `multiple containers match "d": www.1.d2f4h6j8l0n2p4r6t8v0x2z4b, www.2.h4j6l8n0p2r4t6v8x0z2b4d6f`},
		{name: "no such slot", ref: "www.9", wantErr: "No such container: www.9"},
		{name: "no such ID", ref: "ffff", wantErr: "No such container: ffff"},
		{name: "a service is not a container", ref: "www", wantErr: "No such container: www"},
		{name: "empty", ref: "", wantErr: `No such container: ""`},
		{name: "odd input stays one line", ref: "a\nb", wantErr: `No such container: "a\nb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := api.MatchContainer(testTasks, tt.ref)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want task %s", err, tt.want)
			}
			if got.ID != tt.want {
				t.Errorf("got task %s, want %s", got.ID, tt.want)
			}
		})
	}
}

// TestMatchContainerManyMatches checks that a short prefix many tasks
// share still gives one line.
func TestMatchContainerManyMatches(t *testing.T) {
	var tasks []api.Task
	for i, id := range []string{"aaa1", "aaa2", "aaa3", "aaa4", "aaa5"} {
		tasks = append(tasks, api.Task{ID: id, ServiceName: "www", Slot: i + 1, DesiredState: api.TaskRunning})
	}
	_, err := api.MatchContainer(tasks, "aaa")
	want := `multiple containers match "aaa": www.1.aaa1, www.2.aaa2, www.3.aaa3 and 2 more`
	if err == nil || err.Error() != want {
		t.Errorf("got error %v, want %q", err, want)
	}
}

// TestExecOnWorker checks that a node which cannot list the cluster's
// tasks resolves CONTAINER among its own, as meshd's task lookup does.
func TestExecOnWorker(t *testing.T) {
	own := testTasks[0]
	own.NodeID = workerInfo.NodeID
	fake := &fakeAPI{
		infoFunc: func() (api.Info, error) { return workerInfo, nil },
		tasksFunc: func(_, node string) ([]api.Task, error) {
			if node != workerInfo.NodeID {
				return nil, api.ErrNotManager
			}
			return []api.Task{own}, nil
		},
	}
	m := &fakeMachine{}
	if err := runExec(context.Background(), fake, m, execOptions{task: own.Hostname(), argv: []string{"hostname"}}); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	want := [][]string{{"nsenter", "-t", "4242", "-n", "-u", "-m", "-p", "--", "hostname"}}
	if diff := cmp.Diff(want, m.ran); diff != "" {
		t.Errorf("ran mismatch (-want +got):\n%s", diff)
	}
}

// TestExecOptions checks what -i, -t, -e and -w become.
func TestExecOptions(t *testing.T) {
	t.Setenv("MESHCTL_TEST_HOME", "/home/test")
	m := &fakeMachine{}
	opts := execOptions{task: "www.1", argv: []string{"ls", "-l"}, interactive: true, tty: true, workdir: "/srv",
		env: []string{"A=1", "MESHCTL_TEST_HOME", "MESHCTL_TEST_UNSET", "B=x=y"}}
	if err := runExec(context.Background(), newFakeAPI(), m, opts); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	want := [][]string{{"nsenter", "-t", "4242", "-n", "-u", "-m", "-p", "--wd=/srv", "--", "ls", "-l"}}
	if diff := cmp.Diff(want, m.ran); diff != "" {
		t.Errorf("ran mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]stdio{{stdin: true, tty: true}}, m.attached, cmp.AllowUnexported(stdio{})); diff != "" {
		t.Errorf("attached mismatch (-want +got):\n%s", diff)
	}
	env := m.envs[0]
	if len(env) < 3 {
		t.Fatalf("got env %q, want meshctl's and the -e values", env)
	}
	if got, want := env[len(env)-3:], []string{"A=1", "MESHCTL_TEST_HOME=/home/test", "B=x=y"}; !slices.Equal(got, want) {
		t.Errorf("got env ending %q, want %q", got, want)
	}
	if !slices.Contains(env, "PATH="+os.Getenv("PATH")) {
		t.Errorf("got env %q, want meshctl's own too", env)
	}
}

// TestExecCommandLine checks where each word of the command line goes:
// everything after CONTAINER is the command's, flags included.
func TestExecCommandLine(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    execOptions
		wantErr string
	}{
		{name: "flags after CONTAINER are the command's", args: []string{"shell.1", "sh", "-c", "echo hi"},
			want: execOptions{task: "shell.1", argv: []string{"sh", "-c", "echo hi"}}},
		{name: "-- is still accepted", args: []string{"www.1", "--", "dig", "+short", "tasks.www"},
			want: execOptions{task: "www.1", argv: []string{"dig", "+short", "tasks.www"}}},
		{name: "a later -- is the command's", args: []string{"www.1", "ls", "--", "-x"},
			want: execOptions{task: "www.1", argv: []string{"ls", "--", "-x"}}},
		{name: "options before CONTAINER", args: []string{"-t", "-e", "A=1", "--env", "B", "-w", "/tmp", "3ad5e5ad4ad6", "ls", "-t"},
			want: execOptions{task: "3ad5e5ad4ad6", argv: []string{"ls", "-t"}, tty: true, env: []string{"A=1", "B"}, workdir: "/tmp"}},
		{name: "-i", args: []string{"--interactive", "www.1", "cat"},
			want: execOptions{task: "www.1", argv: []string{"cat"}, interactive: true}},
		{name: "no command", args: []string{"www.1"}, wantErr: "requires at least 2 arg(s), only received 1"},
		{name: "no command after --", args: []string{"www.1", "--"}, wantErr: `"meshctl exec" requires at least 2 arguments: CONTAINER COMMAND`},
		{name: "-it needs a terminal", args: []string{"-it", "www.1", "sh"}, wantErr: "the input device is not a TTY"},
		{name: "bad -e", args: []string{"-e", "=x", "www.1", "sh"}, wantErr: "invalid environment variable: =x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *execOptions
			c := &cli{in: strings.NewReader(""), out: io.Discard, errOut: io.Discard, socket: "/nonexistent/meshd.sock"}
			cmd := execCommand(c, func(_ context.Context, _ *api.Client, opts execOptions) error {
				got = &opts
				return nil
			})
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got == nil {
				t.Fatalf("got error %v and options %v, want options", err, got)
			}
			if diff := cmp.Diff(tt.want, *got, cmp.AllowUnexported(execOptions{})); diff != "" {
				t.Errorf("options mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
