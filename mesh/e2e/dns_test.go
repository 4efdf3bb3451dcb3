package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// startUpstreamDNS runs dnsmasq in the client namespace at 192.168.33.1,
// the lab's only upstream: example.org is known, everything else is
// NXDOMAIN. No real resolver is ever asked.
func (l *testLab) startUpstreamDNS(t testing.TB) {
	t.Helper()
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("192.168.33.1 example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ctlPath(), "--lab-prefix", l.prefix, "--lab-root", l.root, "lab", "exec", "client", "--",
		"dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--addn-hosts="+hosts, "--address=/#/",
		"--listen-address=192.168.33.1", "--bind-interfaces", "--port=53", "--pid-file=", "--user=root")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// in runs a command inside a task and returns its output.
func (l *testLab) in(t *testing.T, node, task string, argv ...string) string {
	t.Helper()
	out, err := l.on(node, append([]string{"exec", task, "--"}, argv...)...)
	if err != nil {
		t.Errorf("%s in %s: %v\n%s", strings.Join(argv, " "), task, err, out)
	}
	return out
}

func sortedLines(s string) string {
	lines := strings.Fields(s)
	sort.Strings(lines)
	return strings.Join(lines, " ")
}

func TestEmbeddedDNS(t *testing.T) {
	l := newLab(t, 2)
	l.startUpstreamDNS(t)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "other")
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "2", "--network", "ovnet", "whoami")
	l.must(t, "--node", "node1", "service", "create", "--name", "demo", "--replicas", "2", "--network", "ovnet", "alpine")
	l.must(t, "--node", "node1", "service", "create", "--name", "hidden", "--network", "other", "alpine")
	www := l.tasks(t, "www")
	demos := l.tasks(t, "demo")
	wantTasks := sortedLines(www["www.1"].ip + " " + www["www.2"].ip)

	for _, d := range demos {
		t.Run("from "+d.name+" on "+d.node, func(t *testing.T) {
			if out := l.in(t, d.node, d.name, "nslookup", "www"); !strings.Contains(out, "Address: 10.0.0.2") {
				t.Errorf("nslookup www: want the VIP 10.0.0.2:\n%s", out)
			}
			if got := sortedLines(l.in(t, d.node, d.name, "dig", "+short", "tasks.www")); got != wantTasks {
				t.Errorf("tasks.www: got %q, want %q", got, wantTasks)
			}
			ptr := strings.TrimSpace(l.in(t, d.node, d.name, "dig", "+short", "-x", www["www.1"].ip))
			if want := "www.1." + www["www.1"].id + ".ovnet."; ptr != want {
				t.Errorf("PTR of %s: got %q, want %q", www["www.1"].ip, ptr, want)
			}
			if out := l.in(t, d.node, d.name, "wget", "-qO-", "-T", "3", "http://www"); !strings.Contains(out, "Hostname: ") {
				t.Errorf("wget http://www:\n%s", out)
			}
			if out := l.in(t, d.node, d.name, "nslookup", "example.org"); !strings.Contains(out, "Address: 192.168.33.1") {
				t.Errorf("forwarded example.org:\n%s", out)
			}
			out, _ := l.on(d.node, "exec", d.name, "--", "dig", "hidden")
			if !strings.Contains(out, "status: NXDOMAIN") {
				t.Errorf("a service on another network must be NXDOMAIN:\n%s", out)
			}
			if out := l.in(t, d.node, d.name, "dig", "AAAA", "www"); !strings.Contains(out, "status: NOERROR") || strings.Contains(out, "ANSWER SECTION") {
				t.Errorf("AAAA www: want NOERROR with no answer:\n%s", out)
			}
			if out := l.in(t, d.node, d.name, "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 127.0.0.11") || !strings.Contains(out, "options ndots:0") {
				t.Errorf("resolv.conf in the task:\n%s", out)
			}
		})
	}

	t.Run("dnsrr answers every task, no VIP", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--name", "rr", "--replicas", "2", "--endpoint-mode", "dnsrr", "--network", "ovnet", "nginx")
		rr := l.tasks(t, "rr")
		want := sortedLines(rr["rr.1"].ip + " " + rr["rr.2"].ip)
		d := demos["demo.1"]
		eventually(t, time.Second, "rr resolves to both tasks", func() (bool, string) {
			out, _ := l.on(d.node, "exec", d.name, "--", "dig", "+short", "rr")
			return sortedLines(out) == want, out
		})
		if out := l.in(t, d.node, d.name, "wget", "-qO-", "-T", "3", "http://rr"); !strings.Contains(out, "Welcome to nginx!") {
			t.Errorf("wget http://rr:\n%s", out)
		}
	})

	t.Run("scale is seen on every node within a second", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "scale", "www=3")
		start := time.Now()
		for _, d := range demos {
			eventually(t, time.Second, "three tasks.www from "+d.name, func() (bool, string) {
				out, _ := l.on(d.node, "exec", d.name, "--", "dig", "+short", "tasks.www")
				return len(regexp.MustCompile(`(?m)^10\.0\.0\.\d+$`).FindAllString(out, -1)) == 3, out
			})
		}
		t.Logf("all resolvers answered 3 tasks %s after the scale converged", time.Since(start).Round(10*time.Millisecond))
	})
}
