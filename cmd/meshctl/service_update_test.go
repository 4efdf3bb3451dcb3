package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// updateFake is fakeAPI with service update and rollback.
type updateFake struct {
	*fakeAPI
	updateFunc   func(ref string, u api.ServiceUpdate) (api.Service, error)
	rollbackFunc func(ref string) (api.Service, error)
}

var _ serviceUpdateAPI = (*updateFake)(nil)

func (f *updateFake) UpdateService(_ context.Context, ref string, u api.ServiceUpdate) (api.Service, error) {
	return call2(f.updateFunc, ref, u)
}

func (f *updateFake) RollbackService(_ context.Context, ref string) (api.Service, error) {
	return call1(f.rollbackFunc, ref)
}

// parseUpdate parses service update's flags as the command does.
func parseUpdate(args []string, env map[string]string) (api.ServiceUpdate, error) {
	var opts serviceUpdateOptions
	cmd := &cobra.Command{}
	addServiceUpdateFlags(cmd, &opts)
	if err := cmd.ParseFlags(args); err != nil {
		return api.ServiceUpdate{}, err
	}
	return updateRequest(opts, cmd.Flags(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestServiceUpdateRequest(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    api.ServiceUpdate
		wantErr string
	}{
		{name: "nothing", args: nil},
		{name: "image and replicas", args: []string{"--image", "nginx:1.15", "--replicas", "5"},
			want: api.ServiceUpdate{Image: ptrTo("nginx:1.15"), Replicas: ptrTo(5)}},
		{name: "env", args: []string{"--env-add", "FOO=bar", "--env-add", "HOME", "--env-add", "UNSET", "--env-rm", "OLD"},
			want: api.ServiceUpdate{EnvAdd: []string{"FOO=bar", "HOME=/root"}, EnvRm: []string{"OLD"}}},
		{name: "ports", args: []string{"--publish-add", "9999:80", "--publish-rm", "8888", "--publish-rm", "5353/udp"},
			want: api.ServiceUpdate{PublishAdd: []api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 9999, PublishMode: "ingress"}},
				PublishRm: []api.PortConfig{{Protocol: "tcp", TargetPort: 8888, PublishedPort: 8888, PublishMode: "ingress"},
					{Protocol: "udp", TargetPort: 5353, PublishedPort: 5353, PublishMode: "ingress"}}}},
		{name: "networks", args: []string{"--network-add", "name=ovnet,alias=web", "--network-rm", "backend"},
			want: api.ServiceUpdate{NetworkAdd: []api.NetworkAttachment{{Target: "ovnet", Aliases: []string{"web"}}}, NetworkRm: []string{"backend"}}},
		{name: "update config", args: []string{"--update-parallelism", "2", "--update-delay", "1s", "--update-order", "start-first",
			"--update-failure-action", "rollback", "--update-monitor", "2s", "--rollback-parallelism", "0", "--rollback-monitor", "0"},
			want: api.ServiceUpdate{Update: &api.UpdateConfigChange{Parallelism: ptrTo(uint64(2)), Delay: ptrTo(time.Second),
				Order: ptrTo("start-first"), FailureAction: ptrTo("rollback"), Monitor: ptrTo(2 * time.Second)},
				Rollback: &api.UpdateConfigChange{Parallelism: ptrTo(uint64(0)), Monitor: ptrTo(time.Duration(0))}}},
		{name: "force", args: []string{"--force"}, want: api.ServiceUpdate{Force: true}},
		{name: "rollback", args: []string{"--rollback", "-d"}},

		{name: "bad order", args: []string{"--update-order", "x"}, wantErr: `invalid --update-order "x": want stop-first or start-first`},
		{name: "negative parallelism", args: []string{"--update-parallelism", "-1"},
			wantErr: `invalid argument "-1" for "--update-parallelism" flag: strconv.ParseUint: parsing "-1": invalid syntax`},
		{name: "negative delay", args: []string{"--update-delay", "-1s"}, wantErr: "invalid --update-delay -1s: want 0 or more"},
		{name: "negative monitor", args: []string{"--rollback-monitor", "-1s"}, wantErr: "invalid --rollback-monitor -1s: want 0 or more"},
		{name: "bad failure action", args: []string{"--update-failure-action", "retry"},
			wantErr: `invalid --update-failure-action "retry": want pause, continue or rollback`},
		{name: "a rollback does not roll back", args: []string{"--rollback-failure-action", "rollback"},
			wantErr: `invalid --rollback-failure-action "rollback": want pause or continue`},
		{name: "negative replicas", args: []string{"--replicas", "-1"}, wantErr: "invalid --replicas -1: want 0 or more"},
		{name: "empty image", args: []string{"--image", ""}, wantErr: "invalid --image: empty"},
		{name: "env without a key", args: []string{"--env-add", "=x"}, wantErr: `invalid environment variable "=x": want KEY=VALUE`},
		{name: "bad publish-rm", args: []string{"--publish-rm", "http"}, wantErr: `invalid --publish-rm "http": want PUBLISHED[/PROTOCOL]`},
		{name: "rollback and a change", args: []string{"--rollback", "--image", "nginx"}, wantErr: "--rollback cannot be combined with --image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUpdate(tt.args, map[string]string{"HOME": "/root"})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServiceCreateEnvAndUpdateConfig: create's -e/--env and --update-*
// flags reach the request; a bad one is refused before meshd is asked.
func TestServiceCreateEnvAndUpdateConfig(t *testing.T) {
	parse := func(args ...string) (api.ServiceCreate, error) {
		var opts serviceCreateOptions
		cmd := &cobra.Command{}
		addServiceCreateFlags(cmd, &opts)
		if err := cmd.ParseFlags(args); err != nil {
			return api.ServiceCreate{}, err
		}
		return createRequest(opts, cmd.Flags(), cmd.Flags().Args(), cmd.Flags().ArgsLenAtDash(),
			func(k string) (string, bool) { return map[string]string{"USER": "root"}[k], k == "USER" })
	}
	got, err := parse("--name", "www", "-e", "FOO=bar", "--env", "A=1=2", "-e", "USER", "--update-order", "start-first", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	want := api.ServiceCreate{Name: "www", Image: "nginx:latest", EndpointMode: "vip", Env: []string{"FOO=bar", "A=1=2", "USER=root"},
		UpdateConfig: &api.UpdateConfig{Parallelism: 1, Order: "start-first", FailureAction: "pause", Monitor: 5 * time.Second}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request mismatch (-want +got):\n%s", diff)
	}
	got, err = parse("--name", "www", "nginx")
	if err != nil || got.Env != nil || got.UpdateConfig != nil || got.RollbackConfig != nil {
		t.Errorf("no -e, no --update-*: got %+v, %v; want no env and meshd's default configs", got, err)
	}
	for _, bad := range [][]string{
		{"-e", "=x"},
		{"-e", "A B=1"},
		{"--rollback-order", "later"},
		{"--update-monitor", "-5s"},
	} {
		if _, err := parse(append(append([]string{"--name", "www"}, bad...), "nginx")...); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("service create %q: got error %v, want one line", bad, err)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// rollingFake is a service www of 3 tasks under an update: each poll of
// the service moves it one step (a task replaced), until the update is
// done with the state final; the tasks follow.
func rollingFake(t *testing.T, final string, message string, mid *api.UpdateStatus) (*updateFake, *int) {
	t.Helper()
	const id = "9d2k4m6p8r0t1v3x5z7b9c1e3"
	polls := 0
	step := func() int { return min(polls, 3) }
	svcAt := func() api.Service {
		svc := api.Service{ID: id, Name: "www", Image: "nginx:1.15", Replicas: 3, Running: 3, Reachable: 3,
			UpdateStatus: &api.UpdateStatus{State: api.UpdateUpdating, Message: "update in progress"}}
		switch {
		case step() == 3:
			svc.UpdateStatus = &api.UpdateStatus{State: final, Message: message}
		case step() == 2 && mid != nil:
			svc.UpdateStatus = mid
		}
		return svc
	}
	fake := &updateFake{fakeAPI: newFakeAPI()}
	fake.serviceFunc = func(string) (api.Service, error) {
		polls++
		return svcAt(), nil
	}
	fake.tasksFunc = func(service, _ string) ([]api.Task, error) {
		if service != "www" && service != id {
			t.Errorf("Tasks(%q), want www's", service)
		}
		var tasks []api.Task
		for slot := 1; slot <= 3; slot++ {
			img := "nginx:1.14-alpine"
			if slot <= step() {
				img = "nginx:1.15"
				tasks = append(tasks, api.Task{ID: "old" + itoa(slot), ServiceName: "www", Slot: slot, Image: "nginx:1.14-alpine",
					DesiredState: "shutdown", Status: api.TaskStatus{State: "shutdown", Message: "shutdown for update"}})
			}
			tasks = append(tasks, api.Task{ID: img + itoa(slot), ServiceName: "www", Slot: slot, Image: img, DesiredState: "running",
				Status: api.TaskStatus{State: "running"}})
		}
		return tasks, nil
	}
	fake.updateFunc = func(ref string, u api.ServiceUpdate) (api.Service, error) {
		if ref != "www" || u.Image == nil || *u.Image != "nginx:1.15" {
			t.Errorf("UpdateService(%q, %+v), want www to nginx:1.15", ref, u)
		}
		return svcAt(), nil
	}
	fake.rollbackFunc = func(ref string) (api.Service, error) {
		if ref != "www" {
			t.Errorf("RollbackService(%q), want www", ref)
		}
		return api.Service{ID: id, Name: "www", UpdateStatus: &api.UpdateStatus{State: api.UpdateRollbackStarted, Message: "manually requested rollback"}}, nil
	}
	return fake, &polls
}

func itoa(n int) string { return string(rune('0' + n)) }

// TestServiceUpdateGolden: update and rollback print the service's name
// (and a rollback's reason), then wait for every task to be replaced and
// print create's progress; detached, only the name.
func TestServiceUpdateGolden(t *testing.T) {
	old := stableFor
	stableFor = 0
	t.Cleanup(func() { stableFor = old })
	update := serviceUpdateOptions{service: "www", req: api.ServiceUpdate{Image: ptrTo("nginx:1.15")}, wait: waitOptions{timeout: 10 * time.Second}}
	tests := []struct {
		name      string
		final     string
		message   string
		run       func(ctx context.Context, cl serviceUpdateAPI, out *bytes.Buffer) error
		wantErr   string
		wantPolls int               // at least
		mid       *api.UpdateStatus // the status on the second poll, if not updating
	}{
		{name: "service-update", final: api.UpdateCompleted, message: "update completed", wantPolls: 3,
			run: func(ctx context.Context, cl serviceUpdateAPI, out *bytes.Buffer) error {
				return runServiceUpdate(ctx, cl, out, update)
			}},
		{name: "service-update-detach", final: api.UpdateCompleted,
			run: func(ctx context.Context, cl serviceUpdateAPI, out *bytes.Buffer) error {
				o := update
				o.wait.detach = true
				return runServiceUpdate(ctx, cl, out, o)
			}},
		{name: "service-update-paused", final: api.UpdatePaused, message: "update paused due to failure or early termination of task 7yl0emw4fe3xq2ha0nc8w1s5t",
			wantErr: "service update paused: update paused due to failure or early termination of task 7yl0emw4fe3xq2ha0nc8w1s5t", wantPolls: 3,
			run: func(ctx context.Context, cl serviceUpdateAPI, out *bytes.Buffer) error {
				return runServiceUpdate(ctx, cl, out, update)
			}},
		{name: "service-update-rolled-back", final: api.UpdateRollbackCompleted, message: "rollback completed",
			wantErr: "service rolled back: rollback completed", wantPolls: 3,
			mid: &api.UpdateStatus{State: api.UpdateRollbackStarted, Message: "update rolled back due to failure or early termination of task 7yl0emw4fe3xq2ha0nc8w1s5t"},
			run: func(ctx context.Context, cl serviceUpdateAPI, out *bytes.Buffer) error {
				return runServiceUpdate(ctx, cl, out, update)
			}},
		{name: "service-rollback", final: api.UpdateRollbackCompleted, message: "rollback completed", wantPolls: 3,
			run: func(ctx context.Context, cl serviceUpdateAPI, out *bytes.Buffer) error {
				return runServiceRollback(ctx, cl, out, serviceRollbackOptions{service: "www", wait: waitOptions{timeout: 10 * time.Second}})
			}},
		{name: "service-update-rollback", final: api.UpdateRollbackCompleted, message: "rollback completed", wantPolls: 3,
			run: func(ctx context.Context, cl serviceUpdateAPI, out *bytes.Buffer) error {
				return runServiceUpdate(ctx, cl, out, serviceUpdateOptions{service: "www", rollback: true, wait: waitOptions{timeout: 10 * time.Second}})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, polls := rollingFake(t, tt.final, tt.message, tt.mid)
			var out bytes.Buffer
			err := tt.run(context.Background(), fake, &out)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("got error %v, want %q", err, tt.wantErr)
				}
				out.WriteString("error: " + err.Error() + "\n")
			} else if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if *polls < tt.wantPolls {
				t.Errorf("the wait ended after %d polls, before the update was done", *polls)
			}
			golden(t, tt.name, out.String())
		})
	}
}

// TestServiceUpdateErrors: meshd's refusal is the one line printed, and
// nothing else is.
func TestServiceUpdateErrors(t *testing.T) {
	refuse := errors.New("service nope not found")
	fake := &updateFake{fakeAPI: newFakeAPI(),
		updateFunc: func(string, api.ServiceUpdate) (api.Service, error) { return api.Service{}, refuse },
		rollbackFunc: func(string) (api.Service, error) {
			return api.Service{}, errors.New("service www does not have a previous spec")
		}}
	var out bytes.Buffer
	if err := runServiceUpdate(context.Background(), fake, &out, serviceUpdateOptions{service: "nope", wait: waitOptions{detach: true}}); err != refuse {
		t.Errorf("update: got error %v, want meshd's", err)
	}
	err := runServiceRollback(context.Background(), fake, &out, serviceRollbackOptions{service: "www"})
	if err == nil || err.Error() != "service www does not have a previous spec" {
		t.Errorf("rollback: got error %v, want Docker's", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed %q on a refusal, want nothing", out.String())
	}
}

// TestServiceInspectUpdated: inspect shows the environment, the configs,
// the previous spec and the update's status, with Docker's names.
func TestServiceInspectUpdated(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	svc := api.Service{ID: "9d2k4m6p8r0t1v3x5z7b9c1e3", Name: "www", Image: "nginx:1.15", Env: []string{"FOO=bar"}, Replicas: 3,
		Endpoint:       api.Endpoint{Mode: "vip", Ports: []api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8888, PublishMode: "ingress"}}},
		RestartPolicy:  api.RestartPolicy{Condition: "any", Delay: 5 * time.Second},
		UpdateConfig:   api.UpdateConfig{Parallelism: 1, Delay: time.Second, FailureAction: "pause", Order: "stop-first"},
		RollbackConfig: api.DefaultUpdateConfig(),
		PreviousSpec: &api.ServiceSpec{Image: "nginx:1.14-alpine", Env: []string{"FOO=bar"}, Replicas: 3,
			Ports:         []api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8888, PublishMode: "ingress"}},
			RestartPolicy: api.RestartPolicy{Condition: "any", Delay: 5 * time.Second}, UpdateConfig: api.DefaultUpdateConfig(), RollbackConfig: api.DefaultUpdateConfig()},
		UpdateStatus: &api.UpdateStatus{State: "completed", StartedAt: t0, CompletedAt: t0.Add(7 * time.Second), Message: "update completed"},
		Version:      2, CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0, Running: 3, Reachable: 3}
	get := asResource(func(context.Context, string) (api.Service, error) { return svc, nil })
	var out bytes.Buffer
	if err := runInspect(context.Background(), get, &out, inspectOptions{refs: []string{"www"}}); err != nil {
		t.Fatal(err)
	}
	out.WriteString("--- --format\n")
	if err := runInspect(context.Background(), get, &out, inspectOptions{refs: []string{"www"},
		format: "{{.UpdateStatus.State}} {{.PreviousSpec.TaskTemplate.ContainerSpec.Image}} {{json .Spec.TaskTemplate.ContainerSpec.Env}}"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "service-inspect-updated", out.String())
}

// TestUpdateWaitFollowsTheStatus: a new task that fails while the update
// rolls does not end the wait with its own error: the update's status
// (paused here) says what became of the update.
func TestUpdateWaitFollowsTheStatus(t *testing.T) {
	fake := &updateFake{fakeAPI: newFakeAPI()}
	polls := 0
	fake.serviceFunc = func(string) (api.Service, error) {
		polls++
		st := &api.UpdateStatus{State: api.UpdateUpdating, Message: "update in progress"}
		if polls > 2 {
			st = &api.UpdateStatus{State: api.UpdatePaused, Message: "update paused due to failure or early termination of task n1"}
		}
		return api.Service{ID: "s", Name: "www", Replicas: 1, UpdateStatus: st}, nil
	}
	fake.tasksFunc = func(string, string) ([]api.Task, error) {
		return []api.Task{{ID: "n1", ServiceName: "www", Slot: 1, DesiredState: "running", Status: api.TaskStatus{State: "failed", Err: "task: non-zero exit (3)"}}}, nil
	}
	fake.updateFunc = func(string, api.ServiceUpdate) (api.Service, error) { return api.Service{ID: "s", Name: "www"}, nil }
	var out bytes.Buffer
	err := runServiceUpdate(context.Background(), fake, &out, serviceUpdateOptions{service: "www", wait: waitOptions{timeout: 5 * time.Second}})
	if want := "service update paused: update paused due to failure or early termination of task n1"; err == nil || err.Error() != want {
		t.Errorf("got error %v, want %q", err, want)
	}
	// A create's wait ends on the failure at once.
	err = waitConverged(context.Background(), fake, &out, "s", 5*time.Second, nil)
	if want := "service www: task www.1 failed: task: non-zero exit (3)"; err == nil || err.Error() != want {
		t.Errorf("create's wait: got error %v, want %q", err, want)
	}
}
