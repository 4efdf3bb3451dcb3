package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// taskInfo is one task as service ps shows it.
type taskInfo struct{ name, node, ip, mac, id string }

func (l *testLab) tasks(t *testing.T, svc string) map[string]taskInfo {
	t.Helper()
	out, err := l.on("node1", "service", "ps", svc, "--format",
		`{{.Name}} {{.Node}} {{.Task.ID}} {{range .Networks}}{{.Addr}} {{.MAC}} {{end}}`)
	if err != nil {
		t.Fatalf("service ps %s: %v\n%s", svc, err, out)
	}
	got := map[string]taskInfo{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if _, ok := got[f[0]]; ok {
			continue // a slot's history, listed after its current task
		}
		ti := taskInfo{name: f[0], node: f[1], id: f[2]}
		if len(f) >= 5 { // its first network's address and MAC
			ti.ip, ti.mac = strings.Split(f[3], "/")[0], f[4]
		}
		got[f[0]] = ti
	}
	return got
}

// must runs meshctl and fails the test on error.
func (l *testLab) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := l.ctl(args...)
	if err != nil {
		t.Fatalf("meshctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// onNode runs a command on a lab node (its run dir at /var/run/meshd).
func (l *testLab) onNode(node string, argv ...string) (string, error) {
	return l.ctl(append([]string{"lab", "exec", node, "--"}, argv...)...)
}

func (l *testLab) fdb(t *testing.T, node, netID string) string {
	t.Helper()
	out, err := l.onNode(node, "nsenter", "--net=/var/run/meshd/netns/1-"+netID[:10], "bridge", "fdb", "show", "dev", "vxlan0")
	if err != nil {
		t.Fatalf("bridge fdb on %s: %v\n%s", node, err, out)
	}
	return out
}

func TestOverlay(t *testing.T) {
	l := newLab(t, 2)
	netID := strings.TrimSpace(l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet"))
	eventually(t, time.Second, "ovnet in network ls on node2", func() (bool, string) {
		out := l.must(t, "--node", "node2", "network", "ls", "--filter", "name=ovnet", "--format", "{{.Name}} {{.Subnet}} {{.VNI}}")
		return strings.TrimSpace(out) == "ovnet 10.0.0.0/24 4097", out
	})
	l.must(t, "--node", "node1", "service", "create", "--name", "demo", "--replicas", "2", "--network", "ovnet", "alpine")
	tasks := l.tasks(t, "demo")
	t1, t2 := tasks["demo.1"], tasks["demo.2"]
	if t1.node == t2.node {
		t.Fatalf("spread: both tasks on %s", t1.node)
	}
	local, remote := t1, t2
	if local.node != "node1" {
		local, remote = t2, t1
	}

	t.Run("tasks ping each other over VXLAN", func(t *testing.T) {
		var buf strings.Builder
		capture, err := startTcpdump(t, &buf, ctlPath(), "--lab-prefix", l.prefix, "--lab-root", l.root, "lab", "exec", "node1", "--",
			"timeout", "10", "tcpdump", "-c", "2", "-nvi", "eth0", "udp", "port", "4789")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := l.on("node1", "exec", local.name, "--", "ping", "-c", "2", "-W", "2", remote.ip); err != nil {
			t.Errorf("ping %s from %s: %v\n%s", remote.ip, local.name, err, out)
		}
		_ = capture.wait()
		if !strings.Contains(buf.String(), "VXLAN") || !strings.Contains(buf.String(), "vni 4097") {
			t.Errorf("capture on node1's underlay shows no VXLAN vni 4097:\n%s%s", buf.String(), capture.stderr)
		}
	})

	t.Run("overlay namespace as Swarm builds it", func(t *testing.T) {
		out, err := l.onNode("node1", "nsenter", "--net=/var/run/meshd/netns/1-"+netID[:10], "ip", "-d", "link", "show", "vxlan0")
		if err != nil || !strings.Contains(out, "vxlan id 4097") || !strings.Contains(out, "dstport 4789") ||
			!strings.Contains(out, "nolearning") || !strings.Contains(out, "mtu 1450") || !strings.Contains(out, "master br0") {
			t.Errorf("vxlan0 on node1: %v\n%s", err, out)
		}
		fdb := l.fdb(t, "node1", netID)
		want := regexp.MustCompile(regexp.QuoteMeta(remote.mac) + ` dst 192\.168\.33\.11 (link-netnsid \d+ )?self permanent`)
		if !want.MatchString(fdb) {
			t.Errorf("node1 fdb lacks %s -> 192.168.33.11:\n%s", remote.mac, fdb)
		}
		if strings.Contains(fdb, local.mac) {
			t.Errorf("node1 fdb has its own task %s:\n%s", local.mac, fdb)
		}
	})

	t.Run("networks are isolated", func(t *testing.T) {
		l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "other")
		l.must(t, "--node", "node1", "service", "create", "--name", "iso", "--network", "other", "alpine")
		iso := l.tasks(t, "iso")["iso.1"]
		out, err := l.on("node1", "exec", local.name, "--", "ping", "-c", "1", "-W", "1", iso.ip)
		if err == nil || !strings.Contains(out, "100% packet loss") {
			t.Errorf("ping across networks %s -> %s: err %v, want 100%% packet loss:\n%s", local.name, iso.ip, err, out)
		}
		l.must(t, "--node", "node1", "service", "rm", "iso")
		l.must(t, "--node", "node1", "network", "rm", "other")
	})

	t.Run("bad input is refused and changes nothing", func(t *testing.T) {
		before := l.must(t, "--node", "node1", "network", "ls")
		for _, args := range [][]string{
			{"network", "create", "--driver", "overlay", "--subnet", "10.0.0.0/16", "overlapping"},
			{"network", "create", "--driver", "overlay", "--subnet", "10.30.0.0/24", "--gateway", "10.31.0.1", "gwout"},
			{"network", "create", "--driver", "overlay", "--subnet", "nonsense", "bad"},
			{"service", "create", "--name", "x", "--network", "nope", "alpine"},
			{"service", "create", "--name", "x", "--replicas", "-1", "alpine"},
			{"service", "create", "--name", "x", "postgres"},
			{"network", "rm", "ovnet"},
		} {
			out, err := l.on("node1", args...)
			if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("meshctl %s: err %v, want a one-line error; got:\n%s", strings.Join(args, " "), err, out)
			}
		}
		if after := l.must(t, "--node", "node1", "network", "ls"); after != before {
			t.Errorf("network ls changed:\nbefore\n%s\nafter\n%s", before, after)
		}
		if out := l.must(t, "--node", "node1", "service", "ls", "-q"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("service ls after refusals:\n%s", out)
		}
	})

	t.Run("scale down and rm remove the entries everywhere", func(t *testing.T) {
		// The task drains for --drain-delay (2 s) before it goes.
		l.must(t, "--node", "node1", "service", "scale", "demo=1")
		gone := tasks["demo.2"]
		other := map[string]string{"node1": "node2", "node2": "node1"}[gone.node]
		eventually(t, 5*time.Second, "fdb entry of demo.2 removed on "+other, func() (bool, string) {
			fdb := l.fdb(t, other, netID)
			return !strings.Contains(fdb, gone.mac), fdb
		})
		l.must(t, "--node", "node1", "service", "rm", "demo")
		l.must(t, "--node", "node1", "network", "rm", "ovnet")
		for _, node := range []string{"node1", "node2"} {
			eventually(t, 5*time.Second, "overlay namespace gone on "+node, func() (bool, string) {
				out, _ := l.onNode(node, "ls", "/var/run/meshd/netns")
				return !strings.Contains(out, "1-"+netID[:10]) && !strings.Contains(out, local.id), out
			})
		}
	})
}

func ctlPath() string { return fmt.Sprintf("%s/meshctl", binDir) }
