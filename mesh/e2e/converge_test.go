package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestConvergedMeansReachable creates a service ten times and, as soon as
// service create says it converged, pings one of its tasks on another node
// from a task on node1, once: the first packet must arrive, because
// converged means every node that sends to the tasks has programmed them
// (peer, backend, name) and said so.
func TestConvergedMeansReachable(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "service", "create", "--name", "probe", "--replicas", "3", "--network", "ovnet", "whoami")
	taskOn := func(svc, node string) (name, ip string) {
		out := l.must(t, "--node", "node1", "service", "ps", svc, "--format", "{{.Name}} {{.Node}} {{.DesiredState}} {{range .Networks}}{{.Addr}}{{end}}")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[1] == node && f[2] == "Running" {
				return f[0], strings.Split(f[3], "/")[0]
			}
		}
		t.Fatalf("no running task of %s on %s:\n%s", svc, node, out)
		return "", ""
	}
	probe, _ := taskOn("probe", "node1")
	const runs = 10
	ok := 0
	for i := range runs {
		svc := fmt.Sprintf("first%d", i)
		out := l.must(t, "--node", "node1", "service", "create", "--name", svc, "--replicas", "3", "--network", "ovnet", "whoami")
		if !strings.Contains(out, "verify: Service converged") {
			t.Fatalf("service create %s:\n%s", svc, out)
		}
		target := []string{"node2", "node3"}[i%2]
		_, ip := taskOn(svc, target)
		if out, err := l.on("node1", "exec", probe, "--", "ping", "-c", "1", "-W", "1", ip); err != nil {
			t.Logf("run %d: first ping from %s to %s on %s failed: %v\n%s", i+1, probe, ip, target, err, out)
		} else {
			ok++
		}
		l.must(t, "--node", "node1", "service", "rm", svc)
	}
	t.Logf("first pings answered right after converged: %d of %d", ok, runs)
	if ok != runs {
		t.Errorf("%d of %d first pings failed", runs-ok, runs)
	}
}
