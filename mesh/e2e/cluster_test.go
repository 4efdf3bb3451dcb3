package e2e

import (
	"os"

	"fmt"
	"path/filepath"
	"strings"
	"syscall"
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
	all := []string{"node1", "node2", "node3"}
	ready := "node1 Ready Leader\nnode2 Ready \nnode3 Ready"
	l.waitNodes(t, all, ready, 10*time.Second)

	t.Run("node ls table", func(t *testing.T) {
		out, err := l.on("node2", "node", "ls")
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
		if !strings.Contains(lines[2], " * ") || !strings.Contains(lines[2], "node2") {
			t.Errorf("node ls on node2 does not mark node2 with *:\n%s", out)
		}
	})

	t.Run("join-token", func(t *testing.T) {
		out, err := l.on("node1", "swarm", "join-token")
		if err != nil || !strings.Contains(out, "meshd --advertise-addr <ITS-ADDRESS> --join 192.168.33.10 --token SWMTKN-1-") {
			t.Errorf("join-token: %v\n%s", err, out)
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

	t.Run("write forwarded to the manager", func(t *testing.T) {
		if out, err := l.on("node2", "node", "update", "--availability", "drain", "node3"); err != nil {
			t.Fatalf("node update on node2: %v\n%s", err, out)
		}
		eventually(t, 5*time.Second, "node3 drained, seen from node3", func() (bool, string) {
			out, _ := l.on("node3", "node", "inspect", "node3", "--format", "{{.Availability}}")
			return strings.TrimSpace(out) == "Drain", out
		})
		out, err := l.on("node3", "node", "update", "--availability", "sideways", "node3")
		if err == nil || !strings.Contains(out, "invalid availability") {
			t.Errorf("bad availability: err %v, output %q", err, out)
		}
		if out, err := l.on("node1", "node", "update", "--availability", "active", "node3"); err != nil {
			t.Errorf("node update back: %v\n%s", err, out)
		}
	})

	t.Run("killed node is Down, restarted node is Ready", func(t *testing.T) {
		lb := l.load()
		if err := lb.StopNode("node2", syscall.SIGKILL); err != nil {
			t.Fatalf("kill node2: %v", err)
		}
		start := time.Now()
		l.waitNodes(t, []string{"node1", "node3"}, "node1 Ready Leader\nnode2 Down \nnode3 Ready", 20*time.Second)
		t.Logf("node2 seen Down on node1 and node3 after %s", time.Since(start).Round(100*time.Millisecond))
		if err := lb.StartNode(t.Context(), "node2"); err != nil {
			t.Fatalf("restart node2: %v", err)
		}
		l.waitNodes(t, all, ready, 20*time.Second)
	})

	t.Run("restarted manager comes back with its state", func(t *testing.T) {
		lb := l.load()
		if err := lb.StopNode("node1", syscall.SIGTERM); err != nil {
			t.Fatalf("stop node1: %v", err)
		}
		l.waitNodes(t, []string{"node2", "node3"}, "node1 Down Unreachable\nnode2 Ready \nnode3 Ready", 10*time.Second)
		if err := lb.StartNode(t.Context(), "node1"); err != nil {
			t.Fatalf("restart node1: %v", err)
		}
		l.waitNodes(t, all, ready, 20*time.Second)
	})

	t.Run("wrong token is refused", func(t *testing.T) {
		out, err := l.ctl("lab", "exec", "node3", "--", filepath.Join(binDir, "meshd"), "--node-name", "intruder",
			"--advertise-addr", "192.168.33.12", "--join", "192.168.33.10",
			"--token", "SWMTKN-1-thisisnotthetoken0000000000", "--run-dir", t.TempDir())
		if err == nil || !strings.Contains(out, "join refused by 192.168.33.10:2377: invalid join token") {
			t.Errorf("join with a wrong token: err %v, output:\n%s", err, out)
		}
		l.waitNodes(t, []string{"node1"}, ready, 2*time.Second)
	})

	t.Run("unreachable manager", func(t *testing.T) {
		out, err := l.ctl("lab", "exec", "node3", "--", filepath.Join(binDir, "meshd"), "--node-name", "lost",
			"--advertise-addr", "192.168.33.12", "--join", "192.168.33.99", "--join-timeout", "2s",
			"--token", "SWMTKN-1-0000000000000000000000000", "--run-dir", t.TempDir())
		if err == nil || !strings.Contains(out, "manager unreachable") || strings.Count(strings.TrimSpace(out), "\n") > 3 {
			t.Errorf("join to nowhere: err %v, output:\n%s", err, out)
		}
	})
}

func TestBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	tests := []struct {
		name string
		bin  string
		args []string
		want string
	}{
		{name: "meshd unknown flag", bin: "meshd", args: []string{"--bogus"}, want: "meshd: unknown flag: --bogus"},
		{name: "meshd bad lb mode", bin: "meshd", args: []string{"--advertise-addr", "192.168.33.10", "--lb-mode", "nft", "--run-dir", t.TempDir()}, want: "--lb-mode"},
		{name: "meshctl unknown command", bin: "meshctl", args: []string{"frobnicate"}, want: `unknown command "frobnicate"`},
		{name: "meshctl no daemon", bin: "meshctl", args: []string{"--socket", filepath.Join(t.TempDir(), "none.sock"), "node", "ls"}, want: "cannot reach meshd"},
		{name: "lab down with nothing up", bin: "meshctl", args: []string{"--lab-prefix", "zz-", "--lab-root", t.TempDir(), "lab", "down"}, want: "no lab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(10*time.Second, filepath.Join(binDir, tt.bin), tt.args...)
			if !strings.Contains(out, tt.want) {
				t.Errorf("output %q, want it to contain %q", out, tt.want)
			}
			lines := strings.Count(strings.TrimSpace(out), "\n") + 1
			if lines != 1 {
				t.Errorf("%d lines of output, want one:\n%s", lines, out)
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
