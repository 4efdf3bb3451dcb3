package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFaults checks the faults fixed so far: mesh_gwbridge keeps one
// address over restarts, draining a node moves its tasks, and every
// process a task forks dies with it.
func TestFaults(t *testing.T) {
	l := newLab(t, 3)

	t.Run("restarts leave one address on mesh_gwbridge", func(t *testing.T) {
		for range 3 {
			l.must(t, "lab", "restart", "node2")
		}
		eventually(t, 10*time.Second, "mesh_gwbridge with 172.18.0.1/16 alone", func() (bool, string) {
			out, _ := l.onNode("node2", "ip", "-4", "-br", "addr", "show", "mesh_gwbridge")
			f := strings.Fields(out)
			return len(f) == 3 && f[2] == "172.18.0.1/16", out
		})
	})

	t.Run("drain moves the node's tasks", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--name", "spread", "--replicas", "3", "--publish", "8181:80", "whoami")
		onNode := func(node string) (int, string) {
			out, _ := l.on("node1", "service", "ps", "spread", "--format", "{{.NodeName}} {{.Status.State}}")
			n := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, node+" ") && strings.Contains(strings.ToLower(line), "running") {
					n++
				}
			}
			return n, out
		}
		if n, out := onNode("node2"); n != 1 {
			t.Fatalf("before the drain: %d tasks of spread on node2, want 1\n%s", n, out)
		}
		l.must(t, "--node", "node1", "node", "update", "--availability", "drain", "node2")
		eventually(t, 10*time.Second, "spread gone from node2, three running elsewhere", func() (bool, string) {
			n2, out := onNode("node2")
			n1, _ := onNode("node1")
			n3, _ := onNode("node3")
			return n2 == 0 && n1+n3 == 3, fmt.Sprintf("node1 %d node2 %d node3 %d\n%s", n1, n2, n3, out)
		})
		eventually(t, 10*time.Second, "node2's own tasks stopped", func() (bool, string) {
			out, _ := l.on("node2", "ps", "--format", "{{.Name}}")
			return !strings.Contains(out, "spread."), out
		})
	})

	t.Run("every process of a task dies with it", func(t *testing.T) {
		// A marker no other process has: the two sleeps of the task.
		procs := func() (int, string) {
			out, _ := run(5*time.Second, "pgrep", "-f", "^sleep 777[12]$")
			pids := strings.Fields(out)
			if len(pids) == 0 {
				return 0, "none"
			}
			// What holds them, should they outlive their task.
			ps, _ := run(5*time.Second, "ps", "-o", "pid,ppid,pidns,stat,etimes,args", "-p", strings.Join(pids, ","))
			return len(pids), ps
		}
		create := func() string {
			l.must(t, "--node", "node1", "service", "create", "--name", "forky", "--", "sh", "-c", "sleep 7771 & exec sleep 7772")
			eventually(t, 10*time.Second, "the task and its child running", func() (bool, string) {
				n, out := procs()
				return n == 2, out
			})
			out := l.must(t, "--node", "node1", "service", "ps", "forky", "--format", "{{.NodeName}}")
			return strings.TrimSpace(out)
		}
		create()
		l.must(t, "--node", "node1", "service", "rm", "forky")
		eventually(t, 10*time.Second, "no process of the removed task left", func() (bool, string) {
			n, out := procs()
			return n == 0, out
		})
		node := create()
		if node == "node1" {
			t.Logf("forky on the manager itself: its crash is the manager's")
		}
		l.must(t, "lab", "stop", node, "--kill")
		// The next subtests need the node, also when this one fails.
		defer func() {
			if out, err := l.ctl("lab", "start", node); err != nil {
				t.Errorf("lab start %s: %v\n%s", node, err, out)
			}
		}()
		eventually(t, 10*time.Second, "no process of the task left after its meshd was killed", func() (bool, string) {
			n, out := procs()
			return n == 0, out
		})
	})

	t.Run("network rm takes the namespaces down", func(t *testing.T) {
		// Every node takes one task of each network's service, so every
		// node builds the network.
		l.must(t, "--node", "node1", "node", "update", "--availability", "active", "node2")
		var others []time.Duration
		for i := range repairRuns {
			name := fmt.Sprintf("gone%d", i)
			id := strings.TrimSpace(l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", name))
			l.must(t, "--node", "node1", "service", "create", "--name", name, "--replicas", "3", "--network", name, "whoami")
			has := func(node string) (bool, string) {
				out, _ := l.on(node, "ns", "ls")
				return strings.Contains(out, id[:9]), out
			}
			for _, n := range []string{"node1", "node2", "node3"} {
				eventually(t, 10*time.Second, name+"'s namespaces on "+n, func() (bool, string) { return has(n) })
			}
			l.must(t, "--node", "node1", "service", "rm", name)
			l.must(t, "--node", "node1", "network", "rm", name)
			t0 := time.Now()
			if ok, out := has("node1"); ok {
				t.Fatalf("network rm returned with %s's namespaces still on the manager:\n%s", name, out)
			}
			// The goal, 1 s, is checked on the median below; a single run
			// may lose a second on a busy machine.
			for _, n := range []string{"node2", "node3"} {
				eventually(t, 5*time.Second, name+"'s namespaces gone from "+n, func() (bool, string) {
					ok, out := has(n)
					return !ok, out
				})
			}
			others = append(others, time.Since(t0))
		}
		m, w := medianWorst(others)
		t.Logf("network rm: gone on the manager when it returned, on the other nodes after median %v, worst %v of %d (polled through meshctl)",
			m.Round(time.Millisecond), w.Round(time.Millisecond), repairRuns)
		if m > time.Second*timeScale() {
			t.Errorf("network rm: the other nodes took median %v, want ≤ 1s", m.Round(time.Millisecond))
		}
	})
}
