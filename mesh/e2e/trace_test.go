package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/task"
)

// vtepRE reads a VXLAN hop: its VNI, the VTEP and the node behind it.
var vtepRE = regexp.MustCompile(`^vxlan0 VNI (\d+): (\S+) lladdr \S+ → VTEP (\S+) \((node\d)\)`)

// TestTrace traces the tutorial's connection, the client to node3's
// published 8888 with www's two tasks on the other nodes, and checks the
// hops in order; then --probe sends one and every rule hop of the path it
// took must have moved, the rotation's other turn not.
func TestTrace(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "2", "--network", "ovnet", "--publish", "8888:80",
		"--constraint", "node.hostname!=node3", "whoami")
	eventually(t, 10*time.Second, "www answering through node3", func() (bool, string) {
		out, err := l.ctl(curlFrom("client", "http://192.168.33.12:8888/")...)
		return err == nil && hostnameRE.MatchString(out), out
	})

	tr := l.trace(t, "192.168.33.12:8888")
	if !tr.Reached {
		t.Fatalf("trace stopped: %s\n%s", tr.Stopped, l.must(t, "trace", "192.168.33.12:8888"))
	}
	backend, _, _ := strings.Cut(tr.Backend, ":")
	remote := checkHops(t, tr, backend)

	// The probe's connection takes the path traced: every rule hop moves,
	// on node3 and on the remote node, and the rotation's other turn
	// does not.
	kernel := api.NewClient(l.load().Socket("node3"))
	before, err := kernel.Kernel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	probed := l.trace(t, "--probe", "192.168.33.12:8888")
	after, err := kernel.Kernel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if probed.Backend != tr.Backend {
		t.Fatalf("the probe's trace predicts %s, the first %s", probed.Backend, tr.Backend)
	}
	for _, h := range probed.Hops {
		// IPVS's rr does not show which destination is next: the trace
		// follows the first, which the probe may not take.
		predicted := before.DataPlane == "iptables" || h.Node == "node3"
		if h.Kind == api.HopRule && predicted && !h.Moved {
			t.Errorf("%s %s %s %s: the probe did not move its counter", h.Node, h.Netns, h.Table, h.Rule)
		}
	}
	other := otherTurns(before, backend)
	for rule, n := range otherTurns(after, backend) {
		if n != other[rule] {
			t.Errorf("%s moved (%s → %s): the probe was not to go there", rule, other[rule], n)
		}
	}
	if len(other) == 0 && before.DataPlane == "iptables" {
		t.Errorf("no other rotation turn in node3's ingress_sbox")
	}
	// The next connection gets the other backend, as the rotation turns.
	if next := l.trace(t, "192.168.33.12:8888"); next.Backend == tr.Backend && before.DataPlane == "iptables" {
		t.Errorf("after the probe the trace still predicts %s", next.Backend)
	}
	t.Logf("traced to %s on %s: %s", tr.Backend, remote, tr.Hops[len(tr.Hops)-1].Detail)
}

func (l *testLab) trace(t *testing.T, args ...string) api.Trace {
	t.Helper()
	out := l.must(t, append([]string{"trace", "-o", "json"}, args...)...)
	var tr api.Trace
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatalf("trace -o json: %v\n%s", err, out)
	}
	return tr
}

// checkHops checks the tutorial's hops in order, and returns the node the
// backend is on.
func checkHops(t *testing.T, tr api.Trace, backend string) (remote string) {
	t.Helper()
	type want struct {
		node, netns, kind string
		re                string // matched against the rule, or the detail
	}
	var remoteNetns string
	wants := []want{
		{"node3", "host", api.HopArrive, `^in eth0$`},
		{"node3", "host", api.HopRule, `^-A MESH-INGRESS -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172\.18\.0\.2:8888$`},
		{"node3", "host", api.HopLink, `^mesh_gwbridge → \S+@if\d+ → ingress_sbox eth1$`},
		{"node3", "ingress_sbox", api.HopRule, `-j MARK --set-xmark 0x100/0xffffffff$`},
		{"node3", "ingress_sbox", "", `-j DNAT --to-destination ` + regexp.QuoteMeta(backend) + `$|^FWM 256 -> ` + regexp.QuoteMeta(backend) + `$`},
		{"node3", "ingress_sbox", api.HopRule, `^-A MESH-SNAT -d 10\.255\.0\.0/16 -m (conntrack --ctstate DNAT|ipvs --ipvs) -j SNAT --to-source 10\.255\.0\.\d+$`},
		{"node3", "ingress_sbox", api.HopLink, `^eth0@if\d+ → 1-\w{10} veth\w+@if\d+ → br0$`},
		// br0 sends the frame to vxlan0 alone, by its static entry.
		{"node3", "1-", api.HopVXLAN, `^vxlan0 VNI 4096: ` + regexp.QuoteMeta(backend) + ` lladdr (\S+) → VTEP .*; vxlan0: \S+ master br0 static$`},
	}
	i := 0
	next := func(w want) api.TraceHop {
		t.Helper()
		for ; i < len(tr.Hops); i++ {
			h := tr.Hops[i]
			text := h.Detail
			if h.Kind == api.HopRule {
				text = h.Rule
			}
			if h.Node == w.node && strings.HasPrefix(h.Netns, w.netns) && (w.kind == "" || h.Kind == w.kind) && regexp.MustCompile(w.re).MatchString(text) {
				i++
				return h
			}
		}
		t.Fatalf("no hop %+v after the previous; hops:\n%s", w, hopsText(tr))
		return api.TraceHop{}
	}
	var vx api.TraceHop
	for _, w := range wants {
		vx = next(w)
	}
	m := vtepRE.FindStringSubmatch(vx.Detail)
	if m == nil {
		t.Fatalf("vxlan hop %q", vx.Detail)
	}
	remote = m[4]
	if n := int(remote[4] - '0'); m[3] != fmt.Sprintf("192.168.33.%d", 9+n) || remote == "node3" {
		t.Errorf("VTEP %s for %s: want a node's address, not node3's", m[3], remote)
	}
	next(want{remote, "1-", api.HopLink, `^vxlan0 VNI 4096 → br0$`})
	h := next(want{remote, "1-", api.HopLink, `^br0 → veth\w+@if\d+ → \w{12} eth0$`})
	remoteNetns = h.Detail[strings.LastIndex(h.Detail, "→ ")+len("→ ") : strings.LastIndex(h.Detail, " ")]
	next(want{remote, remoteNetns, api.HopArrive, `^in eth0$`})
	next(want{remote, remoteNetns, api.HopRule, `^-A MESH-REDIRECT -d ` + regexp.QuoteMeta(backend) + `/32 -p tcp -m tcp --dport 8888 -j REDIRECT --to-ports 80$`})
	last := next(want{remote, remoteNetns, api.HopDeliver, `^delivered to ` + regexp.QuoteMeta(backend) + `:80/tcp in ` + remoteNetns + `: `})
	checkListener(t, last.Detail, remoteNetns)
	if tr.Backend != backend+":80" {
		t.Errorf("backend %s, want %s:80", tr.Backend, backend)
	}
	return remote
}

// listenerRE reads a delivery hop's socket: the process and its PID.
var listenerRE = regexp.MustCompile(`: (\S+) \(pid (\d+)\) listening on \*:80$`)

// checkListener checks that the delivery hop names the task's whoami: it
// runs in the task's init, which names itself after its image, and its
// command line is the init's with the task's hostname, the name of its
// namespace.
func checkListener(t *testing.T, detail, netns string) {
	t.Helper()
	m := listenerRE.FindStringSubmatch(detail)
	if m == nil {
		t.Fatalf("delivery %q: want the process listening on *:80", detail)
	}
	if m[1] != "whoami" {
		t.Errorf("delivery %q: command %q, want whoami", detail, m[1])
	}
	cmdline, err := os.ReadFile("/proc/" + m[2] + "/cmdline")
	if err != nil {
		t.Fatalf("delivery %q: %v", detail, err)
	}
	args := strings.Split(string(cmdline), "\x00")
	if !slices.Contains(args, task.InitArg) || !strings.Contains(strings.Join(args, " "), " --hostname "+netns+" ") {
		t.Errorf("delivery %q: pid %s runs %q, want the init of task %s", detail, m[2], args, netns)
	}
}

// otherTurns are the packet counters of the rotation rules of node3's
// ingress sandbox that DNAT elsewhere than backend.
func otherTurns(s api.KernelSnapshot, backend string) map[string]string {
	out := map[string]string{}
	ns := s.Netns("ingress_sbox")
	if ns == nil {
		return out
	}
	for line := range strings.Lines(ns.IPTables["nat"]) {
		c, rule, ok := strings.Cut(strings.TrimSpace(line), "] ")
		if ok && strings.HasPrefix(rule, "-A MESH-SVC-") && !strings.HasSuffix(rule, "--to-destination "+backend) {
			pkts, _, _ := strings.Cut(strings.TrimPrefix(c, "["), ":")
			out[rule] = pkts
		}
	}
	return out
}

func hopsText(tr api.Trace) string {
	var b strings.Builder
	for _, h := range tr.Hops {
		fmt.Fprintf(&b, "%s %s %s %s%s\n", h.Node, h.Netns, h.Kind, h.Rule, h.Detail)
	}
	return b.String()
}
