package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestNetworkConnectOnAttachableOverlay connects a running container on
// a worker to a second attachable overlay and disconnects it, live, as
// docker network connect does: it reaches a service there by name once
// connected, a task of that service on the manager reaches it by its
// alias over VXLAN, its process is not restarted, and a disconnect takes
// its interface, its address and its names away again.
func TestNetworkConnectOnAttachableOverlay(t *testing.T) {
	l := newLab(t, 2)
	on := func(node string, args ...string) string {
		t.Helper()
		return strings.TrimSpace(l.must(t, append([]string{"--node", node}, args...)...))
	}
	on("node1", "network", "create", "-d", "overlay", "--attachable", "ov1")
	on("node1", "network", "create", "-d", "overlay", "--attachable", "ov2")
	on("node1", "service", "create", "--name", "www", "--constraint", "node.hostname==node1", "--network", "ov2", "whoami")
	www := l.tasks(t, "www")["www.1"]
	if www.node != "node1" {
		t.Fatalf("www.1 is on %q, want node1", www.node)
	}
	on("node2", "run", "-d", "--name", "c1", "--net", "ov1", "alpine", "sleep", "1000")
	var pid string
	eventually(t, 10*time.Second, "c1's process started", func() (bool, string) {
		pid = on("node2", "inspect", "-f", "{{.State.Pid}}", "c1")
		return pid != "0" && pid != "", pid
	})

	// Not on ov2 yet: www is no name for c1.
	if out, err := l.on("node2", "exec", "c1", "--", "wget", "-qO-", "-T", "3", "http://www/"); err == nil || strings.Contains(out, "Hostname: ") {
		t.Errorf("wget http://www/ from c1 before connect: %v\n%s", err, out)
	}

	on("node2", "network", "connect", "--alias", "box", "ov2", "c1")
	ov2IP := on("node2", "inspect", "-f", `{{(index .NetworkSettings.Networks "ov2").IPAddress}}`, "c1")
	if !strings.HasPrefix(ov2IP, "10.0.") {
		t.Fatalf("c1's address on ov2: %q", ov2IP)
	}
	// The call returns once node2's desired state has the change; its
	// agent then attaches c1.
	eventually(t, 10*time.Second, "c1's eth2 with its ov2 address", func() (bool, string) {
		out, _ := l.on("node2", "exec", "c1", "--", "ip", "-o", "-4", "addr", "show", "dev", "eth2")
		return strings.Contains(out, " "+ov2IP+"/"), out
	})
	eventually(t, 10*time.Second, "c1's /etc/hosts names its ov2 address", func() (bool, string) {
		out, _ := l.on("node2", "exec", "c1", "--", "cat", "/etc/hosts")
		return strings.Contains(out, ov2IP+"\t"), out
	})
	eventually(t, 20*time.Second, "wget http://www/ from c1", func() (bool, string) {
		out, _ := l.on("node2", "exec", "c1", "--", "wget", "-qO-", "-T", "3", "http://www/")
		return strings.Contains(out, "Hostname: "), out
	})
	eventually(t, 20*time.Second, "ping box from "+www.name, func() (bool, string) {
		out, _ := l.on("node1", "exec", www.name, "--", "ping", "-c1", "-W2", "box")
		return answered(out, ov2IP), out
	})
	eventually(t, 10*time.Second, "c1 in network inspect ov2", func() (bool, string) {
		out, _ := l.on("node2", "network", "inspect", "ov2")
		return strings.Contains(out, `"Name": "c1"`) && strings.Contains(out, ov2IP), out
	})
	if out, err := l.on("node2", "network", "connect", "ov2", "c1"); err == nil || !strings.Contains(out, "already attached") {
		t.Errorf("connect to ov2 again: %v\n%s", err, out)
	}
	if out, err := l.on("node1", "network", "connect", "ov2", www.name); err == nil || !strings.Contains(out, "already exists in network ov2") {
		t.Errorf("connect of a service's task to its own network: %v\n%s", err, out)
	}

	on("node2", "network", "disconnect", "ov2", "c1")
	eventually(t, 10*time.Second, "c1 gone from network inspect ov2", func() (bool, string) {
		out, _ := l.on("node2", "network", "inspect", "ov2")
		return !strings.Contains(out, `"Name": "c1"`) && !strings.Contains(out, ov2IP), out
	})
	eventually(t, 10*time.Second, "c1's eth2 gone", func() (bool, string) {
		out, err := l.on("node2", "exec", "c1", "--", "ip", "-o", "link")
		return err == nil && !strings.Contains(out, "eth2"), out
	})
	eventually(t, 10*time.Second, "c1's /etc/hosts without its ov2 address", func() (bool, string) {
		out, err := l.on("node2", "exec", "c1", "--", "cat", "/etc/hosts")
		return err == nil && !strings.Contains(out, ov2IP), out
	})
	eventually(t, 40*time.Second, "box no longer answers from "+www.name, func() (bool, string) {
		out, _ := l.on("node1", "exec", www.name, "--", "ping", "-c1", "-W2", "box")
		return !answered(out, ov2IP), out
	})
	if out, err := l.on("node2", "exec", "c1", "--", "wget", "-qO-", "-T", "3", "http://www/"); err == nil || strings.Contains(out, "Hostname: ") {
		t.Errorf("wget http://www/ from c1 after disconnect: %v\n%s", err, out)
	}
	if got := on("node2", "inspect", "-f", "{{.State.Pid}}", "c1"); got != pid {
		t.Errorf("c1's process %s after connect and disconnect, was %s: it was restarted", got, pid)
	}
	// A container of the cluster joins a bridge network of its node too
	// (TestNetworkConnectTaskToBridge checks what it gets there).
	on("node2", "network", "create", "dev")
	on("node2", "network", "connect", "dev", "c1")
	on("node2", "network", "disconnect", "dev", "c1")
	on("node2", "rm", "-f", "c1")
}
