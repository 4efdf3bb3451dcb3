package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNetworkConnectContainerToOverlay connects a container started on a
// bridge network to an attachable overlay, live, as docker network
// connect does on a swarm node: a new ethN with the leader's address, the
// service's names and VIP for the container, the container's name and
// alias for the service's tasks on every node. Its link goes with a stop
// and comes back at the start; a disconnect and an rm give its address
// back; a --rm container's attachment goes when it exits.
func TestNetworkConnectContainerToOverlay(t *testing.T) {
	l := newLab(t, 2)
	on := func(node string, args ...string) string {
		t.Helper()
		return strings.TrimSpace(l.must(t, append([]string{"--node", node}, args...)...))
	}
	on("node1", "network", "create", "-d", "overlay", "--attachable", "--subnet", "10.77.0.0/24", "ovl")
	on("node1", "network", "create", "-d", "overlay", "plain")
	on("node1", "network", "create", "dev")
	on("node1", "service", "create", "--name", "www", "--replicas", "2", "--network", "ovl", "whoami")
	far := ""
	for name, ti := range l.tasks(t, "www") {
		if ti.node == "node2" {
			far = name + "." + ti.id
		}
	}
	if far == "" {
		t.Fatalf("no task of www on node2: %v", l.tasks(t, "www"))
	}
	on("node1", "run", "-d", "--name", "c1", "--net", "dev", "alpine", "sleep", "1000")

	for _, tt := range []struct{ args, want string }{
		{"network connect plain c1", "not manually attachable"},
		{"network connect ingress c1", "not manually attachable"},
		{"network connect --ip 10.0.9.9 ovl c1", "does not belong"},
	} {
		out, err := l.on("node1", strings.Fields(tt.args)...)
		if err == nil || !strings.Contains(out, tt.want) || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("meshctl %s: %v\n%s\nwant one line with %q", tt.args, err, out, tt.want)
		}
	}

	start := time.Now()
	on("node1", "network", "connect", "--alias", "box", "--ip", "10.77.0.50", "ovl", "c1")
	t.Logf("network connect returned after %v, the link built", time.Since(start).Round(time.Millisecond))
	// At once, as docker's connect: the link, the service's name and VIP.
	if out := on("node1", "exec", "c1", "--", "ip", "-o", "-4", "addr", "show", "eth1"); !strings.Contains(out, "10.77.0.50/24") {
		t.Fatalf("c1 after connect: want eth1 with 10.77.0.50/24\n%s", out)
	}
	if out, err := l.on("node1", "exec", "c1", "--", "wget", "-qO-", "-T", "3", "http://www/"); err != nil || !strings.Contains(out, "Hostname:") {
		t.Errorf("c1 to www's VIP: %v\n%s", err, out)
	}
	if out, _ := l.on("node1", "exec", "c1", "--", "nslookup", "tasks.www"); strings.Count(out, "Address: 10.77.0.") != 2 {
		t.Errorf("c1: tasks.www should name the two tasks:\n%s", out)
	}
	// From the other node, over VXLAN, by name and by alias.
	for _, name := range []string{"c1", "box"} {
		eventually(t, 10*time.Second, "www's task on node2 reaches c1 as "+name, func() (bool, string) {
			out, _ := l.on("node2", "exec", far, "--", "ping", "-c1", "-W2", name)
			return answered(out, "10.77.0.50"), out
		})
	}
	if got := on("node1", "inspect", "-f", `{{(index .NetworkSettings.Networks "ovl").IPAddress}} {{(index .NetworkSettings.Networks "ovl").Aliases}} {{(index .NetworkSettings.Networks "dev").IPAddress}}`, "c1"); !strings.HasPrefix(got, "10.77.0.50 [box] 172.") {
		t.Errorf("inspect c1: %q, want its overlay address and alias beside its bridge address", got)
	}
	if got := on("node1", "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}};{{end}}", "ovl"); !strings.Contains(got, "c1 10.77.0.50/24;") {
		t.Errorf("network inspect ovl on node1: %q, want c1 among its containers", got)
	}
	// Its attachment task is no container of its own.
	if got := on("node1", "ps", "-a", "--format", "{{.Names}}"); len(slices.DeleteFunc(strings.Fields(got), func(n string) bool { return n != "c1" })) != 1 {
		t.Errorf("ps -a should list c1 once:\n%s", got)
	}
	if out, err := l.on("node1", "network", "connect", "ovl", "c1"); err == nil || !strings.Contains(out, "already attached") {
		t.Errorf("a second connect: %v\n%s", err, out)
	}

	// A stopped container's link and names go with its namespace; its
	// start brings them back, with the same address.
	on("node1", "stop", "c1")
	eventually(t, 10*time.Second, "c1 no longer named on ovl while stopped", func() (bool, string) {
		out, _ := l.on("node2", "exec", far, "--", "nslookup", "c1")
		return !strings.Contains(out, "10.77.0.50"), out
	})
	on("node1", "start", "c1")
	eventually(t, 10*time.Second, "c1 back on ovl after its start", func() (bool, string) {
		out, _ := l.on("node2", "exec", far, "--", "ping", "-c1", "-W2", "c1")
		return answered(out, "10.77.0.50"), out
	})

	on("node1", "network", "disconnect", "ovl", "c1")
	if out := on("node1", "exec", "c1", "--", "ip", "-o", "-4", "addr"); strings.Contains(out, "10.77.0.50") {
		t.Errorf("c1 after disconnect still has its overlay address:\n%s", out)
	}
	eventually(t, 10*time.Second, "c1 no longer named on ovl after disconnect", func() (bool, string) {
		out, _ := l.on("node2", "exec", far, "--", "nslookup", "c1")
		return !strings.Contains(out, "10.77.0.50"), out
	})
	// Its address is given back; a container on the overlay may take it.
	on("node1", "run", "-d", "--name", "c2", "--net", "ovl", "--ip", "10.77.0.50", "alpine", "sleep", "1000")
	on("node1", "rm", "-f", "c2")

	// rm takes the attachment and its address with the container.
	on("node1", "network", "connect", "--ip", "10.77.0.50", "ovl", "c1")
	on("node1", "rm", "-f", "c1")
	if got := on("node1", "network", "inspect", "-f", "{{range .Containers}}{{.Name}};{{end}}", "ovl"); strings.Contains(got, "c1;") {
		t.Errorf("network inspect ovl after rm -f c1: %q", got)
	}
	on("node1", "run", "-d", "--name", "c2", "--net", "ovl", "--ip", "10.77.0.50", "alpine", "sleep", "1000")
	on("node1", "rm", "-f", "c2")

	// A --rm container removes itself when it exits: its attachment goes too.
	on("node1", "run", "-d", "--rm", "--name", "c3", "--net", "dev", "alpine", "sleep", "3")
	on("node1", "network", "connect", "--ip", "10.77.0.51", "ovl", "c3")
	eventually(t, 20*time.Second, "c3's attachment gone after it exited", func() (bool, string) {
		out, _ := l.on("node1", "network", "inspect", "-f", "{{range .Containers}}{{.Name}};{{end}}", "ovl")
		return !strings.Contains(out, "c3;"), out
	})
	on("node1", "service", "rm", "www")
	on("node1", "network", "rm", "ovl", "plain", "dev")
}
