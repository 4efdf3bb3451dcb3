package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logLine is a line of service logs: docker's context, then the line.
var logLine = regexp.MustCompile(`^(\w+)\.(\d+)(?:\.([0-9a-z]+))?@(node\d+) *\| (.*)$`)

// TestServiceLogsAcrossNodes runs service logs on a manager for a service
// whose tasks run on all three nodes: each task's output comes from its
// node, pushed to the manager, with docker's context; -f streams a
// worker's task until meshctl is interrupted, and the worker then stops
// pushing. A worker refuses service logs as docker's do.
func TestServiceLogsAcrossNodes(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "service", "create", "--name", "web", "--replicas", "3", "whoami")
	// name → "ID node"
	want := map[string]string{}
	for _, row := range strings.Split(strings.TrimSpace(l.must(t, "--node", "node1", "service", "ps", "--no-trunc",
		"--format", "{{.Name}} {{.ID}} {{.Node}}", "web")), "\n") {
		f := strings.Fields(row)
		if len(f) != 3 {
			t.Fatalf("service ps printed %q", row)
		}
		want[f[0]] = f[1] + " " + f[2]
	}
	if len(want) != 3 {
		t.Fatalf("service ps: got tasks %v, want 3", want)
	}

	// check parses service logs' output: one "listening" line per task,
	// each with its own task's ID and node.
	check := func(t *testing.T, out string, n int, ids bool) error {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != n {
			return fmt.Errorf("got %d lines, want %d", len(lines), n)
		}
		seen := map[string]bool{}
		for _, ln := range lines {
			m := logLine.FindStringSubmatch(ln)
			if m == nil {
				return fmt.Errorf("line %q is not docker's shape", ln)
			}
			name := m[1] + "." + m[2]
			id, node, _ := strings.Cut(want[name], " ")
			switch {
			case m[4] != node:
				return fmt.Errorf("line %q: want node %s", ln, node)
			case ids && (len(m[3]) != 12 || !strings.HasPrefix(id, m[3])):
				return fmt.Errorf("line %q: want task ID %s cut to 12", ln, id)
			case !ids && m[3] != "":
				return fmt.Errorf("line %q: want no task ID", ln)
			case !strings.Contains(m[5], "listening"):
				return fmt.Errorf("line %q: want whoami's listening line", ln)
			}
			seen[name] = true
		}
		if len(seen) != n {
			return fmt.Errorf("lines of %d tasks, want %d", len(seen), n)
		}
		return nil
	}

	t.Run("every task from its node", func(t *testing.T) {
		var err error
		eventually(t, 15*time.Second, "a listening line from each of web's 3 tasks", func() (bool, string) {
			out, cerr := l.on("node1", "service", "logs", "web")
			if cerr != nil {
				return false, fmt.Sprintf("%v\n%s", cerr, out)
			}
			err = check(t, out, 3, true)
			return err == nil, fmt.Sprintf("%v\n%s", err, out)
		})
	})
	t.Run("--tail 1 and --no-task-ids", func(t *testing.T) {
		if err := check(t, l.must(t, "--node", "node1", "service", "logs", "--tail", "1", "web"), 3, true); err != nil {
			t.Error(err)
		}
		if err := check(t, l.must(t, "--node", "node1", "service", "logs", "--no-task-ids", "web"), 3, false); err != nil {
			t.Error(err)
		}
	})
	t.Run("one task", func(t *testing.T) {
		out := l.must(t, "--node", "node1", "service", "logs", "web.2")
		m := logLine.FindStringSubmatch(strings.TrimSpace(out))
		if m == nil || m[1]+"."+m[2] != "web.2" || strings.Count(out, "\n") != 1 {
			t.Errorf("service logs web.2: got %q, want web.2's line alone", out)
		}
	})
	t.Run("refused on a worker", func(t *testing.T) {
		out, err := l.on("node2", "service", "logs", "web")
		if err == nil || !strings.Contains(out, "This node is not a swarm manager.") {
			t.Errorf("got %q (%v), want docker's refusal", out, err)
		}
	})
	t.Run("on a follower manager", func(t *testing.T) {
		// node2 promoted: the nodes push to it, not to the leader.
		l.must(t, "--node", "node1", "node", "promote", "node2")
		eventually(t, 30*time.Second, "service logs on node2 once it manages", func() (bool, string) {
			out, err := l.on("node2", "service", "logs", "web")
			if err != nil {
				return false, fmt.Sprintf("%v\n%s", err, out)
			}
			cerr := check(t, out, 3, true)
			return cerr == nil, fmt.Sprintf("%v\n%s", cerr, out)
		})
	})
	t.Run("follow a worker's task", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--name", "tick", "--constraint", "node.hostname==node3",
			"--", "sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done")
		followWorker(t, l)
	})
}

// followWorker runs service logs -f tick on node1 and reads lines from
// node3's task as they come, and from the task a scale starts, then
// interrupts it: it must exit at once, and node3 must end its pushes.
func followWorker(t *testing.T, l *testLab) {
	cmd := exec.Command(filepath.Join(binDir, "meshctl"), "--lab-prefix", l.prefix, "--lab-root", l.root,
		"--node", "node1", "service", "logs", "-f", "--tail", "1", "tick")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	// The first line may be the tail; the ones after it are new output,
	// every 0.2 s: each must come within a second or so of the last.
	var got []string
	first := time.After(15 * time.Second * timeScale())
	for len(got) < 6 {
		wait := first
		if len(got) > 0 {
			wait = time.After(2 * time.Second * timeScale())
		}
		select {
		case ln, ok := <-lines:
			if !ok {
				t.Fatalf("service logs -f ended after %q", got)
			}
			m := logLine.FindStringSubmatch(ln)
			if m == nil || m[1] != "tick" || m[4] != "node3" || !strings.HasPrefix(m[5], "tick ") {
				t.Fatalf("got line %q, want tick.1.<ID>@node3 | tick N", ln)
			}
			got = append(got, ln)
		case <-wait:
			t.Fatalf("no new line from node3 in time after %q", got)
		}
	}
	t.Logf("followed: %q", got)
	// A task that starts meanwhile is followed too, from its first line.
	l.must(t, "--node", "node1", "service", "scale", "tick=2")
	deadline := time.After(15 * time.Second * timeScale())
	for seen := false; !seen; {
		select {
		case ln, ok := <-lines:
			if !ok {
				t.Fatal("service logs -f ended")
			}
			m := logLine.FindStringSubmatch(ln)
			seen = m != nil && m[1] == "tick" && m[2] == "2" && m[5] == "tick 0"
		case <-deadline:
			t.Fatal("no line from tick.2 after scaling to 2")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		if err != nil {
			t.Errorf("service logs -f exited with %v after SIGINT, want 0", err)
		}
	case <-time.After(5 * time.Second * timeScale()):
		t.Fatal("service logs -f still running 5 s after SIGINT")
	}
	// The subscription went with the request: node3 ends its push.
	var log string
	for _, n := range l.load().Nodes() {
		if n.Name == "node3" {
			log = n.Log
		}
	}
	eventually(t, 10*time.Second, "node3 to end its push", func() (bool, string) {
		data, _ := os.ReadFile(log)
		started := strings.Count(string(data), "pushing task output to a manager")
		ended := strings.Count(string(data), "task output push ended")
		return started > 0 && started == ended, fmt.Sprintf("%d pushes started, %d ended", started, ended)
	})
}
