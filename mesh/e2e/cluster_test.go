package e2e

import (
	"os"

	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
)

const nodeFormat = "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"

// nodeStatus returns "hostname status [Leader]" lines of node ls on node.
func (l *testLab) nodeStatus(node string) (string, error) {
	out, err := l.on(node, "node", "ls", "--format", nodeFormat)
	return strings.TrimSpace(out), err
}

// waitNodes waits until node ls on every given node prints want.
func (l *testLab) waitNodes(t *testing.T, on []string, want string, timeout time.Duration) {
	t.Helper()
	for _, n := range on {
		eventually(t, timeout, "node ls on "+n, func() (bool, string) {
			got, err := l.nodeStatus(n)
			return err == nil && got == want, fmt.Sprintf("%s (err %v)", got, err)
		})
	}
}

func TestClusterLifecycle(t *testing.T) {
	l := newLab(t, 3)
	ready := "node1 Ready Leader\nnode2 Ready \nnode3 Ready"
	l.waitNodes(t, []string{"node1"}, ready, 10*time.Second)

	t.Run("node ls table", func(t *testing.T) {
		out, err := l.on("node1", "node", "ls")
		if err != nil {
			t.Fatalf("node ls: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "MANAGER STATUS") || !strings.Contains(lines[0], "DATAPLANE") {
			t.Fatalf("node ls output:\n%s", out)
		}
		for _, want := range []string{"192.168.33.10", "192.168.33.11", "192.168.33.12", expectedPlane(lbMode()), "Active"} {
			if !strings.Contains(out, want) {
				t.Errorf("node ls lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(lines[1], " * ") || !strings.Contains(lines[1], "node1") {
			t.Errorf("node ls on node1 does not mark node1 with *:\n%s", out)
		}
	})

	t.Run("join-token", func(t *testing.T) {
		for _, role := range []string{"worker", "manager"} {
			out, err := l.on("node1", "swarm", "join-token", role)
			want := "To add a " + role + " to this swarm, run the following command:\n\n    meshctl swarm join --token SWMTKN-1-"
			if err != nil || !strings.HasPrefix(out, want) || !strings.HasSuffix(out, " 192.168.33.10:2377\n\n") {
				t.Errorf("join-token %s: %v\n%s", role, err, out)
			}
		}
		w, _ := l.on("node1", "swarm", "join-token", "-q", "worker")
		m, _ := l.on("node1", "swarm", "join-token", "-q", "manager")
		if w == m {
			t.Errorf("worker and manager tokens are the same: %s", w)
		}
	})

	t.Run("second lab up", func(t *testing.T) {
		if out, err := l.ctl("lab", "up", "--nodes", "3"); err != nil {
			t.Errorf("second lab up with the same size: %v, want a no-op\n%s", err, out)
		}
		out, err := l.ctl("lab", "up", "--nodes", "2")
		if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("lab up with another size: err %v, want a one-line error; output:\n%s", err, out)
		}
		l.waitNodes(t, []string{"node1"}, ready, 5*time.Second)
	})

	t.Run("workers refuse cluster reads and writes", func(t *testing.T) {
		const refusal = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."
		for _, args := range [][]string{{"node", "ls"}, {"service", "ls"}, {"node", "update", "--availability", "drain", "node3"}} {
			out, err := l.on("node2", args...)
			if err == nil || !strings.Contains(out, refusal) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("%s on node2: err %v, want docker's one-line refusal:\n%s", strings.Join(args, " "), err, out)
			}
		}
		if out, err := l.on("node1", "node", "update", "--availability", "drain", "node3"); err != nil {
			t.Fatalf("node update on node1: %v\n%s", err, out)
		}
		out := l.must(t, "--node", "node1", "node", "inspect", "node3", "--format", "{{.Availability}}")
		if strings.TrimSpace(out) != "Drain" {
			t.Errorf("node3 availability after the update: %q", out)
		}
		out, err := l.on("node1", "node", "update", "--availability", "sideways", "node3")
		if err == nil || !strings.Contains(out, "invalid availability") {
			t.Errorf("bad availability: err %v, output %q", err, out)
		}
		l.must(t, "--node", "node1", "node", "update", "--availability", "active", "node3")
	})

	t.Run("killed node is Down, restarted node is Ready", func(t *testing.T) {
		l.must(t, "lab", "stop", "node2", "--kill")
		start := time.Now()
		l.waitNodes(t, []string{"node1"}, "node1 Ready Leader\nnode2 Down \nnode3 Ready", 20*time.Second)
		t.Logf("node2 seen Down on node1 after %s", time.Since(start).Round(100*time.Millisecond))
		l.must(t, "lab", "start", "node2")
		l.waitNodes(t, []string{"node1"}, ready, 20*time.Second)
	})

	t.Run("restarted manager comes back with its state", func(t *testing.T) {
		// The network as the cluster keeps it: Containers are node1's
		// endpoints, whose tasks may be new ones after the restart.
		before := l.must(t, "--node", "node1", "network", "inspect", "ingress", "--format", networkProjection)
		l.must(t, "lab", "stop", "node1")
		eventually(t, 10*time.Second, "node2 says the manager is unreachable", func() (bool, string) {
			out, _ := l.on("node2", "info")
			return strings.Contains(out, "WARNING: manager unreachable"), out
		})
		l.must(t, "lab", "start", "node1")
		l.waitNodes(t, []string{"node1"}, ready, 20*time.Second)
		if after := l.must(t, "--node", "node1", "network", "inspect", "ingress", "--format", networkProjection); after != before {
			t.Errorf("ingress changed over the manager's restart:\n%s\n---\n%s", before, after)
		}
		eventually(t, 10*time.Second, "node2 hears the manager again", func() (bool, string) {
			out, _ := l.on("node2", "info")
			return !strings.Contains(out, "WARNING"), out
		})
	})

	t.Run("wrong tokens are refused", func(t *testing.T) {
		good := strings.TrimSpace(l.must(t, "--node", "node1", "swarm", "join-token", "-q", "worker"))
		digest := strings.Split(strings.TrimPrefix(good, "SWMTKN-1-"), "-")[0]
		for _, tt := range []struct{ token, want string }{
			{"SWMTKN-1-" + digest + "-" + strings.Repeat("0", 25), "join 192.168.33.10:2377: the manager refused the token"},
			{"SWMTKN-1-" + strings.Repeat("0", 50) + "-" + strings.Split(good, "-")[3], "the manager's CA is not the one the token names"},
		} {
			out, err := l.ctl("lab", "exec", "node3", "--", filepath.Join(binDir, "meshd"), "--node-name", "intruder",
				"--advertise-addr", "192.168.33.12", "--join", "192.168.33.10", "--token", tt.token, "--run-dir", t.TempDir())
			if err == nil || !strings.Contains(out, tt.want) {
				t.Errorf("join with %.30s…: err %v, want %q; output:\n%s", tt.token, err, tt.want, out)
			}
		}
		l.waitNodes(t, []string{"node1"}, ready, 2*time.Second)
	})

	t.Run("unreachable manager", func(t *testing.T) {
		out, err := l.ctl("lab", "exec", "node3", "--", filepath.Join(binDir, "meshd"), "--node-name", "lost",
			"--advertise-addr", "192.168.33.12", "--join", "192.168.33.99", "--join-timeout", "2s",
			"--token", "SWMTKN-1-"+strings.Repeat("0", 50)+"-"+strings.Repeat("1", 25), "--run-dir", t.TempDir())
		if err == nil || !strings.Contains(out, "manager unreachable") || strings.Count(strings.TrimSpace(out), "\n") > 3 {
			t.Errorf("join to nowhere: err %v, output:\n%s", err, out)
		}
	})

	t.Run("promote and demote", func(t *testing.T) {
		out := l.must(t, "--node", "node1", "node", "promote", "node2")
		if strings.TrimSpace(out) != "Node node2 promoted to a manager in the swarm." {
			t.Errorf("promote: %q", out)
		}
		eventually(t, 10*time.Second, "node2 Reachable, answering node ls", func() (bool, string) {
			got, err := l.nodeStatus("node2")
			return err == nil && got == "node1 Ready Leader\nnode2 Ready Reachable\nnode3 Ready", got
		})
		out = l.must(t, "--node", "node2", "node", "demote", "node2")
		if strings.TrimSpace(out) != "Manager node2 demoted in the swarm." {
			t.Errorf("demote: %q", out)
		}
		l.waitNodes(t, []string{"node1"}, ready, 10*time.Second)
		eventually(t, 10*time.Second, "node2 a worker again", func() (bool, string) {
			out, err := l.on("node2", "node", "ls")
			return err != nil && strings.Contains(out, "Worker nodes can't be used"), out
		})
		out, err := l.on("node1", "node", "demote", "node1")
		if err == nil || !strings.Contains(out, "last manager") {
			t.Errorf("demote the last manager: err %v\n%s", err, out)
		}
	})
}

func TestBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	tests := []struct {
		name  string
		bin   string
		args  []string
		want  string
		lines int // of output; 0 means one
	}{
		{name: "meshd unknown flag", bin: "meshd", args: []string{"--bogus"}, want: "meshd: unknown flag: --bogus"},
		{name: "meshd bad lb mode", bin: "meshd", args: []string{"--advertise-addr", "192.168.33.10", "--lb-mode", "nft", "--run-dir", t.TempDir()}, want: "--lb-mode"},
		// Docker's two lines: the error, then where to look.
		{name: "meshctl unknown command", bin: "meshctl", args: []string{"frobnicate"}, want: "meshctl: 'frobnicate' is not a meshctl command.\nSee 'meshctl --help'", lines: 2},
		{name: "meshctl no daemon", bin: "meshctl", args: []string{"--socket", filepath.Join(t.TempDir(), "none.sock"), "node", "ls"}, want: "cannot reach meshd"},
		{name: "lab down with nothing up", bin: "meshctl", args: []string{"--lab-prefix", "zz-", "--lab-root", t.TempDir(), "lab", "down"}, want: "no lab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(10*time.Second, filepath.Join(binDir, tt.bin), tt.args...)
			if !strings.Contains(out, tt.want) {
				t.Errorf("output %q, want it to contain %q", out, tt.want)
			}
			lines, want := strings.Count(strings.TrimSpace(out), "\n")+1, max(tt.lines, 1)
			if lines != want {
				t.Errorf("%d lines of output, want %d:\n%s", lines, want, out)
			}
			if tt.name != "lab down with nothing up" && err == nil {
				t.Errorf("exit status 0, want non-zero")
			}
		})
	}
}

// expectedPlane is the data plane meshd must choose for mode here.
func expectedPlane(mode string) string {
	if mode != "auto" {
		return mode
	}
	if lb.KernelHasIPVS() {
		return "ipvs"
	}
	return "iptables"
}

func TestAutoPicksTheDataPlane(t *testing.T) {
	testutil.RequireRoot(t)
	l := &testLab{tb: t, prefix: randomPrefix(), root: t.TempDir()}
	t.Cleanup(l.down)
	if out, err := l.ctl("lab", "up", "--nodes", "1", "--lb-mode", "auto"); err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	want := expectedPlane("auto")
	out := l.must(t, "--node", "node1", "node", "ls", "--format", "{{.DataPlane}}")
	if strings.TrimSpace(out) != want {
		t.Errorf("node ls DATAPLANE with --lb-mode auto: %q, want %q (this kernel has IPVS: %v)", out, want, lb.KernelHasIPVS())
	}
	log, err := os.ReadFile(l.load().Nodes()[0].Log)
	if err != nil || !strings.Contains(string(log), "dataplane="+want+` reason="auto: kernel has`) {
		t.Errorf("the log does not say which plane auto chose and why: %v\n%s", err, log)
	}
}
