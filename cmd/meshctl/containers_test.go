package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// testContainer is a fixture task as meshd shows its container.
func testContainer(t api.Task) api.Container {
	var svc api.Service
	for _, s := range testServices {
		if s.ID == t.ServiceID {
			svc = s
		}
	}
	return api.NewContainer(t, svc)
}

// hostPortAPI is node1 running one task of a service publishing 8080
// in host mode, one that exited with status 3, the container of a
// foreground run whose command exited with status 5, and a container
// stopped whose process the stop's SIGTERM ended, as ps sees them.
func hostPortAPI() *fakeAPI {
	fake := newFakeAPI()
	web := api.Task{ID: "z9y8x7w6v5u4t3s2r1q0p9o8n", ServiceID: "e1e2e3e4e5e6e7e8e9e0e1e2e", ServiceName: "web", Slot: 1,
		NodeID: testInfo.NodeID, NodeName: "node1", Args: []string{"sleep", "50000"}, DesiredState: api.TaskRunning,
		CreatedAt: testNow.Add(-3 * time.Hour), Status: api.TaskStatus{State: api.TaskRunning, Timestamp: testNow.Add(-3 * time.Hour), PID: 77}}
	exit3 := api.Task{ID: "a1b2c3d4e5f6g7h8i9j0k1l2m", ServiceID: "f1f2f3f4f5f6f7f8f9f0f1f2f", ServiceName: "fail", Slot: 1,
		NodeID: testInfo.NodeID, NodeName: "node1", Args: []string{"sh", "-c", "exit 3"}, DesiredState: api.TaskShutdown,
		CreatedAt: testNow.Add(-5 * time.Minute), EndedAt: testNow.Add(-2 * time.Minute),
		Status: api.TaskStatus{State: api.TaskFailed, Err: "task: non-zero exit (3)", Timestamp: testNow.Add(-2 * time.Minute)}}
	// run stops the idle container with its command's status.
	fg := api.Task{ID: "b2c3d4e5f6g7h8i9j0k1l2m3n", ServiceID: "g1g2g3g4g5g6g7g8g9g0g1g2g", NodeID: testInfo.NodeID, NodeName: "node1",
		Image: "alpine", Args: []string{"sh", "-c", "exit 5"}, DesiredState: api.TaskShutdown,
		Standalone: &api.Standalone{Name: "fg", Idle: true, ExitCode: new(5)},
		CreatedAt:  testNow.Add(-4 * time.Minute), EndedAt: testNow.Add(-time.Minute),
		Status: api.TaskStatus{State: api.TaskShutdown, Timestamp: testNow.Add(-time.Minute)}}
	stopped := api.Task{ID: "c3d4e5f6g7h8i9j0k1l2m3n4o", ServiceID: "h1h2h3h4h5h6h7h8h9h0h1h2h", NodeID: testInfo.NodeID, NodeName: "node1",
		Image: "alpine", Args: []string{"sleep", "1000"}, DesiredState: api.TaskShutdown,
		Standalone: &api.Standalone{Name: "sleeper"},
		CreatedAt:  testNow.Add(-3 * time.Minute), EndedAt: testNow.Add(-30 * time.Second),
		Status: api.TaskStatus{State: api.TaskShutdown, ExitCode: new(143), Timestamp: testNow.Add(-30 * time.Second)}}
	tasks := []api.Task{web, exit3, fg, stopped}
	fake.tasksFunc = func(string, string) ([]api.Task, error) { return tasks, nil }
	host := api.Service{ID: web.ServiceID, Name: "web", Endpoint: api.Endpoint{Mode: "vip",
		Ports: []api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: api.PublishHost}}}}
	fake.containersFunc = func() ([]api.Container, error) {
		fgc := testContainer(fg)
		fgc.Path, fgc.Args = "sh", []string{"-c", "exit 5"} // the node's engine says what ran
		sc := testContainer(stopped)
		sc.Path, sc.Args = "sleep", []string{"1000"}
		return []api.Container{api.NewContainer(web, host), testContainer(exit3), fgc, sc}, nil
	}
	return fake
}

// TestContainerGoldens renders ps, the top-level inspect and logs
// against the fixtures; "go test ./cmd/meshctl -update" rewrites them.
func TestContainerGoldens(t *testing.T) {
	fake := newFakeAPI()
	clock := func() time.Time { return testNow }
	ps := func(opts psOptions) func(context.Context, io.Writer) error {
		opts.now = clock
		return func(ctx context.Context, out io.Writer) error { return runPs(ctx, fake, out, opts) }
	}
	inspect := func(opts inspectAnyOptions) func(context.Context, io.Writer) error {
		return func(ctx context.Context, out io.Writer) error { return runInspectAny(ctx, fake, out, opts) }
	}
	tests := []struct {
		name string
		run  func(ctx context.Context, out io.Writer) error
	}{
		{"ps-docker-columns", ps(psOptions{})},
		{"ps-all", ps(psOptions{all: true})},
		{"ps-latest", ps(psOptions{latest: true})},
		{"ps-last", ps(psOptions{last: 2})},
		{"ps-all-quiet", ps(psOptions{all: true, listOptions: listOptions{quiet: true}})},
		{"ps-no-trunc", ps(psOptions{listOptions: listOptions{noTrunc: true}})},
		{"ps-host-port", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, hostPortAPI(), out, psOptions{all: true, listOptions: listOptions{now: clock}})
		}},
		{"format-ps-status", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, hostPortAPI(), out, psOptions{all: true,
				listOptions: listOptions{now: clock, format: "table {{.Names}}\t{{.State}}\t{{.Status}}\t{{.Ports}}\t{{.Command}}"}})
		}},
		{"inspect-container", inspect(inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{"www.1"}}})},
		{"inspect-sandbox-key", inspect(inspectAnyOptions{inspectOptions: inspectOptions{
			format: "{{ .NetworkSettings.SandboxKey }}", refs: []string{"www.1.p7b0d3zr5n6h", "3ad5e5ad4ad6"}}})},
		{"inspect-kinds", inspect(inspectAnyOptions{inspectOptions: inspectOptions{
			format: "{{json .}}", refs: []string{"ovnet", "node3", "dns"}}})},
		{"inspect-type-task", inspect(inspectAnyOptions{kind: "task", inspectOptions: inspectOptions{
			format: "{{.ID}} {{.Status.State}}", refs: []string{"www.1"}}})},
		{"inspect-type-service", inspect(inspectAnyOptions{kind: "service", inspectOptions: inspectOptions{
			format: "{{.Spec.Name}} {{.ID}}", refs: []string{"www"}}})},
		{"logs", func(ctx context.Context, out io.Writer) error {
			fake := &fakeAPI{taskLogsFunc: func(ref, tail string, follow bool) (string, error) {
				return "Listening on :80\nGET / from 10.255.0.2\n", nil
			}}
			return runLogs(ctx, fake, out, logsOptions{task: "www.1", tail: "all"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.run(context.Background(), &out); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			golden(t, tt.name, out.String())
		})
	}
}

// TestInspectAnyOrder checks which kind a reference resolves to, that a
// worker is not asked for cluster objects, and the failures.
func TestInspectAnyOrder(t *testing.T) {
	worker := newFakeAPI()
	worker.infoFunc = func() (api.Info, error) { return workerInfo, nil }
	worker.nodeFunc = func(string) (api.Node, error) {
		t.Error("a worker was asked for a node")
		return api.Node{}, api.ErrNotManager
	}
	// Asked without --type, this would end the search with its error.
	worker.serviceFunc = func(string) (api.Service, error) { return api.Service{}, api.ErrNotManager }
	ambiguous := newFakeAPI()
	ambiguous.networkFunc = func(string) (api.NetworkResource, error) {
		return api.NetworkResource{}, api.Conflict(`network "o" is ambiguous: 2 match`)
	}
	tests := []struct {
		name    string
		fake    *fakeAPI
		opts    inspectAnyOptions
		want    string
		wantErr string
		format  string // the template; {{.Name}} when empty
	}{
		{name: "a task name is a container", fake: newFakeAPI(), opts: inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{"www.1"}}},
			want: "/www.1.p7b0d3zr5n6hq1w8y2k4c9m0a"},
		{name: "a network name", fake: newFakeAPI(), opts: inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{"ovnet"}}},
			want: "ovnet"},
		{name: "a service before a task", fake: newFakeAPI(), opts: inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{"www"}}},
			format: "{{.Spec.Name}}", want: "www"},
		{name: "nothing", fake: newFakeAPI(), opts: inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{"www.1", "nosuch"}}},
			wantErr: "No such object: nosuch"},
		{name: "empty", fake: newFakeAPI(), opts: inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{""}}},
			wantErr: `No such object: ""`},
		{name: "--type keeps the kind's own error", fake: newFakeAPI(), opts: inspectAnyOptions{kind: "service", inspectOptions: inspectOptions{refs: []string{"www.1"}}},
			wantErr: "service www.1 not found"},
		{name: "unknown --type", fake: newFakeAPI(), opts: inspectAnyOptions{kind: "image", inspectOptions: inspectOptions{refs: []string{"www"}}},
			wantErr: `"image" is not a valid value for --type`},
		{name: "a worker: its own task", fake: worker, opts: inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{"www.1"}}},
			want: "/www.1.p7b0d3zr5n6hq1w8y2k4c9m0a"},
		{name: "a worker: no cluster objects", fake: worker, opts: inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{"www"}}},
			wantErr: "No such object: www"},
		{name: "a worker: --type service is refused by meshd", fake: worker, opts: inspectAnyOptions{kind: "service", inspectOptions: inspectOptions{refs: []string{"www"}}},
			wantErr: api.ErrNotManager.Error()},
		{name: "an ambiguous reference stops the search", fake: ambiguous, opts: inspectAnyOptions{inspectOptions: inspectOptions{refs: []string{"o"}}},
			wantErr: `network "o" is ambiguous: 2 match`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.format = cmp.Or(tt.format, "{{.Name}}")
			var out bytes.Buffer
			err := runInspectAny(context.Background(), tt.fake, &out, tt.opts)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				if out.Len() != 0 {
					t.Errorf("printed %q before failing", out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if got := strings.TrimSpace(out.String()); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLogsFlags checks what logs asks meshd for, and that a bad --tail
// fails before it is asked.
func TestLogsFlags(t *testing.T) {
	tests := []struct {
		name       string
		opts       logsOptions
		wantTail   string
		wantFollow bool
		wantErr    string
	}{
		{name: "all by default", opts: logsOptions{task: "www.1", tail: "all"}, wantTail: "all"},
		{name: "tail and follow", opts: logsOptions{task: "www.1", tail: "5", follow: true}, wantTail: "5", wantFollow: true},
		{name: "negative is all", opts: logsOptions{task: "www.1", tail: "-1"}, wantTail: "all"},
		{name: "bad tail", opts: logsOptions{task: "www.1", tail: "five"}, wantErr: `invalid value for --tail: "five"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := false
			fake := &fakeAPI{taskLogsFunc: func(ref, tail string, follow bool) (string, error) {
				asked = true
				if ref != tt.opts.task || tail != tt.wantTail || follow != tt.wantFollow {
					t.Errorf("asked for %s tail %q follow %v, want %s tail %q follow %v", ref, tail, follow, tt.opts.task, tt.wantTail, tt.wantFollow)
				}
				return "", nil
			}}
			err := runLogs(context.Background(), fake, io.Discard, tt.opts)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || asked {
					t.Errorf("got error %v (meshd asked: %v), want %q before asking", err, asked, tt.wantErr)
				}
				return
			}
			if err != nil || !asked {
				t.Errorf("got error %v (meshd asked: %v)", err, asked)
			}
		})
	}
	notHere := &fakeAPI{taskLogsFunc: func(string, string, bool) (string, error) {
		return "", api.Errorf(http.StatusConflict, "task www.2 runs on node2: its output is there")
	}}
	if err := runLogs(context.Background(), notHere, io.Discard, logsOptions{task: "www.2"}); err == nil || !errors.Is(err, err) ||
		err.Error() != "task www.2 runs on node2: its output is there" {
		t.Errorf("got %v, want meshd's error as it is", err)
	}
}
