package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestGlobalAndConstraints: a global service runs one task on every node,
// named SERVICE.NODEID; a constraint keeps a service on the nodes that
// satisfy it, labels included; a node stopped and started again gets its
// global task back soon after it is Ready.
func TestGlobalAndConstraints(t *testing.T) {
	l := newLab(t, 3)
	l.waitNodes(t, []string{"node1"}, "node1 Ready Leader\nnode2 Ready \nnode3 Ready", 10*time.Second)

	ids := map[string]string{} // hostname → node ID
	for _, line := range strings.Split(strings.TrimSpace(l.must(t, "--node", "node1", "node", "ls", "--format", "{{.Hostname}} {{.ID}}")), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			ids[f[0]] = f[1]
		}
	}
	if len(ids) != 3 {
		t.Fatalf("node IDs: %v, want three", ids)
	}
	// running is where a service's current tasks run: hostname → names.
	running := func(svc string) (map[string][]string, string) {
		out, _ := l.on("node1", "service", "ps", svc, "--format", "{{.NodeName}} {{.Name}} {{.Task.DesiredState}} {{.Task.Status.State}}")
		m := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[2] == "running" && f[3] == "running" {
				m[f[0]] = append(m[f[0]], f[1])
			}
		}
		return m, out
	}
	onlyOn := func(svc string, want map[string]int) func() (bool, string) {
		return func() (bool, string) {
			got, out := running(svc)
			if len(got) != len(want) {
				return false, out
			}
			for node, n := range want {
				if len(got[node]) != n {
					return false, out
				}
			}
			return true, out
		}
	}

	t.Run("global: one task per node", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--mode", "global", "--name", "g", "whoami")
		eventually(t, 10*time.Second, "g on every node, named g.NODEID", func() (bool, string) {
			got, out := running("g")
			for host, id := range ids {
				if len(got[host]) != 1 || got[host][0] != "g."+id {
					return false, out
				}
			}
			return len(got) == 3, out
		})
		ls := l.must(t, "--node", "node1", "service", "ls", "--filter", "name=g")
		if !strings.Contains(ls, "global") || !strings.Contains(ls, "3/3") {
			t.Errorf("service ls: want MODE global, REPLICAS 3/3:\n%s", ls)
		}
		out, err := l.on("node1", "service", "scale", "g=2")
		if err == nil || !strings.Contains(out, "g: scale can only be used with replicated mode") {
			t.Errorf("scale g=2: err %v, want docker's refusal:\n%s", err, out)
		}
		out, err = l.on("node1", "service", "create", "--mode", "global", "--replicas", "2", "--name", "g2", "whoami")
		if err == nil || !strings.Contains(out, "replicas can only be used with replicated mode") {
			t.Errorf("--replicas with --mode global: err %v, want docker's refusal:\n%s", err, out)
		}
	})

	t.Run("constraint: only node2", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--mode", "global", "--constraint", "node.hostname==node2", "--name", "only2", "whoami")
		eventually(t, 10*time.Second, "only2 on node2 alone", onlyOn("only2", map[string]int{"node2": 1}))
		l.must(t, "--node", "node1", "service", "create", "--replicas", "2", "--constraint", "node.hostname==node2", "--name", "rep2", "whoami")
		eventually(t, 10*time.Second, "rep2's two tasks on node2", onlyOn("rep2", map[string]int{"node2": 2}))
		out, err := l.on("node1", "service", "create", "--constraint", "node.hostname", "--name", "bad", "whoami")
		if err == nil || !strings.Contains(out, "constraint expected one operator from ==, !=") {
			t.Errorf("a constraint without an operator: err %v, want swarmkit's refusal:\n%s", err, out)
		}
	})

	t.Run("labels place and move tasks", func(t *testing.T) {
		l.must(t, "--node", "node1", "node", "update", "--label-add", "zone=a", "node3")
		if out := l.must(t, "--node", "node1", "node", "inspect", "node3"); !strings.Contains(out, `"zone": "a"`) {
			t.Errorf("node inspect node3: no label zone=a:\n%s", out)
		}
		l.must(t, "--node", "node1", "service", "create", "--detach", "--constraint", "node.labels.zone==a", "--name", "zoned", "whoami")
		eventually(t, 10*time.Second, "zoned on node3", onlyOn("zoned", map[string]int{"node3": 1}))
		// Swarm does not rebalance: node1 taking the label moves nothing,
		// node3 losing it does.
		l.must(t, "--node", "node1", "node", "update", "--label-add", "zone=a", "node1")
		l.must(t, "--node", "node1", "node", "update", "--label-rm", "zone", "node3")
		eventually(t, 10*time.Second, "zoned moved to node1", onlyOn("zoned", map[string]int{"node1": 1}))
	})

	t.Run("a restarted node gets its global task back", func(t *testing.T) {
		status := func(host string) (string, string) {
			out, _ := l.nodeStatus("node1")
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == host {
					return f[1], out
				}
			}
			return "", out
		}
		l.must(t, "lab", "stop", "node3")
		eventually(t, 30*time.Second, "node3 Down", func() (bool, string) {
			s, out := status("node3")
			return s == "Down", out
		})
		// Down past the reschedule delay, node3's task is given up: a
		// global task moves nowhere.
		eventually(t, 30*time.Second, "g's task on node3 shut down, g 2/2", func() (bool, string) {
			out, _ := l.on("node1", "service", "ps", "g", "--format", "{{.NodeName}} {{.Task.DesiredState}}")
			ls, _ := l.on("node1", "service", "ls", "--filter", "name=g", "--format", "{{.Replicas}}")
			return !strings.Contains(out, "node3 running") && strings.Contains(ls, "2/2"), out + ls
		})
		l.must(t, "lab", "start", "node3")
		eventually(t, 30*time.Second, "node3 Ready", func() (bool, string) {
			s, out := status("node3")
			return s == "Ready", out
		})
		ready := time.Now()
		eventually(t, 5*time.Second, "g back on node3 within 5 s of Ready", func() (bool, string) {
			got, out := running("g")
			return len(got["node3"]) == 1 && got["node3"][0] == "g."+ids["node3"], out
		})
		t.Logf("g running on node3 %s after node ls said Ready", time.Since(ready).Round(10*time.Millisecond))
		eventually(t, 10*time.Second, "node3's own ps lists g."+ids["node3"], func() (bool, string) {
			out, _ := l.on("node3", "ps", "--format", "{{.Name}}")
			return strings.Contains(out, "g."+ids["node3"]), out
		})
		eventually(t, 10*time.Second, "g on every node again", onlyOn("g", map[string]int{"node1": 1, "node2": 1, "node3": 1}))
	})
}
