package api

import (
	"net/http"
	"testing"
)

func TestMatchContainerName(t *testing.T) {
	cur := Task{ID: "p7b0d3zr5n6hq1w8y2k4c9m0a", ServiceName: "www", Slot: 1, DesiredState: TaskRunning}
	old := Task{ID: "p7b1aaaaaaaaaaaaaaaaaaaaa", ServiceName: "www", Slot: 1, DesiredState: TaskShutdown}
	other := Task{ID: "q1", ServiceName: "www", Slot: 2, DesiredState: TaskRunning}
	tasks := []Task{cur, old, other}
	tests := []struct {
		ref, want string
		code      int
	}{
		{ref: "www.1.p7b0d3zr5n6h", want: cur.ID}, // what service ps -q gives, after www.1.
		{ref: "www.1.p7b1", want: old.ID},
		{ref: "www.1", want: cur.ID},
		{ref: "www.1.p7b", code: http.StatusBadRequest}, // both of the slot's
		{ref: "www.1.", code: http.StatusNotFound},      // no ID at all
		{ref: "www.2.p7b0", code: http.StatusNotFound},  // another slot's name
		{ref: "www.", code: http.StatusNotFound},
	}
	for _, tt := range tests {
		got, err := MatchContainer(tasks, tt.ref)
		if tt.code != 0 {
			if StatusCode(err) != tt.code {
				t.Errorf("%q: got %v (%d), want a %d", tt.ref, err, StatusCode(err), tt.code)
			}
			continue
		}
		if err != nil || got.ID != tt.want {
			t.Errorf("%q: got %s, %v, want %s", tt.ref, got.ID, err, tt.want)
		}
	}
}

func TestNewContainer(t *testing.T) {
	svc := Service{ID: "s", Name: "sh", Endpoint: Endpoint{Ports: []PortConfig{
		{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: PublishHost},
		{Protocol: "udp", TargetPort: 53, PublishedPort: 5353, PublishMode: PublishIngress},
	}}}
	task := Task{ID: "t", ServiceID: "s", ServiceName: "sh", Slot: 1, Args: []string{"sh", "-c", "exit 3"}}
	tests := []struct {
		name      string
		status    TaskStatus
		state     string
		exit      string // "" when unknown
		hostPorts int
	}{
		{"starting", TaskStatus{State: TaskStarting}, "created", "0", 0},
		{"running", TaskStatus{State: TaskRunning, PID: 7}, "running", "0", 1},
		{"exited 3", TaskStatus{State: TaskFailed, Err: "task: non-zero exit (3)"}, "exited", "3", 0},
		{"complete", TaskStatus{State: TaskComplete}, "exited", "0", 0},
		{"failed to start", TaskStatus{State: TaskFailed, Err: "start task t: exec: no such file"}, "exited", "", 0},
		{"stopped by its node", TaskStatus{State: TaskShutdown}, "exited", "", 0},
		{"stopped, its process ended by the SIGTERM", TaskStatus{State: TaskShutdown, ExitCode: new(143)}, "exited", "143", 0},
		{"exited 3, its code reported", TaskStatus{State: TaskFailed, Err: "task: non-zero exit (3)", ExitCode: new(3)}, "exited", "3", 0},
	}
	for _, tt := range tests {
		task.Status = tt.status
		c := NewContainer(task, svc)
		exit := ""
		if c.State.ExitCode != nil {
			exit = itoa(*c.State.ExitCode)
		}
		if c.State.Status != tt.state || exit != tt.exit || len(c.NetworkSettings.Ports) != tt.hostPorts {
			t.Errorf("%s: got %s exit %q ports %v, want %s exit %q and %d host ports", tt.name, c.State.Status, exit,
				c.NetworkSettings.Ports, tt.state, tt.exit, tt.hostPorts)
		}
		if c.Path != "sh" || len(c.Args) != 2 || c.Name != "/sh.1.t" || c.Config.Labels[LabelTaskName] != "sh.1.t" {
			t.Errorf("%s: got %s %q named %s, want sh [-c exit 3] named /sh.1.t", tt.name, c.Path, c.Args, c.Name)
		}
	}
}
