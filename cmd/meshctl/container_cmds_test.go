package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// standaloneContainers are node1's standalone containers as meshd shows
// them: "web" (jpetazzo/trainingwheels, run -P, and -p 127.0.0.1:8080:5000
// and 53/udp) and "idle", which publishes nothing.
func standaloneContainers() map[string]api.Container {
	web := api.Task{ID: "w3b0c0n7a1n3r5t7v9x1z3b5d", NodeID: testInfo.NodeID, NodeName: "node1", Image: "jpetazzo/trainingwheels",
		DesiredState: api.TaskRunning, CreatedAt: t0, Status: api.TaskStatus{State: api.TaskRunning, PID: 7070, Timestamp: testNow},
		Standalone: &api.Standalone{Name: "web", Ports: []api.ContainerPort{
			{Proto: "udp", HostPort: 32769, Port: 53},
			{Proto: "tcp", HostPort: 32768, Port: 5000},
			{Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8080, Port: 5000},
			{Proto: "tcp", HostPort: 32770, Port: 443},
		}}}
	idle := api.Task{ID: "1d1ec0n7a1n3r5t7v9x1z3b5d", NodeID: testInfo.NodeID, NodeName: "node1", Image: "alpine",
		DesiredState: api.TaskRunning, CreatedAt: t0, Status: api.TaskStatus{State: api.TaskRunning, PID: 7171, Timestamp: testNow},
		Standalone: &api.Standalone{Name: "idle"}}
	return map[string]api.Container{"web": api.NewContainer(web, api.Service{}), "idle": api.NewContainer(idle, api.Service{})}
}

// TestPortGolden renders docker port's two forms.
func TestPortGolden(t *testing.T) {
	fake := newFakeAPI()
	fake.containerFunc = func(ref string) (api.Container, error) {
		if c, ok := standaloneContainers()[ref]; ok {
			return c, nil
		}
		return api.Container{}, api.NotFound("No such container: %s", ref)
	}
	for _, tt := range []struct {
		name string
		opts portOptions
	}{
		{"port", portOptions{container: "web"}},
		{"port-one", portOptions{container: "web", port: "5000"}},
		{"port-one-udp", portOptions{container: "web", port: "53/udp"}},
		{"port-none", portOptions{container: "idle"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := runPort(context.Background(), fake, &out, tt.opts); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			golden(t, tt.name, out.String())
		})
	}
}

// TestPortErrors checks docker port's errors; a bad port fails before
// meshd is asked.
func TestPortErrors(t *testing.T) {
	for _, tt := range []struct {
		opts    portOptions
		wantErr string
	}{
		{portOptions{container: "web", port: "80"}, "Error: No public port '80' published for web"},
		{portOptions{container: "web", port: "5000/udp"}, "Error: No public port '5000/udp' published for web"},
		{portOptions{container: "idle", port: "80/tcp"}, "Error: No public port '80/tcp' published for idle"},
		{portOptions{container: "web", port: "http"}, `Error: invalid port (http): strconv.ParseUint: parsing "http": invalid syntax`},
		{portOptions{container: "nope"}, "No such container: nope"},
	} {
		fake := newFakeAPI()
		asked := false
		fake.containerFunc = func(ref string) (api.Container, error) {
			asked = true
			if c, ok := standaloneContainers()[ref]; ok {
				return c, nil
			}
			return api.Container{}, api.NotFound("No such container: %s", ref)
		}
		var out bytes.Buffer
		err := runPort(context.Background(), fake, &out, tt.opts)
		if errString(err) != tt.wantErr {
			t.Errorf("port %s %s: got error %v, want %q", tt.opts.container, tt.opts.port, err, tt.wantErr)
		}
		if out.Len() != 0 {
			t.Errorf("port %s %s: got output %q, want none", tt.opts.container, tt.opts.port, out.String())
		}
		if tt.opts.port == "http" && asked {
			t.Errorf("port %s %s: meshd was asked, want the port refused first", tt.opts.container, tt.opts.port)
		}
	}
}

// TestNaturalCompare checks the order docker port prints in.
func TestNaturalCompare(t *testing.T) {
	got := []string{"8080/tcp -> 0.0.0.0:1", "443/tcp -> 0.0.0.0:2", "53/udp -> 0.0.0.0:3", "53/tcp -> 0.0.0.0:3", "0080/tcp", "a", ""}
	want := []string{"", "53/tcp -> 0.0.0.0:3", "53/udp -> 0.0.0.0:3", "0080/tcp", "443/tcp -> 0.0.0.0:2", "8080/tcp -> 0.0.0.0:1", "a"}
	slices.SortFunc(got, naturalCompare)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order mismatch (-want +got):\n%s", diff)
	}
}

// TestContainerCommands checks stop, start, restart and rm: each ref is
// printed as given once done, a failure does not stop the others, and
// each is in the one-line error.
func TestContainerCommands(t *testing.T) {
	tests := []struct {
		name    string
		run     func(context.Context, containerAPI, io.Writer) error
		calls   []string
		out     string
		wantErr string
	}{
		{name: "stop", run: func(ctx context.Context, cl containerAPI, out io.Writer) error {
			return runStop(ctx, cl, out, stopOptions{refs: []string{"es", "redis"}})
		}, calls: []string{"stop es timeout=default", "stop redis timeout=default"}, out: "es\nredis\n"},
		{name: "stop -t 0", run: func(ctx context.Context, cl containerAPI, out io.Writer) error {
			return runStop(ctx, cl, out, stopOptions{refs: []string{"es"}, timeout: new(0)})
		}, calls: []string{"stop es timeout=0"}, out: "es\n"},
		{name: "start", run: func(ctx context.Context, cl containerAPI, out io.Writer) error {
			return runStart(ctx, cl, out, []string{"es", "nope", "redis"})
		}, calls: []string{"start es", "start nope", "start redis"}, out: "es\nredis\n",
			wantErr: "No such container: nope"},
		{name: "restart", run: func(ctx context.Context, cl containerAPI, out io.Writer) error {
			return runRestart(ctx, cl, out, stopOptions{refs: []string{"es", "nope"}, timeout: new(3)})
		}, calls: []string{"stop es timeout=3", "start es", "stop nope timeout=3"}, out: "es\n",
			wantErr: "No such container: nope"},
		{name: "rm", run: func(ctx context.Context, cl containerAPI, out io.Writer) error {
			return runContainerRm(ctx, cl, out, containerRmOptions{refs: []string{"es", "nope", "redis"}})
		}, calls: []string{"rm es force=false", "rm nope force=false", "rm redis force=false"}, out: "es\nredis\n",
			wantErr: "No such container: nope"},
		{name: "deck: rm -f", run: func(ctx context.Context, cl containerAPI, out io.Writer) error {
			return runContainerRm(ctx, cl, out, containerRmOptions{refs: []string{"redis"}, force: true})
		}, calls: []string{"rm redis force=true"}, out: "redis\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeAPI()
			var calls []string
			fail := func(ref string) error {
				if ref == "nope" {
					return api.NotFound("No such container: %s", ref)
				}
				return nil
			}
			fake.stopContainerFunc = func(ref string, req api.ContainerStop) error {
				timeout := "default"
				if req.Timeout != nil {
					timeout = fmt.Sprint(*req.Timeout)
				}
				if req.ExitCode != nil {
					t.Errorf("stop %s sent an exit code, want none: only a foreground run has one", ref)
				}
				calls = append(calls, "stop "+ref+" timeout="+timeout)
				return fail(ref)
			}
			fake.startContainerFunc = func(ref string) (api.Task, error) {
				calls = append(calls, "start "+ref)
				return api.Task{Status: api.TaskStatus{State: api.TaskRunning, PID: 4242}}, fail(ref)
			}
			fake.removeContainerFunc = func(ref string, force bool) error {
				calls = append(calls, fmt.Sprintf("rm %s force=%v", ref, force))
				return fail(ref)
			}
			var out bytes.Buffer
			err := tt.run(context.Background(), fake, &out)
			if errString(err) != tt.wantErr {
				t.Errorf("got error %v, want %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.calls, calls); diff != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", diff)
			}
			if out.String() != tt.out {
				t.Errorf("got output %q, want %q", out.String(), tt.out)
			}
		})
	}
}

// TestStartWaits checks that start returns once the container runs: a
// container on a swarm overlay is started by its node's agent after
// meshd answers.
func TestStartWaits(t *testing.T) {
	fake := newFakeAPI()
	task := api.Task{ID: standaloneID, NodeID: testInfo.NodeID, DesiredState: api.TaskRunning,
		Standalone: &api.Standalone{Name: "c1"}, Status: api.TaskStatus{State: api.TaskStarting}}
	fake.startContainerFunc = func(string) (api.Task, error) { return task, nil }
	asked := 0
	fake.tasksFunc = func(string, string) ([]api.Task, error) {
		asked++
		t := task
		t.Status.State, t.Status.PID = api.TaskRunning, 77
		return []api.Task{t}, nil
	}
	var out bytes.Buffer
	if err := runStart(context.Background(), fake, &out, []string{"c1"}); err != nil {
		t.Fatal(err)
	}
	if asked != 1 || out.String() != "c1\n" {
		t.Errorf("asked for the tasks %d times, printed %q; want once, c1", asked, out.String())
	}
}

// TestContainerCommandLines checks the flags and argument errors of the
// container commands, through meshctl's own command tree.
func TestContainerCommandLines(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"run"}, `"meshctl run" requires at least 1 argument (see 'meshctl run --help')`},
		{[]string{"stop"}, `"meshctl stop" requires at least 1 argument (see 'meshctl stop --help')`},
		{[]string{"stop", "-t", "soon", "es"}, `invalid argument "soon" for "-t, --time" flag`},
		{[]string{"restart"}, `"meshctl restart" requires at least 1 argument`},
		{[]string{"start"}, `"meshctl start" requires at least 1 argument`},
		{[]string{"rm"}, `"meshctl rm" requires at least 1 argument`},
		{[]string{"port"}, `"meshctl port" requires at least 1 and at most 2 arguments (see 'meshctl port --help')`},
		{[]string{"port", "web", "80", "81"}, `"meshctl port" requires at least 1 and at most 2 arguments`},
		{[]string{"network", "connect", "dev"}, `"meshctl network connect" requires exactly 2 arguments (see 'meshctl network connect --help')`},
		{[]string{"network", "connect", "--ip", "300.1.1.1", "dev", "es"}, "invalid IPv4 address: 300.1.1.1"},
		{[]string{"network", "disconnect", "dev"}, `"meshctl network disconnect" requires exactly 2 arguments`},
		// Past the checks: the meshd that is not there answers.
		{[]string{"stop", "--timeout", "5", "es"}, "cannot reach meshd"},
		{[]string{"rm", "-f", "es"}, "cannot reach meshd"},
		{[]string{"network", "disconnect", "-f", "dev", "es"}, "cannot reach meshd"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := execute(t, append([]string{"--socket", "/nonexistent/meshd.sock"}, tt.args...)...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one starting with %q", err, tt.wantErr)
			}
			if out != "" {
				t.Errorf("got output %q, want none", out)
			}
		})
	}
}
