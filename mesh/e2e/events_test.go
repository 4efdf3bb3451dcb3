package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// eventsOn returns node's events since since, up to now, of one type.
func (l *testLab) eventsOn(t *testing.T, node, typ string, since time.Time) []api.Event {
	t.Helper()
	out := l.must(t, "--node", node, "events", "--since", strconv.FormatInt(since.Unix(), 10), "--until", "0s",
		"--filter", "type="+typ, "--format", "{{json .}}")
	var evs []api.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e api.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("events line %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// TestEvents: node1's events show the lab's nodes joining, node3's meshd killed (SIGKILL) as
// "node down" within the failure detection time, and the host's
// MESH-INGRESS flushed by hand as a drift event once repaired.
func TestEvents(t *testing.T) {
	start := time.Now().Add(-time.Second) // --since is in whole seconds
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "1", "--publish", "8080:80", "whoami")
	eventually(t, 10*time.Second, "MESH-INGRESS forwards 8080 on node1", func() (bool, string) {
		out, _ := l.onNode("node1", "iptables", "-t", "nat", "-S", "MESH-INGRESS")
		return strings.Contains(out, "--dport 8080"), out
	})
	joined, leaders := map[string]bool{}, []string{}
	for _, e := range l.eventsOn(t, "node1", "node", start) {
		switch e.Action {
		case "join":
			joined[e.Attributes["name"]] = true
		case "leader":
			leaders = append(leaders, e.Attributes["name"])
		}
	}
	if !joined["node1"] || !joined["node2"] || !joined["node3"] {
		t.Errorf("node1's join events name %v, want node1, node2 and node3", joined)
	}
	if len(leaders) != 1 || leaders[0] != "node1" {
		t.Errorf("node1's leader events name %q, want node1 once (it made the swarm)", leaders)
	}

	// Drift: the host's published-port chain flushed.
	flushed := time.Now()
	if out, err := l.onNode("node1", "iptables", "-t", "nat", "-F", "MESH-INGRESS"); err != nil {
		t.Fatalf("flush MESH-INGRESS: %v\n%s", err, out)
	}
	var drift api.Event
	eventually(t, 5*time.Second, "a drift event for node1's host rules", func() (bool, string) {
		evs := l.eventsOn(t, "node1", "drift", flushed.Add(-time.Second))
		for _, e := range evs {
			if e.Action == "repaired" && e.Attributes["kind"] == "rules" && e.Attributes["netns"] == "host" {
				drift = e
				return true, ""
			}
		}
		return false, strings.TrimSpace(l.must(t, "--node", "node1", "events", "--since", "1m", "--until", "0s"))
	})
	t.Logf("drift event %v after the flush: %s", drift.Time.Sub(flushed).Round(time.Millisecond), drift)
	if out, _ := l.onNode("node1", "iptables", "-t", "nat", "-S", "MESH-INGRESS"); !strings.Contains(out, "--dport 8080") {
		t.Errorf("MESH-INGRESS after the drift event:\n%s", out)
	}

	// Node down: node3's meshd killed.
	killed := time.Now()
	l.must(t, "lab", "stop", "node3", "--kill")
	var down api.Event
	eventually(t, 10*time.Second, "node1 reports node3 down", func() (bool, string) {
		for _, e := range l.eventsOn(t, "node1", "node", killed.Add(-time.Second)) {
			if e.Action == "down" && e.Attributes["name"] == "node3" {
				down = e
				return true, ""
			}
		}
		return false, strings.TrimSpace(l.must(t, "--node", "node1", "events", "--since", "1m", "--until", "0s"))
	})
	took := down.Time.Sub(killed)
	t.Logf("node3 down on node1 %v after the kill: %s", took.Round(time.Millisecond), down)
	// Memberlist's detection with meshd's timers: a probe every 500 ms,
	// then 1 s suspect (see gossip.DefaultConfig): about 2 s, 5 s at worst
	// as TestNodeCrash allows.
	if took > 5*time.Second*timeScale() {
		t.Errorf("node down reported %v after the kill, want within 5 s", took)
	}
	// Suspect first if node1's own probe of node3 failed before the
	// others' verdict reached it.
	if old := down.Attributes["state.old"]; old != "alive" && old != "suspect" || down.Attributes["state.new"] != "dead" {
		t.Errorf("node down event %s: want state.old=alive or suspect, state.new=dead", down)
	}
}
