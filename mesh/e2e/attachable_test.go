package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestContainersOnAttachableOverlay runs standalone containers on an
// --attachable swarm overlay, on a worker (node2) and on the manager
// (node1), as docker run on a swarm node does: they get an address on
// the overlay and a task's sandbox, reach the services by name and VIP,
// are named for the service tasks and each other across nodes (VXLAN),
// and leave nothing behind; a plain overlay is refused with Docker's
// words.
func TestContainersOnAttachableOverlay(t *testing.T) {
	l := newLab(t, 2)
	on := func(node string, args ...string) string {
		t.Helper()
		return strings.TrimSpace(l.must(t, append([]string{"--node", node}, args...)...))
	}
	l.must(t, "--node", "node1", "network", "create", "-d", "overlay", "--attachable", "ovnet")
	l.must(t, "--node", "node1", "network", "create", "-d", "overlay", "plain")
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "2", "--network", "ovnet", "whoami")
	www := l.tasks(t, "www")
	var onNode1 taskInfo
	for _, ti := range www {
		if ti.node == "node1" {
			onNode1 = ti
		}
	}
	if onNode1.name == "" {
		t.Fatalf("no www task on node1: %+v", www)
	}

	out, err := l.on("node2", "run", "-d", "--name", "xx", "--net", "plain", "alpine", "sleep", "1000")
	if want := "Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable"; err == nil || !strings.Contains(out, want) {
		t.Errorf("run on a plain overlay: %v, want %q in:\n%s", err, want, out)
	}

	if id := on("node2", "run", "-d", "--name", "c1", "--net", "ovnet", "--net-alias", "box", "alpine", "sleep", "1000"); !hex64RE.MatchString(id) {
		t.Errorf("run -d printed %q, want a 64-hex ID", id)
	}
	on("node1", "run", "-d", "--name", "c0", "--net", "ovnet", "alpine", "sleep", "1000")
	ipOf := func(node, c string) string {
		t.Helper()
		return on(node, "inspect", "-f", `{{(index .NetworkSettings.Networks "ovnet").IPAddress}}`, c)
	}
	c1IP, c0IP := ipOf("node2", "c1"), ipOf("node1", "c0")
	if !strings.HasPrefix(c1IP, "10.0.0.") || !strings.HasPrefix(c0IP, "10.0.0.") {
		t.Fatalf("addresses on ovnet: c1 %q, c0 %q, want 10.0.0.x", c1IP, c0IP)
	}
	if ps := on("node2", "ps"); !regexp.MustCompile(`(?m)alpine.*Up.*c1$`).MatchString(ps) {
		t.Errorf("ps on node2 lacks c1 running:\n%s", ps)
	}
	eventually(t, 10*time.Second, "c1 on node2 in network inspect ovnet", func() (bool, string) {
		out, _ := l.on("node2", "network", "inspect", "ovnet")
		return strings.Contains(out, `"Name": "c1"`) && strings.Contains(out, c1IP), out
	})

	// From c1 on the worker: the service by name (its VIP), its tasks,
	// and the manager's container, across the overlay.
	eventually(t, 10*time.Second, "wget http://www/ from c1", func() (bool, string) {
		out, _ := l.on("node2", "exec", "c1", "--", "wget", "-qO-", "-T", "3", "http://www/")
		return strings.Contains(out, "Hostname: "), out
	})
	wantTasks := sortedLines(www["www.1"].ip + " " + www["www.2"].ip)
	eventually(t, 10*time.Second, "tasks.www from c1", func() (bool, string) {
		out, _ := l.on("node2", "exec", "c1", "--", "dig", "+short", "tasks.www")
		return sortedLines(out) == wantTasks, out
	})
	eventually(t, 10*time.Second, "ping c0 from c1", func() (bool, string) {
		out, _ := l.on("node2", "exec", "c1", "--", "ping", "-c1", "-W2", "c0")
		return answered(out, c0IP), out
	})

	// From a www task on the manager: c1's name and alias, over VXLAN.
	for _, name := range []string{"c1", "box"} {
		eventually(t, 10*time.Second, "ping "+name+" from "+onNode1.name, func() (bool, string) {
			out, _ := l.on("node1", "exec", onNode1.name, "--", "ping", "-c1", "-W2", name)
			return answered(out, c1IP), out
		})
	}
	if ptr := strings.TrimSpace(l.in(t, "node1", onNode1.name, "dig", "+short", "-x", c1IP)); ptr != "c1.ovnet." {
		t.Errorf("PTR of c1's %s: %q, want c1.ovnet.", c1IP, ptr)
	}

	// A foreground run --rm on the worker answers and leaves nothing.
	fg, err := l.on("node2", "run", "--rm", "--net", "ovnet", "alpine", "nslookup", "www")
	if err != nil || !regexp.MustCompile(`Address: 10\.0\.0\.\d+`).MatchString(fg) {
		t.Errorf("run --rm nslookup www: %v\n%s", err, fg)
	}
	eventually(t, 10*time.Second, "only c1 left on node2", func() (bool, string) {
		ps := on("node2", "ps", "-a", "--format", "{{.Names}}")
		var standalone []string
		for _, n := range strings.Fields(ps) {
			if !strings.HasPrefix(n, "www.") {
				standalone = append(standalone, n)
			}
		}
		return strings.Join(standalone, " ") == "c1", ps
	})

	// A bridge network and an overlay in one run: the container is on
	// both when run returns. A plain overlay among them is refused in
	// one line and leaves no container behind.
	on("node2", "network", "create", "dev")
	on("node2", "run", "-d", "--name", "both", "--net", "dev", "--net", "ovnet", "--net-alias", "b", "alpine", "sleep", "1000")
	if out := on("node2", "exec", "both", "--", "ip", "-o", "-4", "addr"); !strings.Contains(out, "eth0    inet 172.") || !strings.Contains(out, "eth1    inet 10.") {
		t.Errorf("run --net dev --net ovnet: want eth0 on dev and eth1 on ovnet:\n%s", out)
	}
	if out, err := l.on("node2", "exec", "both", "--", "wget", "-qO-", "-T", "3", "http://www/"); err != nil || !strings.Contains(out, "Hostname:") {
		t.Errorf("both to www on ovnet: %v\n%s", err, out)
	}
	on("node2", "rm", "-f", "both")
	if out, err := l.on("node2", "run", "-d", "--name", "mixed", "--net", "dev", "--net", "plain", "alpine", "sleep", "1"); err == nil || !strings.Contains(out, "not manually attachable") || strings.Count(strings.TrimSpace(out), "\n") > 0 {
		t.Errorf("run on a bridge network and a plain overlay: %v\n%s", err, out)
	}
	if out := on("node2", "ps", "-a", "--format", "{{.Names}}"); slices.Contains(strings.Fields(out), "mixed") {
		t.Errorf("a refused run left its container:\n%s", out)
	}

	// stop and start keep the ID, the hostname and the address; rm -f
	// gives the address back.
	c1ID := on("node2", "inspect", "-f", "{{.Id}}", "c1")
	on("node2", "stop", "c1")
	// stop returns once the process has ended, and its status is known:
	// the SIGTERM ended sleep under tini, as docker stop shows a
	// container run with --init.
	if ps := on("node2", "ps", "-a", "--filter", "name=c1", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(ps, "c1 Exited (143) ") {
		t.Errorf("ps -a after stop c1: %q, want c1 Exited (143) …", ps)
	}
	on("node2", "start", "c1")
	if ip := ipOf("node2", "c1"); ip != c1IP {
		t.Errorf("c1's address after stop and start: %s, want %s", ip, c1IP)
	}
	if id := on("node2", "inspect", "-f", "{{.Id}}", "c1"); id != c1ID {
		t.Errorf("c1's ID after stop and start: %s, was %s", id, c1ID)
	}
	eventually(t, 10*time.Second, "c1's hostname after start", func() (bool, string) {
		out, _ := l.on("node2", "exec", "c1", "hostname")
		return strings.TrimSpace(out) == c1ID[:12], out
	})
	eventually(t, 10*time.Second, "c1 running again and named", func() (bool, string) {
		out, _ := l.on("node1", "exec", onNode1.name, "--", "ping", "-c1", "-W2", "c1")
		return answered(out, c1IP), out
	})
	on("node2", "rm", "-f", "c1")
	on("node1", "rm", "-f", "c0")
	eventually(t, 10*time.Second, "c1 gone from network inspect ovnet", func() (bool, string) {
		out, _ := l.on("node2", "network", "inspect", "ovnet")
		return !strings.Contains(out, `"Name": "c1"`) && !strings.Contains(out, c1IP), out
	})
	// A line of its own: a task's name (www.2.8x0ucr7jc10…) may hold "c1".
	if ps := on("node2", "ps", "-a", "--format", "{{.Names}}"); slices.Contains(strings.Fields(ps), "c1") {
		t.Errorf("ps -a on node2 after rm -f c1:\n%s", ps)
	}
	// A container whose process ended is Exited, its output kept until rm.
	on("node2", "run", "-d", "--name", "lg", "--net", "ovnet", "alpine", "sh", "-c", "echo hello; exit 3")
	eventually(t, 10*time.Second, "lg exited (3)", func() (bool, string) {
		ps, _ := l.on("node2", "ps", "-a", "--filter", "name=lg")
		return strings.Contains(ps, "Exited (3)"), ps
	})
	if logs := on("node2", "logs", "lg"); logs != "hello" {
		t.Errorf("logs of an exited container: %q, want hello", logs)
	}
	on("node2", "rm", "lg")

	// The address is free again: a container may take it.
	on("node2", "run", "-d", "--name", "again", "--net", "ovnet", "--ip", c1IP, "alpine", "sleep", "1000")
	on("node2", "rm", "-f", "again")
}

// answered says whether ping's output shows an answer from ip (named
// "64 bytes from c0.ovnet (10.0.0.8)" when the name resolves back).
func answered(ping, ip string) bool {
	return regexp.MustCompile(`bytes from (\S+ \()?` + regexp.QuoteMeta(ip) + `\b`).MatchString(ping)
}
