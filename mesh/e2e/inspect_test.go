package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestInspectPsLogsLikeDocker runs the tutorial's recipe for entering a
// task's network namespace, docker ps on a worker and for an exited
// task, and docker logs, on a lab of a manager and a worker.
func TestInspectPsLogsLikeDocker(t *testing.T) {
	l := newLab(t, 2)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--network", "ovnet", "--publish", "8080:80",
		"--constraint", "node.hostname==node1", "whoami")

	t.Run("the tutorial's nsenter recipe", func(t *testing.T) {
		// As the tutorial types it (less sudo), on node1, whose meshd
		// answers on the default socket there.
		script := `CONTAINER_NAME=www.1.$(meshctl service ps -f name=www.1 -q www)
NAMESPACE_CTN=$(meshctl inspect -f '{{ .NetworkSettings.SandboxKey }}' $CONTAINER_NAME)
nsenter --net=$NAMESPACE_CTN ip a`
		ipa, err := l.onNode("node1", "sh", "-c", script)
		if err != nil {
			t.Fatalf("recipe: %v\n%s", err, ipa)
		}
		t.Logf("ip a in the task's namespace:\n%s", ipa)
		var nets map[string]struct {
			IPAddress   string
			IPPrefixLen int
		}
		out := l.must(t, "--node", "node1", "inspect", "-f", "{{json .NetworkSettings.Networks}}", "www.1")
		if err := json.Unmarshal([]byte(out), &nets); err != nil {
			t.Fatalf("inspect printed %q: %v", out, err)
		}
		if _, ok := nets["ovnet"]; !ok {
			t.Fatalf("inspect shows networks %v, want ovnet among them", nets)
		}
		for name, n := range nets {
			if want := fmt.Sprintf("inet %s/%d ", n.IPAddress, n.IPPrefixLen); !strings.Contains(ipa, want) {
				t.Errorf("ip a lacks %s's %q", name, want)
			}
		}
	})

	t.Run("inspect kinds and failures", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"-f", "{{.Name}}", "ovnet"}, "ovnet"},
			{[]string{"-f", "{{.Hostname}}", "node2"}, "node2"},
			{[]string{"-f", "{{.Spec.Name}}", "www"}, "www"},
			{[]string{"--type", "task", "-f", "{{.ServiceName}}", "www.1"}, "www"},
			{[]string{"-f", `{{index .Config.Labels "com.docker.swarm.service.name"}}`, "www.1"}, "www"},
		} {
			out := strings.TrimSpace(l.must(t, append([]string{"--node", "node1", "inspect"}, tt.args...)...))
			if out != tt.want {
				t.Errorf("inspect %s: got %q, want %q", strings.Join(tt.args, " "), out, tt.want)
			}
		}
		// The hostname the task runs with is the one inspect shows.
		host := strings.TrimSpace(l.must(t, "--node", "node1", "inspect", "-f", "{{.Config.Hostname}}", "www.1"))
		if got := strings.TrimSpace(l.must(t, "--node", "node1", "exec", "www.1", "hostname")); len(host) != 12 || got != host {
			t.Errorf("inspect says hostname %q, the task says %q, want the same 12 hex characters", host, got)
		}
		out, err := l.on("node1", "inspect", "nosuch")
		if err == nil || strings.TrimSpace(out) != "meshctl: No such object: nosuch" {
			t.Errorf("inspect nosuch: got %q (%v), want meshctl: No such object: nosuch and a failure", out, err)
		}
		// A worker has its own tasks only, and no cluster objects.
		if out, err := l.on("node2", "inspect", "www"); err == nil || !strings.Contains(out, "No such object: www") {
			t.Errorf("inspect www on the worker: got %q (%v), want No such object", out, err)
		}
	})

	t.Run("ps on a worker, with a host port", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--name", "hostweb", "--constraint", "node.hostname==node2",
			"--publish", "mode=host,published=8081,target=80", "whoami")
		var out string
		eventually(t, 20*time.Second, "hostweb.1 up on node2", func() (bool, string) {
			out, _ = l.on("node2", "ps")
			return strings.Contains(out, "hostweb.1.") && strings.Contains(out, " Up "), out
		})
		t.Logf("ps on node2:\n%s", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if h := strings.Join(strings.Fields(lines[0]), " "); h != "CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES" {
			t.Errorf("header %q, want docker's", lines[0])
		}
		if len(lines) != 2 || !strings.Contains(lines[1], `"/whoami"`) || !strings.Contains(lines[1], "0.0.0.0:8081->80/tcp") {
			t.Errorf("want one row, hostweb.1's, with its command and its host port")
		}
	})

	t.Run("ps -a shows an exited task", func(t *testing.T) {
		// It fails at once: create reports it, and the service stays.
		_, _ = l.on("node1", "service", "create", "--name", "fail", "--restart-condition", "none", "--constraint", "node.hostname==node1",
			"--", "sh", "-c", "exit 3")
		var out string
		eventually(t, 20*time.Second, "fail.1 exited (3) in ps -a", func() (bool, string) {
			out, _ = l.on("node1", "ps", "-a")
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "fail.1.") && strings.Contains(line, "Exited (3) ") {
					return true, out
				}
			}
			return false, out
		})
		t.Logf("ps -a on node1:\n%s", out)
		latest := l.must(t, "--node", "node1", "ps", "-l", "--format", "{{.Names}} {{.State}}")
		if !strings.HasPrefix(latest, "fail.1.") || !strings.Contains(latest, " exited") {
			t.Errorf("ps -l: got %q, want fail.1's exited container", latest)
		}
	})

	t.Run("ps -a shows how a replaced task ended", func(t *testing.T) {
		// The managers write the old task's shutdown before its node
		// ends it; the node tells how it ended: whoami exits 0 on the
		// SIGTERM, as docker ps -a shows such a container.
		l.must(t, "--node", "node1", "service", "create", "--name", "upd", "--constraint", "node.hostname==node1", "whoami")
		l.must(t, "--node", "node1", "service", "update", "--force", "upd")
		var old string
		eventually(t, 20*time.Second, "the replaced upd.1 Exited (0) in ps -a", func() (bool, string) {
			out, _ := l.on("node1", "ps", "-a", "--filter", "name=upd", "--format", "{{.Names}} {{.Status}}")
			for _, line := range strings.Split(out, "\n") {
				if name, status, _ := strings.Cut(line, " "); strings.HasPrefix(status, "Exited (0) ") {
					old = name
					return true, out
				}
			}
			return false, out
		})
		if code := strings.TrimSpace(l.must(t, "--node", "node1", "inspect", "-f", "{{.State.ExitCode}}", old)); code != "0" {
			t.Errorf("inspect -f {{.State.ExitCode}} %s: %q, want 0", old, code)
		}
		l.must(t, "--node", "node1", "service", "rm", "upd")
	})

	t.Run("logs", func(t *testing.T) {
		var out string
		eventually(t, 10*time.Second, "www.1's listening line", func() (bool, string) {
			out, _ = l.on("node1", "logs", "www.1")
			return strings.Contains(out, "listening"), out
		})
		if tail := l.must(t, "--node", "node1", "logs", "--tail", "1", "www.1"); strings.Count(tail, "\n") != 1 {
			t.Errorf("logs --tail 1: got %q, want one line", tail)
		}
		if out, err := l.on("node2", "logs", "www.1"); err == nil {
			t.Errorf("logs www.1 on node2: got %q, want a failure: the task is node1's", out)
		}
	})

	t.Run("logs -f ends with the task", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--name", "talk", "--restart-condition", "none",
			"--constraint", "node.hostname==node1", "--", "sh", "-c", "echo hello; sleep 3; echo bye")
		start := time.Now()
		out, err := l.on("node1", "logs", "-f", "talk.1")
		if err != nil || out != "hello\nbye\n" {
			t.Errorf("logs -f talk.1: got %q (%v), want hello and bye", out, err)
		}
		t.Logf("logs -f returned after %s", time.Since(start).Round(time.Millisecond))
	})
}
