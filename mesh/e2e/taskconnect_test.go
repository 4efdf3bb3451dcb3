package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestNetworkConnectServiceTask connects a service's running task to an
// attachable overlay and disconnects it, live, as docker network connect
// does on the task's node: a new ethN with the address the leader gave
// it, a container on that network on the other node reaches the task by
// its alias and its address and the task reaches the container by name;
// the refusals are one line each and change nothing; a disconnect takes
// name and address reachability away and gives the address back.
func TestNetworkConnectServiceTask(t *testing.T) {
	l := newLab(t, 2)
	on := func(node string, args ...string) string {
		t.Helper()
		return strings.TrimSpace(l.must(t, append([]string{"--node", node}, args...)...))
	}
	on("node1", "network", "create", "-d", "overlay", "--attachable", "--subnet", "10.0.9.0/24", "ov1")
	on("node1", "network", "create", "-d", "overlay", "svcnet")
	on("node1", "service", "create", "--name", "www", "--constraint", "node.hostname==node1", "--network", "svcnet", "whoami")
	www := l.tasks(t, "www")["www.1"]
	if www.node != "node1" {
		t.Fatalf("www.1 is on %q, want node1", www.node)
	}
	on("node2", "run", "-d", "--name", "c1", "--net", "ov1", "alpine", "sleep", "1000")
	c1IP := on("node2", "inspect", "-f", `{{(index .NetworkSettings.Networks "ov1").IPAddress}}`, "c1")
	var pid string
	eventually(t, 10*time.Second, "www.1's process started", func() (bool, string) {
		pid = on("node1", "inspect", "-f", "{{.State.Pid}}", "www.1")
		return pid != "0" && pid != "", pid
	})
	links := func() string { return on("node1", "exec", "www.1", "--", "ip", "-o", "link") }
	before := links()

	// Refusals, in Docker's words, one line each, changing nothing.
	for _, tt := range []struct {
		node string
		args []string
		want string
	}{
		{"node1", []string{"network", "connect", "svcnet", "www.1"}, "endpoint with name www.1." + www.id + " already exists in network svcnet"},
		{"node1", []string{"network", "connect", "ingress", "www.1"}, "Could not attach to network ingress: rpc error: code = PermissionDenied desc = network ingress not manually attachable"},
		{"node1", []string{"network", "disconnect", "svcnet", "www.1"}, "use meshctl service update --network-rm svcnet www"},
		{"node1", []string{"network", "disconnect", "ov1", "www.1"}, "is not connected to network ov1"},
		{"node2", []string{"network", "connect", "ov1", "www.1"}, "No such container: www.1"},
	} {
		out, err := l.on(tt.node, tt.args...)
		if out = strings.TrimSpace(out); err == nil || !strings.Contains(out, tt.want) || strings.Count(out, "\n") > 0 {
			t.Errorf("meshctl --node %s %s: %v\n%s\nwant one line with %q", tt.node, strings.Join(tt.args, " "), err, out, tt.want)
		}
	}
	if got := links(); got != before {
		t.Errorf("a refusal changed www.1's links:\n%s\nwas\n%s", got, before)
	}

	on("node1", "network", "connect", "--alias", "w", "--ip", "10.0.9.77", "ov1", "www.1")
	eventually(t, 10*time.Second, "www.1's new interface with 10.0.9.77", func() (bool, string) {
		out, _ := l.on("node1", "exec", "www.1", "--", "ip", "a")
		return strings.Contains(out, "inet 10.0.9.77/24") && strings.Contains(out, "eth2"), out
	})
	for _, name := range []string{"w", "10.0.9.77", "www.1." + www.id} {
		eventually(t, 20*time.Second, "c1 reaches www.1 as "+name, func() (bool, string) {
			out, _ := l.on("node2", "exec", "c1", "--", "wget", "-qO-", "-T", "3", "http://"+name+"/")
			return strings.Contains(out, "IP: 10.0.9.77"), out
		})
	}
	for _, name := range []string{"c1", c1IP} {
		eventually(t, 20*time.Second, "www.1 reaches c1 as "+name, func() (bool, string) {
			out, _ := l.on("node1", "exec", "www.1", "--", "ping", "-c1", "-W2", name)
			return answered(out, c1IP), out
		})
	}
	if got := on("node1", "inspect", "-f", "{{.State.Pid}}", "www.1"); got != pid {
		t.Errorf("www.1's process %s after connect, was %s: it was restarted", got, pid)
	}

	on("node1", "network", "disconnect", "ov1", "www.1")
	eventually(t, 10*time.Second, "www.1's interface on ov1 gone", func() (bool, string) {
		out, err := l.on("node1", "exec", "www.1", "--", "ip", "a")
		return err == nil && !strings.Contains(out, "10.0.9.77"), out
	})
	eventually(t, 20*time.Second, "w no longer resolves from c1", func() (bool, string) {
		out, _ := l.on("node2", "exec", "c1", "--", "nslookup", "w")
		return !strings.Contains(out, "10.0.9.77"), out
	})
	if out, err := l.on("node2", "exec", "c1", "--", "ping", "-c1", "-W2", "10.0.9.77"); err == nil || answered(out, "10.0.9.77") {
		t.Errorf("c1 still reaches 10.0.9.77 after disconnect: %v\n%s", err, out)
	}
	if out, err := l.on("node1", "exec", "www.1", "--", "ping", "-c1", "-W2", c1IP); err == nil || answered(out, c1IP) {
		t.Errorf("www.1 still reaches c1 after disconnect: %v\n%s", err, out)
	}
	if got := on("node1", "inspect", "-f", "{{.State.Pid}}", "www.1"); got != pid {
		t.Errorf("www.1's process %s after disconnect, was %s: it was restarted", got, pid)
	}
	// The address is given back: another container may take it.
	on("node2", "run", "-d", "--name", "c2", "--net", "ov1", "--ip", "10.0.9.77", "alpine", "sleep", "1000")
	// A container leaves its last network too, as docker's: loopback only.
	on("node2", "network", "disconnect", "ov1", "c1")
	eventually(t, 10*time.Second, "c1 with its loopback only", func() (bool, string) {
		out, err := l.on("node2", "exec", "c1", "--", "ip", "-o", "link")
		return err == nil && strings.Count(strings.TrimSpace(out), "\n") == 0 && strings.Contains(out, " lo:"), out
	})
	on("node2", "rm", "-f", "c1", "c2")
}
