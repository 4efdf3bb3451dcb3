package e2e

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var hostnameRE = regexp.MustCompile(`(?m)^Hostname: (\S+)`)

// hits sends n HTTP requests with curl from where argv runs and counts
// the whoami hostnames that answered; failures count under "".
func (l *testLab) hits(t *testing.T, n int, argv ...string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		out, err := l.ctl(append([]string{}, argv...)...)
		m := hostnameRE.FindStringSubmatch(out)
		if err != nil || m == nil {
			got[""]++
			continue
		}
		got[m[1]]++
	}
	return got
}

func curlFrom(node, url string) []string {
	return []string{"lab", "exec", node, "--", "curl", "-s", "-m", "3", url}
}

// evenSplit says whether n requests went to k backends, n/k each.
func evenSplit(got map[string]int, k, n int) bool {
	if got[""] != 0 || len(got) != k {
		return false
	}
	for _, c := range got {
		if c != n/k {
			return false
		}
	}
	return true
}

// rulesOf returns the rules and user chains in iptables-save of a node's
// own namespace and of its ingress sandbox: what a service could leave
// behind. (Empty tables and built-in chains are left out: nf_tables keeps
// a table once it was used, which is not a leftover of ours.)
func (l *testLab) rulesOf(t *testing.T, node string) string {
	t.Helper()
	var b strings.Builder
	for _, argv := range [][]string{{"iptables-save"}, {"nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "iptables-save"}} {
		out, err := l.onNode(node, argv...)
		if err != nil {
			t.Fatalf("%s on %s: %v\n%s", argv, node, err, out)
		}
		table := ""
		for _, line := range strings.Split(out, "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line
			case strings.HasPrefix(line, "-A "):
				b.WriteString(table + " " + line + "\n")
			case strings.HasPrefix(line, ":") && strings.Fields(line)[1] == "-": // a user chain
				b.WriteString(table + " " + strings.Fields(line)[0] + "\n")
			}
		}
	}
	return b.String()
}

func TestRoutingMesh(t *testing.T) {
	l := newLab(t, 3)
	nodes := []string{"node1", "node2", "node3"}
	before := map[string]string{}
	for _, n := range nodes {
		eventually(t, 5*time.Second, "ingress sandbox on "+n, func() (bool, string) {
			out, err := l.onNode(n, "ls", "/var/run/meshd/netns")
			return err == nil && strings.Contains(out, "ingress_sbox"), out
		})
		before[n] = l.rulesOf(t, n)
	}
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	out := l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "2", "--network", "ovnet", "--publish", "8888:80", "whoami")
	if !strings.Contains(out, "overall progress: 2 out of 2 tasks") || !strings.Contains(out, "verify: Service converged") {
		t.Errorf("service create output:\n%s", out)
	}
	tasks := l.tasks(t, "www")
	withoutTask := ""
	for _, n := range nodes {
		if tasks["www.1"].node != n && tasks["www.2"].node != n {
			withoutTask = n
		}
	}
	t.Logf("tasks on %s and %s; %s has none", tasks["www.1"].node, tasks["www.2"].node, withoutTask)

	t.Run("service inspect shows the VIPs", func(t *testing.T) {
		out := l.must(t, "--node", "node1", "service", "inspect", "www", "--format", "{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}")
		if !regexp.MustCompile(`^10\.255\.0\.\d+/16 10\.0\.0\.2/24 $`).MatchString(strings.TrimRight(out, "\n")) {
			t.Errorf("VirtualIPs: %q, want an ingress /16 address then 10.0.0.2/24", out)
		}
	})

	t.Run("every node answers, round robin", func(t *testing.T) {
		for _, n := range nodes { // the backends reach every node within a second
			eventually(t, time.Second, "two backends in ingress_sbox on "+n, func() (bool, string) {
				out, _ := l.on(n, "lb", "ls", "--format", `{{if eq .Sandbox "ingress_sbox"}}{{.Table}}{{end}}`)
				return strings.Count(out, "Masq") == 2, out
			})
		}
		for i, n := range nodes {
			addr := fmt.Sprintf("192.168.33.1%d", i)
			start := time.Now()
			got := l.hits(t, 30, curlFrom("client", "http://"+addr+":8888/")...)
			if !evenSplit(got, 2, 30) {
				t.Errorf("30 requests to %s (%s) from %s: %v, want 15/15 over two hostnames", addr, n, start.Format("15:04:05.000"), got)
				// What the agents programmed, and what the sandbox
				// resolved, for the next time this is seen.
				out, code := l.checkExit()
				t.Logf("meshctl check (exit %d):\n%s", code, out)
				out, _ = l.onNode(n, "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "ip", "neigh")
				t.Logf("ip neigh in ingress_sbox on %s:\n%s", n, out)
			}
		}
	})

	t.Run("localhost on a node", func(t *testing.T) {
		got := l.hits(t, 4, curlFrom(withoutTask, "http://localhost:8888/")...)
		if !evenSplit(got, 2, 4) {
			t.Errorf("curl localhost:8888 on %s: %v", withoutTask, got)
		}
	})

	t.Run("what the tutorials show", func(t *testing.T) {
		out, err := l.onNode("node1", "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "iptables", "-t", "mangle", "-nvL")
		if err != nil || !regexp.MustCompile(`tcp dpt:8888 .*MARK set 0x100`).MatchString(out) {
			t.Errorf("ingress_sbox mangle on node1: %v\n%s", err, out)
		}
		out = l.must(t, "--node", withoutTask, "lb", "ls")
		re := regexp.MustCompile(`(?s)# ingress_sbox.*FWM  256 rr\n  -> 10\.255\.0\.\d+:0 +Masq +1 .*\n  -> 10\.255\.0\.\d+:0 +Masq +1 `)
		if !re.MatchString(out) {
			t.Errorf("lb ls on %s:\n%s", withoutTask, out)
		}
		if lbMode() != "ipvs" {
			return
		}
		// The kernel's own table, as the tutorials show it.
		out, err = l.onNode(withoutTask, "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "ipvsadm", "-Ln")
		t.Logf("ipvsadm -Ln in ingress_sbox on %s:\n%s", withoutTask, out)
		if err != nil || !regexp.MustCompile(`FWM  256 rr\s*\n  -> 10\.255\.0\.\d+:0 +Masq +1 .*\n  -> 10\.255\.0\.\d+:0 +Masq +1 `).MatchString(out) {
			t.Errorf("ipvsadm -Ln in ingress_sbox: %v\n%s", err, out)
		}
		lbns := "lb_" + strings.TrimSpace(l.must(t, "--node", "node1", "network", "inspect", "ovnet", "--format", "{{.Id}}"))[:9]
		node := tasks["www.1"].node
		out, err = l.onNode(node, "nsenter", "--net=/var/run/meshd/netns/"+lbns, "ipvsadm", "-Ln")
		if err != nil || !regexp.MustCompile(`FWM  257 rr\s*\n  -> 10\.0\.0\.\d+:0 +Masq +1 .*\n  -> 10\.0\.0\.\d+:0 +Masq +1 `).MatchString(out) {
			t.Errorf("ipvsadm -Ln in %s on %s: %v\n%s", lbns, node, err, out)
		}
		for _, sysctl := range []string{"vs/conntrack", "vs/conn_reuse_mode", "vs/expire_nodest_conn", "vs/expire_quiescent_template"} {
			want := map[string]string{"vs/conn_reuse_mode": "0"}[sysctl]
			if want == "" {
				want = "1"
			}
			out, err := l.onNode(withoutTask, "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "cat", "/proc/sys/net/ipv4/"+sysctl)
			if err != nil || strings.TrimSpace(out) != want {
				t.Errorf("net.ipv4.%s in ingress_sbox: %v %q, want %s", sysctl, err, out, want)
			}
		}
	})

	t.Run("VIP inside the overlay", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--name", "probe", "--network", "ovnet", "alpine")
		probe := l.tasks(t, "probe")["probe.1"]
		got := l.hits(t, 10, "--node", probe.node, "exec", "probe.1", "--", "wget", "-qO-", "-T", "3", "http://10.0.0.2/")
		if !evenSplit(got, 2, 10) {
			t.Errorf("10 requests to the VIP from probe.1 on %s: %v, want 5/5", probe.node, got)
		}
	})

	t.Run("scale up adds a backend within a second", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "scale", "www=3")
		start := time.Now()
		eventually(t, time.Second, "third hostname behind node2", func() (bool, string) {
			got := l.hits(t, 3, curlFrom("client", "http://192.168.33.11:8888/")...)
			return len(got) == 3 && got[""] == 0, fmt.Sprint(got)
		})
		t.Logf("third backend answered %s after the scale converged", time.Since(start).Round(10*time.Millisecond))
	})

	t.Run("scale down drains: weight 0, then gone", func(t *testing.T) {
		ingressTable := func() string {
			out, _ := l.on(withoutTask, "lb", "ls", "--format", `{{if eq .Sandbox "ingress_sbox"}}{{.Table}}{{end}}`)
			return out
		}
		drained := regexp.MustCompile(`(?m)^  -> 10\.255\.0\.\d+:0 +Masq +0 `)
		l.must(t, "--node", "node1", "service", "scale", "www=2")
		start := time.Now()
		eventually(t, time.Second, "a backend at weight 0", func() (bool, string) {
			out := ingressTable()
			return drained.MatchString(out) && strings.Count(out, "Masq") == 3, out
		})
		got := l.hits(t, 4, curlFrom("client", "http://192.168.33.12:8888/")...)
		if got[""] != 0 || len(got) != 2 {
			t.Errorf("requests while draining: %v, want the two remaining tasks only", got)
		}
		eventually(t, 5*time.Second, "the drained backend removed", func() (bool, string) {
			out := ingressTable()
			return !drained.MatchString(out) && strings.Count(out, "Masq") == 2, out
		})
		t.Logf("backend drained and removed %s after the scale", time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("host-mode port keeps the client address", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--name", "hm", "--publish", "mode=host,published=8080,target=80", "whoami")
		hm := l.tasks(t, "hm")["hm.1"]
		addr := map[string]string{"node1": "192.168.33.10", "node2": "192.168.33.11", "node3": "192.168.33.12"}
		out, err := l.ctl(curlFrom("client", "http://"+addr[hm.node]+":8080/")...)
		if err != nil || !strings.Contains(out, "RemoteAddr: 192.168.33.1:") {
			t.Errorf("host-mode port on %s: %v\n%s", hm.node, err, out)
		}
		for n, a := range addr {
			if n == hm.node {
				continue
			}
			if out, err := l.ctl(curlFrom("client", "http://"+a+":8080/")...); err == nil {
				t.Errorf("host-mode port answered on %s, which runs no task:\n%s", n, out)
			}
		}
	})

	t.Run("a firewall reload is repaired", func(t *testing.T) {
		url := "http://192.168.33.1" + map[string]string{"node1": "0", "node2": "1", "node3": "2"}[withoutTask] + ":8888/"
		for _, argv := range [][]string{
			{"iptables", "-t", "nat", "-F", "MESH-INGRESS"},
			{"nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "iptables", "-t", "nat", "-F"},
			{"nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "iptables", "-t", "mangle", "-F"},
		} {
			if out, err := l.onNode(withoutTask, argv...); err != nil {
				t.Fatalf("%s on %s: %v\n%s", argv, withoutTask, err, out)
			}
		}
		// The node is told of the flush by the kernel and rebuilds the rules
		// in tens of milliseconds, usually before a request could notice
		// (TestDriftRepaired times it); what matters is that it answers.
		start := time.Now()
		eventually(t, 20*time.Second, "rules restored on "+withoutTask, func() (bool, string) {
			out, err := l.ctl(curlFrom("client", url)...)
			return err == nil && hostnameRE.MatchString(out), out
		})
		t.Logf("%s answered again %s after its nat and mangle tables were flushed", withoutTask, time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("bad ports are refused", func(t *testing.T) {
		for _, args := range [][]string{
			{"service", "create", "--name", "clash", "--publish", "8888:80", "nginx"},
			{"service", "create", "--name", "far", "--publish", "70000:80", "nginx"},
			{"service", "create", "--name", "sctp", "--publish", "9999:80/sctp", "nginx"},
		} {
			out, err := l.on("node1", args...)
			if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("meshctl %s: err %v, want a one-line error; got:\n%s", strings.Join(args, " "), err, out)
			}
		}
		if out := l.must(t, "--node", "node1", "service", "ls", "--filter", "name=clash"); strings.Contains(out, "clash") {
			t.Errorf("a refused service exists:\n%s", out)
		}
	})

	t.Run("published UDP", func(t *testing.T) {
		l.must(t, "--node", "node1", "service", "create", "--name", "udp", "--publish", "5353:53/udp", "--",
			"dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--address=/probe.test/10.9.9.9", "--port=53", "--user=root", "--pid-file=")
		for _, a := range []string{"192.168.33.10", "192.168.33.11", "192.168.33.12"} {
			// The backend reaches every node's tables within a second.
			eventually(t, 2*time.Second, "dig @"+a+" -p 5353 probe.test", func() (bool, string) {
				out, err := l.ctl("lab", "exec", "client", "--", "dig", "+short", "+tries=1", "+time=1", "@"+a, "-p", "5353", "probe.test")
				return err == nil && strings.TrimSpace(out) == "10.9.9.9", out
			})
		}
	})

	t.Run("service rm leaves nothing behind", func(t *testing.T) {
		for _, s := range []string{"www", "probe", "hm", "udp"} {
			l.must(t, "--node", "node1", "service", "rm", s)
		}
		for _, n := range nodes {
			eventually(t, 20*time.Second, "iptables on "+n+" back to the pre-service state", func() (bool, string) {
				after := l.rulesOf(t, n)
				return after == before[n], diffLines(before[n], after)
			})
			// The VIPs leave in the same pass as the rules, but not in the
			// same instant: the rules may be back a moment before.
			eventually(t, 5*time.Second, "no VIP left on ingress_sbox eth0 on "+n, func() (bool, string) {
				out, err := l.onNode(n, "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
				return err == nil && strings.Count(strings.TrimSpace(out), "\n") == 0 && !strings.Contains(out, "/32"), out
			})
		}
	})
}

// diffLines lists the lines only in a and only in b.
func diffLines(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for l, c := range count {
		if c > 0 {
			out = append(out, "- "+l)
		} else if c < 0 {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
