package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repairRuns is how many times each fault is made: the figures are the
// median and the worst of them. MESHD_E2E_REPAIR_RUNS lowers it where the
// figures are not the point (the IPVS suite under software emulation).
var repairRuns = func() int {
	if n, err := strconv.Atoi(os.Getenv("MESHD_E2E_REPAIR_RUNS")); err == nil && n > 0 {
		return n
	}
	return 5
}()

// timeRepair runs, inside a node's namespace, a fault (break), then polls
// every 20 ms until check succeeds, and returns how long that took as the
// node's clock saw it. It fails the test if check never succeeds in 10 s.
func (l *testLab) timeRepair(t *testing.T, node, breakIt, check string) time.Duration {
	t.Helper()
	script := fmt.Sprintf(`set -e
%s
start=$(date +%%s%%N)
end=$((start + 10000000000))
until (%s) >/dev/null 2>&1; do
	[ "$(date +%%s%%N)" -lt "$end" ] || { echo "not repaired in 10 s"; exit 1; }
	sleep 0.02
done
echo $(( ($(date +%%s%%N) - start) / 1000000 ))`, breakIt, check)
	out, err := l.onNode(node, "sh", "-c", script)
	if err != nil {
		t.Fatalf("%s: %v\n%s", breakIt, err, out)
	}
	fields := strings.Fields(out)
	ms, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil {
		t.Fatalf("%s: no time in %q", breakIt, out)
	}
	return time.Duration(ms) * time.Millisecond
}

// medianWorst returns the median and the largest of ds.
func medianWorst(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// TestDriftRepaired makes, by hand, each change the table lists
// in what meshd built, five times, and checks each is repaired within 2 s
// and that the routing mesh answers afterwards.
func TestDriftRepaired(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "3", "--network", "ovnet",
		"--publish", "8080:80", "whoami")
	lbName, _ := l.onNode("node1", "sh", "-c", "ls /var/run/meshd/netns | grep ^lb_")
	lbNS := "/var/run/meshd/netns/" + strings.TrimSpace(lbName)
	vip := ""
	eventually(t, 10*time.Second, "www's VIP on ovnet", func() (bool, string) {
		out, _ := l.on("node1", "service", "inspect", "www", "--format", `{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}`)
		for _, f := range strings.Fields(out) {
			if strings.HasPrefix(f, "10.0.0.") {
				vip = strings.TrimSuffix(f, "/24")
			}
		}
		return vip != "", out
	})
	task, _ := l.on("node1", "ps", "--format", "{{.Task.Status.Sandbox}}")
	taskNS := strings.ReplaceAll(strings.Fields(task + " ")[0], l.load().Nodes()[0].RunDir, "/var/run/meshd")
	if !strings.HasPrefix(taskNS, "/var/run/meshd/netns/") {
		t.Fatalf("node1's task sandbox: %q", task)
	}
	answers := func(t *testing.T) {
		t.Helper()
		for _, a := range []string{"192.168.33.10", "192.168.33.11", "192.168.33.12"} {
			eventually(t, 2*time.Second, "www answers on "+a, func() (bool, string) {
				out, err := l.ctl("lab", "exec", "client", "--", "curl", "-s", "-m", "1", "http://"+a+":8080/")
				return err == nil && strings.Contains(out, "Hostname:"), out
			})
		}
	}
	answers(t)
	nsenter := func(ns, cmd string) string { return "nsenter --net=" + ns + " " + cmd }
	type fault struct{ name, breakIt, check string }
	faults := []fault{
		{"VIP removed from the lb sandbox",
			nsenter(lbNS, "ip addr del "+vip+"/32 dev eth0"),
			nsenter(lbNS, "ip -4 -o addr show dev eth0") + " | grep -q ' " + vip + "/32 '"},
		{"task's overlay veth deleted",
			// The link index tells the new eth0 from the old one.
			"old=$(" + nsenter(taskNS, "ip -o link show dev eth0") + " | cut -d: -f1); " + nsenter(taskNS, "ip link del eth0"),
			`[ "$(` + nsenter(taskNS, "ip -o link show dev eth0") + ` | cut -d: -f1)" != "$old" ] && ` +
				nsenter(taskNS, "ip -4 -o addr show dev eth0") + " | grep -q inet"},
		{"nat table flushed in ingress_sbox",
			// As many rules as before: DNAT and SNAT on the iptables
			// plane, SNAT alone on the IPVS one.
			"n=$(" + nsenter("/var/run/meshd/netns/ingress_sbox", "iptables -t nat -S") + " | grep -c -- '^-A'); " +
				nsenter("/var/run/meshd/netns/ingress_sbox", "iptables -t nat -F"),
			`[ "$(` + nsenter("/var/run/meshd/netns/ingress_sbox", "iptables -t nat -S") + ` | grep -c -- '^-A')" -ge "$n" ]`},
		{"host's MESH-INGRESS flushed",
			"iptables -t nat -F MESH-INGRESS",
			"iptables -t nat -S MESH-INGRESS | grep -q -- '--dport 8080'"},
	}
	if lbMode() == "ipvs" {
		// The kernel reports no IPVS change: the agent compares the table
		// every 2 s.
		ingress := "/var/run/meshd/netns/ingress_sbox"
		faults = append(faults, fault{"IPVS service deleted in ingress_sbox",
			nsenter(ingress, "ipvsadm -D -f 256"),
			nsenter(ingress, "ipvsadm -Ln") + " | grep -q 'FWM  256'"})
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			var ds []time.Duration
			for range repairRuns {
				ds = append(ds, l.timeRepair(t, "node1", tc.breakIt, tc.check))
				answers(t)
			}
			median, worst := medianWorst(ds)
			t.Logf("%s: repaired in median %v, worst %v of %d (%v)", tc.name, median, worst, repairRuns, ds)
			if worst > 2*time.Second*timeScale() {
				t.Errorf("worst repair %v, want at most 2 s", worst)
			}
		})
	}
}
