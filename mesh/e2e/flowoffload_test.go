package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// TestFlowOffload: with the iptables data plane, where the kernel has
// nftables flowtables (the stock Debian kernel of the VM suite), node2's
// ingress sandbox holds the table "inet meshd" with a flowtable over eth0
// and eth1, a connection through the mesh is offloaded once established
// ("[OFFLOAD]" in the sandbox's conntrack table) and its later answer
// still comes back, NATed by the fast path; meshctl check finds it in
// step, and names its rule flushed by hand while repairs are paused;
// meshctl trace names it as a hop and lb ls says it is on; a VIP's
// connection through a one-armed lb sandbox is offloaded and answered too;
// the table deleted by hand is written again. Where the kernel has none
// (the machines the host suite runs on), the sandbox holds no table and
// the mesh answers as before.
func TestFlowOffload(t *testing.T) {
	// modprobe -n finds a module or a built-in without loading anything.
	expect := exec.Command("modprobe", "-n", "nf_flow_table_inet").Run() == nil
	l := newLabWith(t, 2, "--lb-mode", "iptables", "--meshd-flag=--test-hooks")
	l.must(t, "--node", "node1", "service", "create", "--name", "web", "--constraint", "node.hostname==node1",
		"--publish", "8888:80", "whoami")
	const url = "http://192.168.33.11:8888/"
	eventually(t, 30*time.Second, "web answering through node2", func() (bool, string) {
		out, err := l.onNode("client", "curl", "-sf", "-m", "2", url)
		return err == nil && strings.Contains(out, "Hostname:"), out
	})
	sandbox := func(argv ...string) (string, error) {
		return l.onNode("node2", append([]string{"nsenter", "--net=/var/run/meshd/netns/ingress_sbox"}, argv...)...)
	}
	eventually(t, 10*time.Second, fmt.Sprintf("node2's ingress_sbox with a flowtable: %v", expect), func() (bool, string) {
		out, err := sandbox("nft", "list", "table", "inet", "meshd")
		has := err == nil && strings.Contains(out, "flowtable fastpath") && strings.Contains(out, "devices = { eth0, eth1 }")
		return has == expect, out
	})

	// Two requests on one connection, the second answered after a wait:
	// the connection sits established, offloaded, in between (in the
	// sandbox netns, where the kernel has flowtables).
	wait := 3 * time.Second * timeScale()
	twoOnOne := func(what string, curl []string, url, netns, dport string) {
		t.Helper()
		done := make(chan string, 1)
		go func() {
			out, err := l.ctl(append(curl, "curl", "-sS", "-m", fmt.Sprint(int(wait.Seconds())+30), url, fmt.Sprintf("%s?wait=%s", url, wait))...)
			if err != nil {
				out += err.Error()
			}
			done <- out
		}()
		if expect {
			eventually(t, wait/timeScale(), what+": the connection offloaded in node2's "+netns, func() (bool, string) {
				out, _ := l.onNode("node2", "nsenter", "--net=/var/run/meshd/netns/"+netns, "cat", "/proc/net/nf_conntrack")
				for _, line := range strings.Split(out, "\n") {
					if strings.Contains(line, "dport="+dport+" ") && strings.Contains(line, "[OFFLOAD]") {
						return true, line
					}
				}
				return false, out
			})
		}
		if out := <-done; strings.Count(out, "Hostname:") != 2 {
			t.Errorf("%s: %d answers on the connection, want 2:\n%s", what, strings.Count(out, "Hostname:"), out)
		}
	}
	twoOnOne("the client through node2", []string{"lab", "exec", "client", "--"}, url, "ingress_sbox", "8888")
	// meshctl lb ls says which it is.
	header := "# ingress_sbox (network ingress, data plane iptables, flow offload unavailable)"
	if expect {
		header = "# ingress_sbox (network ingress, data plane iptables, flow offload on (eth0, eth1))"
	}
	if out := l.must(t, "--node", "node2", "lb", "ls"); !strings.Contains(out, header+"\n") {
		t.Errorf("lb ls on node2: no line %q in\n%s", header, out)
	}
	// meshctl check finds the table as meshd wrote it, or none where the
	// kernel cannot hold one: in step either way.
	if out, code := l.checkExit(); code != 0 {
		t.Fatalf("check: exit %d, want 0:\n%s", code, out)
	}
	// meshctl trace names the flowtable after the sandbox's rules, where
	// there is one.
	tr := l.trace(t, "192.168.33.11:8888")
	var flowHops []string
	for _, h := range tr.Hops {
		if h.Kind == api.HopFlow {
			flowHops = append(flowHops, h.Node+" "+h.Netns+" "+h.Detail)
		}
	}
	if want := "node2 ingress_sbox fastpath (eth0, eth1): "; expect && (len(flowHops) != 1 || !strings.HasPrefix(flowHops[0], want)) ||
		!expect && len(flowHops) != 0 || !tr.Reached {
		t.Errorf("trace: reached %v, flowtable hops %q; want one, %q…, where the kernel has flowtables (%v)\n%s",
			tr.Reached, flowHops, want, expect, hopsText(tr))
	}
	if !expect {
		return
	}
	// A VIP's connection through a one-armed lb sandbox (eth0 in and out)
	// is offloaded there too, and answered.
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "app")
	l.must(t, "--node", "node1", "service", "create", "--name", "api", "--network", "app", "--constraint", "node.hostname==node1", "whoami")
	l.must(t, "--node", "node1", "service", "create", "--name", "cli", "--network", "app", "--constraint", "node.hostname==node2", "alpine")
	appID := strings.TrimSpace(l.must(t, "--node", "node1", "network", "inspect", "app", "--format", "{{.Id}}"))
	eventually(t, 30*time.Second, "api answering cli through its VIP", func() (bool, string) {
		out, err := l.on("node2", "exec", "cli.1", "--", "curl", "-sf", "-m", "2", "http://api/")
		return err == nil && strings.Contains(out, "Hostname:"), out
	})
	twoOnOne("cli.1 through api's VIP", []string{"--node", "node2", "exec", "cli.1", "--"}, "http://api/", "lb_"+appID[:9], "80")

	// With node2's repairs paused, its rule flushed by hand: check names
	// the line, and once repairs resume the node writes it again.
	l.must(t, "--node", "node2", "debug", "repair", "pause")
	if out, err := sandbox("nft", "flush", "chain", "inet", "meshd", "balanced"); err != nil {
		t.Fatalf("nft flush chain: %v\n%s", err, out)
	}
	line := regexp.MustCompile(`(?m)^node2\s+ingress_sbox\s+flowtable missing\s+` +
		regexp.QuoteMeta("chain balanced: ct status dnat meta l4proto { tcp, udp } flow add @fastpath") + `\s+\(inet meshd\)$`)
	if out, code := l.checkExit(); code != 1 || !line.MatchString(out) {
		t.Errorf("check with the rule flushed: exit %d, want 1 and a line matching %s:\n%s", code, line, out)
	}
	l.must(t, "--node", "node2", "debug", "repair", "resume")
	eventually(t, 5*time.Second, "check in step once repairs resume", func() (bool, string) {
		out, code := l.checkExit()
		return code == 0, out
	})
	// Deleted by hand, written again: the node hears the table go, well
	// before its periodic check (lb.DefaultFullResyncPeriod) would see it.
	if out, err := sandbox("nft", "delete", "table", "inet", "meshd"); err != nil {
		t.Fatalf("nft delete table: %v\n%s", err, out)
	}
	start := time.Now()
	eventually(t, 3*time.Second, "node2's ingress_sbox's table written again", func() (bool, string) {
		out, err := sandbox("nft", "list", "table", "inet", "meshd")
		return err == nil && strings.Contains(out, "devices = { eth0, eth1 }"), out
	})
	t.Logf("table written again %v after its deletion", time.Since(start).Round(time.Millisecond))
}
