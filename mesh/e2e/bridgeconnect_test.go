package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNetworkConnectTaskToBridge connects a service's running task to a
// bridge network of its node and disconnects it, live, as docker network
// connect does: a new ethN with the address asked for, a container of the
// bridge network reaches the task by its name, its alias and its address,
// and the task reaches the container by name; a disconnect takes name and
// address reachability away, gives the address back and leaves the
// node's links as they were. A link deleted by hand is made again. A task
// that stops while connected leaves nothing behind either.
func TestNetworkConnectTaskToBridge(t *testing.T) {
	l := newLab(t, 2)
	on := func(node string, args ...string) string {
		t.Helper()
		return strings.TrimSpace(l.must(t, append([]string{"--node", node}, args...)...))
	}
	// hostLinks are the names of node1's links, sorted.
	hostLinks := func() string {
		t.Helper()
		out, err := l.onNode("node1", "ip", "-br", "link")
		if err != nil {
			t.Fatalf("ip link on node1: %v\n%s", err, out)
		}
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			name, _, _ := strings.Cut(strings.Fields(line)[0], "@") // vethX@ifN: N changes at each connect
			names = append(names, name)
		}
		slices.Sort(names)
		return strings.Join(names, " ")
	}
	on("node1", "network", "create", "--subnet", "10.88.0.0/24", "dev")
	on("node1", "network", "create", "-d", "overlay", "svcnet")
	on("node1", "service", "create", "--name", "www", "--constraint", "node.hostname==node1", "--network", "svcnet", "whoami")
	www := l.tasks(t, "www")["www.1"]
	if www.node != "node1" {
		t.Fatalf("www.1 is on %q, want node1", www.node)
	}
	on("node1", "run", "-d", "--name", "b1", "--net", "dev", "alpine", "sleep", "1000")
	b1IP := on("node1", "inspect", "-f", `{{(index .NetworkSettings.Networks "dev").IPAddress}}`, "b1")
	var pid string
	eventually(t, 10*time.Second, "www.1's process started", func() (bool, string) {
		pid = on("node1", "inspect", "-f", "{{.State.Pid}}", "www.1")
		return pid != "0" && pid != "", pid
	})
	before := hostLinks()

	on("node1", "network", "connect", "--alias", "w", "--ip", "10.88.0.77", "dev", "www.1")
	var made []string // the host ends the connect made
	for _, name := range strings.Fields(hostLinks()) {
		if !slices.Contains(strings.Fields(before), name) {
			made = append(made, name)
		}
	}
	if len(made) != 1 || !strings.HasPrefix(made[0], "veth") {
		t.Errorf("connect made host links %v, want one veth", made)
	}
	if out := on("node1", "exec", "www.1", "--", "ip", "a"); !strings.Contains(out, "inet 10.88.0.77/24") || !strings.Contains(out, "eth2") {
		t.Fatalf("www.1 after connect: want eth2 with 10.88.0.77/24\n%s", out)
	}
	// The link lives on node1 alone, where inspect shows it, as Docker's.
	if got := on("node1", "inspect", "-f", `{{(index .NetworkSettings.Networks "dev").IPAddress}} {{(index .NetworkSettings.Networks "dev").Aliases}}`, "www.1"); got != "10.88.0.77 [w]" {
		t.Errorf("inspect www.1 on dev: %q, want %q", got, "10.88.0.77 [w]")
	}
	if got := on("node1", "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}};{{end}}", "dev"); !strings.Contains(got, "www.1."+www.id+" 10.88.0.77/24;") {
		t.Errorf("network inspect dev: %q, want www.1.%s at 10.88.0.77/24 among its containers", got, www.id)
	}
	for _, name := range []string{"w", "www.1." + www.id, "10.88.0.77"} {
		out, err := l.on("node1", "exec", "b1", "--", "wget", "-qO-", "-T", "3", "http://"+name+"/")
		if err != nil || !strings.Contains(out, "IP: 10.88.0.77") {
			t.Errorf("b1 to www.1 as %s: %v\n%s", name, err, out)
		}
	}
	for _, name := range []string{"b1", "b1.dev"} {
		if out, _ := l.on("node1", "exec", "www.1", "--", "ping", "-c1", "-W2", name); !answered(out, b1IP) {
			t.Errorf("www.1 to b1 as %s:\n%s", name, out)
		}
	}
	if out, err := l.on("node1", "exec", "www.1", "--", "getent", "hosts", "b1"); err != nil || !strings.Contains(out, b1IP) {
		t.Errorf("getent hosts b1 in www.1: %v\n%s", err, out)
	}
	// Names are scoped per network: the overlay's service is no name on
	// the bridge.
	if out, _ := l.on("node1", "exec", "b1", "--", "nslookup", "www"); strings.Contains(out, "Address: 10.") {
		t.Errorf("b1 resolves the service www of svcnet:\n%s", out)
	}
	// A link deleted by hand is made again, with its name and address.
	if len(made) == 1 {
		if out, err := l.onNode("node1", "ip", "link", "del", made[0]); err != nil {
			t.Fatalf("ip link del %s on node1: %v\n%s", made[0], err, out)
		}
		eventually(t, 10*time.Second, "www.1's link on dev made again", func() (bool, string) {
			out, _ := l.on("node1", "exec", "www.1", "--", "ip", "-o", "-4", "addr", "show", "eth2")
			return strings.Contains(out, "10.88.0.77/24") && strings.Contains(hostLinks(), made[0]), out
		})
		if out, err := l.on("node1", "exec", "b1", "--", "wget", "-qO-", "-T", "3", "http://10.88.0.77/"); err != nil || !strings.Contains(out, "IP: 10.88.0.77") {
			t.Errorf("b1 to www.1 after the link's repair: %v\n%s", err, out)
		}
	}
	for _, args := range [][]string{{"network", "connect", "dev", "www.1"}, {"network", "rm", "dev"}} {
		if out, err := l.on("node1", args...); err == nil || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("meshctl %s while connected: %v\n%s\nwant a one-line refusal", strings.Join(args, " "), err, out)
		}
	}

	on("node1", "network", "disconnect", "dev", "www.1")
	if out := on("node1", "exec", "www.1", "--", "ip", "a"); strings.Contains(out, "10.88.0.77") || strings.Contains(out, "eth2") {
		t.Errorf("www.1 after disconnect still has its link on dev:\n%s", out)
	}
	if out, _ := l.on("node1", "exec", "b1", "--", "nslookup", "w"); strings.Contains(out, "10.88.0.77") {
		t.Errorf("w still resolves from b1 after disconnect:\n%s", out)
	}
	if out, err := l.on("node1", "exec", "b1", "--", "ping", "-c1", "-W2", "10.88.0.77"); err == nil || answered(out, "10.88.0.77") {
		t.Errorf("b1 still reaches 10.88.0.77 after disconnect: %v\n%s", err, out)
	}
	if out, _ := l.on("node1", "exec", "www.1", "--", "getent", "hosts", "b1"); strings.Contains(out, b1IP) {
		t.Errorf("www.1 still resolves b1 after disconnect:\n%s", out)
	}
	// mesh_gwbridge is isolated from the bridge networks, as Docker's
	// docker_gwbridge: the task's way out does not lead to b1, nor b1's
	// to the task's gateway address; the mesh's published ports stay
	// open to b1.
	if out, err := l.on("node1", "exec", "www.1", "--", "ping", "-c1", "-W2", b1IP); err == nil || answered(out, b1IP) {
		t.Errorf("www.1 reaches b1 at %s through mesh_gwbridge after disconnect: %v\n%s", b1IP, err, out)
	}
	gwIP := on("node1", "exec", "www.1", "--", "sh", "-c", "ip -4 -o addr show | awk '/ 172\\.18\\./ {sub(\"/.*\", \"\", $4); print $4}'")
	if out, err := l.on("node1", "exec", "b1", "--", "ping", "-c1", "-W2", gwIP); gwIP == "" || err == nil || answered(out, gwIP) {
		t.Errorf("b1 reaches www.1's mesh_gwbridge address %q: %v\n%s", gwIP, err, out)
	}
	on("node1", "service", "create", "--name", "pub", "--publish", "8080:80", "whoami")
	if out, err := l.on("node1", "exec", "b1", "--", "wget", "-qO-", "-T", "3", "http://192.168.33.10:8080/"); err != nil || !strings.Contains(out, "Hostname:") {
		t.Errorf("b1 to the published port 8080 on node1: %v\n%s", err, out)
	}
	on("node1", "service", "rm", "pub")
	if got := hostLinks(); got != before {
		t.Errorf("node1's links after disconnect:\n%s\nwere\n%s", got, before)
	}
	if got := on("node1", "inspect", "-f", "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{end}}", "www.1"); strings.Contains(got, "dev") {
		t.Errorf("inspect www.1 after disconnect still lists dev: %q", got)
	}
	if got := on("node1", "inspect", "-f", "{{.State.Pid}}", "www.1"); got != pid {
		t.Errorf("www.1's process %s after connect and disconnect, was %s: it was restarted", got, pid)
	}
	// The address is given back: a container may take it.
	on("node1", "run", "-d", "--name", "b2", "--net", "dev", "--ip", "10.88.0.77", "alpine", "sleep", "1000")
	on("node1", "rm", "-f", "b2")

	// A task removed while connected takes its link and address with it.
	on("node1", "network", "connect", "--ip", "10.88.0.77", "dev", "www.1")
	on("node1", "service", "rm", "www")
	eventually(t, 20*time.Second, "www.1's link on dev gone with it", func() (bool, string) {
		got := hostLinks()
		return !slices.ContainsFunc(made, func(n string) bool { return slices.Contains(strings.Fields(got), n) }), got
	})
	on("node1", "run", "-d", "--name", "b3", "--net", "dev", "--ip", "10.88.0.77", "alpine", "sleep", "1000")
	on("node1", "rm", "-f", "b1", "b3")
	on("node1", "network", "rm", "dev")
}
