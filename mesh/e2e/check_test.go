package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// checkExit runs meshctl check with args and returns its output and exit
// status (-1 when it did not run).
func (l *testLab) checkExit(args ...string) (string, int) {
	out, err := l.ctl(append([]string{"check"}, args...)...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	}
	return out + err.Error(), -1
}

// TestCheck runs meshctl check on the tutorial's 3-node lab with a
// published service: in step once it has converged; with node3's repairs
// paused (the test hook), the FDB entry of the backend the client's next
// connection through node3 goes to (meshctl trace says which) is deleted
// by hand from node3's ingress overlay namespace: the trace then stops at
// node3's vxlan0 and says the entry is missing, and check names it, with
// its node, namespace and MAC, and exits 1; once repairs resume, the agent
// puts it back, check exits 0 and the trace goes through again.
func TestCheck(t *testing.T) {
	l := newLabWith(t, 3, "--meshd-flag=--test-hooks")
	// Both tasks off node3, so that the connection through node3 crosses
	// VXLAN whichever backend it gets.
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "2", "--publish", "8888:80",
		"--constraint", "node.hostname!=node3", "whoami")
	ingressID := strings.TrimSpace(l.must(t, "--node", "node1", "network", "inspect", "ingress", "--format", "{{.Id}}"))
	eventually(t, 10*time.Second, "check in step", func() (bool, string) {
		out, code := l.checkExit()
		return code == 0, out
	})
	out, _ := l.checkExit()
	for _, want := range []string{"in step: 3 nodes", "overlay_peer_table", "endpoint_table"} {
		if !strings.Contains(out, want) {
			t.Errorf("check in step: no %q in\n%s", want, out)
		}
	}

	next := l.trace(t, "192.168.33.12:8888")
	if !next.Reached {
		t.Fatalf("trace in step stopped: %s", next.Stopped)
	}
	var backend taskInfo
	for _, ti := range l.tasks(t, "www") {
		if ti.ip+":80" == next.Backend {
			backend = ti
		}
	}
	vtep := map[string]string{"node1": "192.168.33.10", "node2": "192.168.33.11"}[backend.node]
	if backend.mac == "" || vtep == "" {
		t.Fatalf("no backend of www off node3: %+v", l.tasks(t, "www"))
	}
	if out := l.must(t, "--node", "node3", "debug", "repair", "pause"); strings.TrimSpace(out) != "repair paused" {
		t.Errorf("debug repair pause: %q", out)
	}
	ns := "1-" + ingressID[:10]
	if out, err := l.onNode("node3", "nsenter", "--net=/var/run/meshd/netns/"+ns, "bridge", "fdb", "del", backend.mac,
		"dev", "vxlan0", "dst", vtep); err != nil {
		t.Fatalf("bridge fdb del on node3: %v\n%s", err, out)
	}
	tr := l.trace(t, "192.168.33.12:8888")
	last := tr.Hops[len(tr.Hops)-1]
	if tr.Reached || !strings.Contains(tr.Stopped, "no FDB entry for "+backend.mac) || last.Node != "node3" || last.Netns != ns {
		t.Errorf("trace with the FDB entry gone: reached %v, stopped %q at %s %s; want a stop on node3 in %s for %s\n%s",
			tr.Reached, tr.Stopped, last.Node, last.Netns, ns, backend.mac, hopsText(tr))
	}
	var vx api.TraceHop
	for _, h := range tr.Hops {
		if h.Kind == api.HopVXLAN {
			vx = h
		}
	}
	if want := "vxlan0 VNI 4096: " + backend.ip + " lladdr " + backend.mac + ", no FDB entry"; vx.Detail != want {
		t.Errorf("trace's vxlan0 hop %q, want %q", vx.Detail, want)
	}
	line := regexp.MustCompile(`(?m)^node3\s+` + regexp.QuoteMeta(ns) + `\s+fdb missing\s+` + regexp.QuoteMeta(backend.mac) +
		` dst ` + regexp.QuoteMeta(vtep) + `\s+\(vxlan0\)$`)
	for _, args := range [][]string{nil, {"--node", "node3"}} {
		out, code := l.checkExit(args...)
		if code != 1 || !line.MatchString(out) || !strings.Contains(out, "repair paused on node3") {
			t.Errorf("check %v with the FDB entry gone: exit %d, want 1 and a line matching %s:\n%s", args, code, line, out)
		}
	}
	if out, code := l.checkExit("--node", "node1"); code != 0 {
		t.Errorf("check --node node1: exit %d, want 0 (node1 is in step):\n%s", code, out)
	}
	out, code := l.checkExit("-o", "json")
	var rep struct {
		InStep bool
		Nodes  []struct {
			Node  string
			Diffs []struct{ Netns, Kind, State, Object string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.InStep {
		t.Errorf("check -o json: exit %d, %v, InStep %v:\n%s", code, err, rep.InStep, out)
	}
	for _, n := range rep.Nodes {
		if n.Node == "node3" && (len(n.Diffs) != 1 || n.Diffs[0].Netns != ns || n.Diffs[0].Kind != "fdb" ||
			!strings.HasPrefix(n.Diffs[0].Object, backend.mac+" ")) {
			t.Errorf("check -o json: node3's differences %+v, want the FDB entry of %s in %s", n.Diffs, backend.mac, ns)
		}
	}

	l.must(t, "--node", "node3", "debug", "repair", "resume")
	eventually(t, 5*time.Second, "check in step once repairs resume", func() (bool, string) {
		out, code := l.checkExit()
		return code == 0, out
	})
	if tr := l.trace(t, "192.168.33.12:8888"); !tr.Reached || tr.Backend != next.Backend {
		t.Errorf("trace once repaired: reached %v, backend %s, stopped %q; want %s reached", tr.Reached, tr.Backend, tr.Stopped, next.Backend)
	}
}
