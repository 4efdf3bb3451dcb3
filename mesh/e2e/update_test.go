package e2e

import (
	"strings"
	"testing"
	"time"
)

// strict are the curl flags of a load whose connections must be answered
// before the first SYN would be sent again (1 s): a connection that lands
// on no backend for a moment, which the retransmission would hide, fails.
var strict = []string{"--connect-timeout", "0.9"}

// strictLoad is steadyLoad with strict connections.
func (l *testLab) strictLoad(t *testing.T, d time.Duration, rate int, urls ...string) *load {
	t.Helper()
	return l.startLoad(t, d, rate, strict, urls)
}

// TestRollingUpdate updates a published service's image one task at a
// time, then rolls it back, then updates it again two at a time, each
// new task started before its old one stops, while a client sends 10 requests a second
// through every node: no request fails, each task ends on the new image
// (then the old one again), and the replaced tasks stay as their slots'
// history.
func TestRollingUpdate(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "3", "--publish", "8888:80", "nginx:1.14-alpine")
	for _, n := range []string{"node1", "node2", "node3"} {
		eventually(t, 15*time.Second, "three backends at weight 1 on "+n, func() (bool, string) {
			w, out := l.ingressBackends(n)
			return strings.Join(w, " ") == "1 1 1", out
		})
	}
	urls := []string{"http://192.168.33.10:8888/", "http://192.168.33.11:8888/", "http://192.168.33.12:8888/"}
	// images are the service's tasks' images by desired state.
	images := func() (map[string]int, string) {
		out, _ := l.on("node1", "service", "ps", "www", "--format", "{{.Image}} {{.DesiredState}}")
		n := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			n[line]++
		}
		return n, out
	}
	steps := []struct {
		name    string
		args    []string
		want    []string // lines of its output, in order
		image   string   // every running task's after it
		history string   // the image of the tasks it shut down
		status  string   // UpdateStatus.State after it
	}{
		{"update", []string{"service", "update", "--image", "nginx:1.15", "--update-parallelism", "1", "--update-delay", "1s", "www"},
			[]string{"www", "overall progress: 3 out of 3 tasks", "verify: Service converged"}, "nginx:1.15", "nginx:1.14-alpine", "completed"},
		{"rollback", []string{"service", "rollback", "www"},
			[]string{"www", "rollback: manually requested rollback", "overall progress: 3 out of 3 tasks", "verify: Service converged"},
			"nginx:1.14-alpine", "nginx:1.15", "rollback_completed"},
		{"update start-first", []string{"service", "update", "--image", "nginx:1.15", "--update-order", "start-first", "--update-parallelism", "2", "www"},
			[]string{"www", "overall progress: 3 out of 3 tasks", "verify: Service converged"}, "nginx:1.15", "nginx:1.14-alpine", "completed"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			ld := l.openLoad(t, 10, strict, urls...)
			time.Sleep(2 * time.Second) // load generation, not synchronisation: requests before the update too
			start := time.Now()
			out := l.must(t, append([]string{"--node", "node1"}, s.args...)...)
			took := time.Since(start)
			t.Logf("%s (%s):\n%s", strings.Join(s.args, " "), took.Round(100*time.Millisecond), out)
			rest := out
			for _, w := range s.want {
				i := strings.Index(rest, w+"\n")
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			// Requests after the update too: what its last stopped task
			// leaves behind (a backend gone, a connection tracked) shows.
			ld.end(5 * time.Second)
			ok, failed := ld.wait(t)
			t.Logf("%d requests answered, %d failed", ok, failed)
			if failed > 0 || ok < ld.requested()*9/10 {
				t.Errorf("%d requests failed, %d answered, during the %s: want none failed", failed, ok, s.name)
			}
			// The update is done: each slot runs the image, its
			// predecessor shut down as its history.
			n, ps := images()
			if n[s.image+" Running"] != 3 || n[s.history+" Shutdown"] < 3 {
				t.Errorf("after the %s, tasks by image and desired state %v, want 3 %s running and 3 %s shut down:\n%s", s.name, n, s.image, s.history, ps)
			}
			table := l.must(t, "--node", "node1", "service", "ps", "www")
			t.Logf("service ps www:\n%s", table)
			if strings.Count(table, `\_ www.`) < 3 {
				t.Errorf("service ps lists no history rows:\n%s", table)
			}
			st := strings.TrimSpace(l.must(t, "--node", "node1", "service", "inspect", "www", "--format", "{{.UpdateStatus.State}} {{.PreviousSpec.TaskTemplate.ContainerSpec.Image}}"))
			if want := s.status + " " + s.history; st != want {
				t.Errorf("service inspect: %q, want %q", st, want)
			}
		})
	}
}

// TestServiceEnv: -e reaches a host command's environment, and inspect
// shows it; update --env-add changes it in the replacing task.
func TestServiceEnv(t *testing.T) {
	l := newLab(t, 1)
	l.must(t, "--node", "node1", "service", "create", "--name", "envy", "-e", "FOO=bar", "--", "sh", "-c", `echo "FOO is $FOO"; sleep 1000`)
	logs := func() (bool, string) {
		out, _ := l.onNode("node1", "sh", "-c", "cat /var/run/meshd/tasks/*/task.log")
		return true, out
	}
	eventually(t, 10*time.Second, "the task printed its FOO", func() (bool, string) {
		_, out := logs()
		return strings.Contains(out, "FOO is bar\n"), out
	})
	if got := strings.TrimSpace(l.must(t, "--node", "node1", "service", "inspect", "envy", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}")); got != `["FOO=bar"]` {
		t.Errorf("service inspect .Env: %s, want [\"FOO=bar\"]", got)
	}
	out := l.must(t, "--node", "node1", "service", "update", "--env-add", "FOO=baz", "envy")
	t.Logf("service update --env-add:\n%s", out)
	eventually(t, 10*time.Second, "the replacing task printed the new FOO", func() (bool, string) {
		_, out := logs()
		return strings.Contains(out, "FOO is baz\n"), out
	})
}

// TestServiceUpdateRefusals: bad input to update and rollback is one
// line and changes nothing.
func TestServiceUpdateRefusals(t *testing.T) {
	l := newLab(t, 1)
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--publish", "8888:80", "nginx:1.14-alpine")
	l.must(t, "--node", "node1", "service", "create", "--name", "agent", "--mode", "global", "whoami")
	version := func() string {
		return strings.TrimSpace(l.must(t, "--node", "node1", "service", "inspect", "www", "agent", "--format", "{{.Version.Index}} {{.Spec.TaskTemplate.ContainerSpec.Image}}"))
	}
	before := version()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "update", "--image", "nginx:1.15", "nope"}, "service nope not found"},
		{[]string{"service", "update", "--update-order", "x", "www"}, `invalid --update-order "x": want stop-first or start-first`},
		{[]string{"service", "update", "--update-parallelism", "-1", "www"}, `invalid argument "-1" for "--update-parallelism" flag`},
		{[]string{"service", "update", "--replicas", "2", "agent"}, "replicas can only be used with replicated mode"},
		{[]string{"service", "update", "--network-add", "nonet", "www"}, "network nonet not found"},
		{[]string{"service", "update", "--publish-rm", "9999", "www"}, "port 9999/tcp is not published by service www"},
		{[]string{"service", "update", "--image", "postgres:16", "www"}, "postgres:16"},
		{[]string{"service", "rollback", "www"}, "service www does not have a previous spec"},
	} {
		out, err := l.on("node1", tt.args...)
		t.Logf("meshctl %s: %s", strings.Join(tt.args, " "), strings.TrimSpace(out))
		if err == nil || !strings.Contains(out, tt.want) || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("meshctl %s: err %v, output %q; want one line with %q", strings.Join(tt.args, " "), err, out, tt.want)
		}
	}
	if after := version(); after != before {
		t.Errorf("services changed by refused updates: %q, was %q", after, before)
	}
}

// TestUpdateContinuesUnderANewLeader kills the leader of three managers
// in the middle of a rolling update (after its first batch, during its
// update delay): the manager that leads next finishes the update from
// the replicated state, and the published port keeps answering.
func TestUpdateContinuesUnderANewLeader(t *testing.T) {
	l := newLabWith(t, 3, "--managers", "3")
	eventually(t, 10*time.Second, "node ls: three managers", func() (bool, string) {
		out, _ := l.on("node1", "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}")
		return strings.Count(out, "Reachable") == 2 && strings.Count(out, "Leader") == 1, out
	})
	if leader := l.leaderOf("node1"); leader != "node1" {
		t.Fatalf("leader after lab up: %q, want node1", leader)
	}
	// The leader runs no task: its crash takes none with it.
	l.must(t, "--node", "node1", "node", "update", "--availability", "drain", "node1")
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "2", "--publish", "8888:80", "nginx:1.14-alpine")
	for _, n := range []string{"node2", "node3"} {
		eventually(t, 15*time.Second, "two backends at weight 1 on "+n, func() (bool, string) {
			w, out := l.ingressBackends(n)
			return strings.Join(w, " ") == "1 1", out
		})
	}
	running := func(node string) (map[string]int, string) {
		out, _ := l.on(node, "service", "ps", "www", "--format", "{{.Image}} {{.DesiredState}} {{.CurrentState}}")
		n := map[string]int{}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[1] == "Running" && f[2] == "Running" {
				n[f[0]]++
			}
		}
		return n, out
	}
	ld := l.strictLoad(t, 30*time.Second, 10, "http://192.168.33.11:8888/", "http://192.168.33.12:8888/")
	time.Sleep(2 * time.Second) // load generation, not synchronisation: requests before the update too
	l.must(t, "--node", "node1", "service", "update", "-d", "--image", "nginx:1.15", "--update-delay", "10s", "www")
	eventually(t, 10*time.Second, "the first batch running", func() (bool, string) {
		n, out := running("node1")
		return n["nginx:1.15"] == 1 && n["nginx:1.14-alpine"] == 1, out
	})
	// Still within the delay: the rest is the next leader's to do.
	if st := strings.TrimSpace(l.must(t, "--node", "node1", "service", "inspect", "www", "--format", "{{.UpdateStatus.State}}")); st != "updating" {
		t.Fatalf("update state before the leader's crash: %q, want updating", st)
	}
	l.must(t, "lab", "stop", "node1", "--kill")
	eventually(t, 10*time.Second, "a new leader seen from node2", func() (bool, string) {
		next := l.leaderOf("node2")
		return next != "" && next != "node1", next
	})
	eventually(t, 25*time.Second, "the update finished by the new leader", func() (bool, string) {
		n, out := running("node2")
		st, _ := l.on("node2", "service", "inspect", "www", "--format", "{{.UpdateStatus.State}}")
		return n["nginx:1.15"] == 2 && n["nginx:1.14-alpine"] == 0 && strings.TrimSpace(st) == "completed", out + st
	})
	ok, failed := ld.wait(t)
	t.Logf("%d requests answered, %d failed", ok, failed)
	if failed > 0 || ok == 0 {
		t.Errorf("%d requests failed, %d answered, during the update and the leader change: want none failed", failed, ok)
	}
}

// TestUpdateFailureAction: an update whose new task fails is rolled back
// (--update-failure-action rollback) or paused (the default), with
// Docker's errors, and service rollback then restores the spec.
func TestUpdateFailureAction(t *testing.T) {
	l := newLab(t, 1)
	l.must(t, "--node", "node1", "service", "create", "--name", "cmd", "--replicas", "2", "-e", "MODE=good",
		"--", "sh", "-c", `test "$MODE" != bad || exit 3; sleep 1000`)
	inspect := func() string {
		return strings.TrimSpace(l.must(t, "--node", "node1", "service", "inspect", "cmd", "--format", "{{.UpdateStatus.State}} {{json .Spec.TaskTemplate.ContainerSpec.Env}}"))
	}
	converged := func() {
		t.Helper()
		eventually(t, 15*time.Second, "cmd 2/2", func() (bool, string) {
			out, _ := l.on("node1", "service", "ls", "--filter", "name=cmd", "--format", "{{.Replicas}}")
			return strings.TrimSpace(out) == "2/2", out
		})
	}

	out, err := l.on("node1", "service", "update", "--env-add", "MODE=bad", "--update-failure-action", "rollback", "cmd")
	t.Logf("update rolled back (err %v):\n%s", err, out)
	if err == nil || !strings.Contains(out, "service rolled back: rollback completed") {
		t.Errorf("update with a failing task and failure action rollback: err %v, want Docker's rolled back error\n%s", err, out)
	}
	if got, want := inspect(), `rollback_completed ["MODE=good"]`; got != want {
		t.Errorf("after the rollback: %s, want %s", got, want)
	}
	converged()

	out, err = l.on("node1", "service", "update", "--env-add", "MODE=bad", "--update-failure-action", "pause", "cmd")
	t.Logf("update paused (err %v):\n%s", err, out)
	if err == nil || !strings.Contains(out, "service update paused: update paused due to failure or early termination of task ") {
		t.Errorf("update with a failing task: err %v, want Docker's paused error\n%s", err, out)
	}
	if got, want := inspect(), `paused ["MODE=bad"]`; got != want {
		t.Errorf("after the pause: %s, want %s", got, want)
	}
	out = l.must(t, "--node", "node1", "service", "rollback", "cmd")
	t.Logf("service rollback:\n%s", out)
	if !strings.Contains(out, "rollback: manually requested rollback\n") || !strings.Contains(out, "verify: Service converged") {
		t.Errorf("service rollback output:\n%s", out)
	}
	if got, want := inspect(), `rollback_completed ["MODE=good"]`; got != want {
		t.Errorf("after service rollback: %s, want %s", got, want)
	}
}
