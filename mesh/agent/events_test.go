package agent

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/events"
)

// eventLines returns the agent's events of one type as "action id k=v…"
// with the attributes named, in order.
func eventLines(f *fakeNode, typ string, attrs ...string) []string {
	var out []string
	for _, e := range f.events.Events(events.Query{Types: []string{typ}}) {
		s := e.Action + " " + e.ID
		for _, k := range attrs {
			s += fmt.Sprintf(" %s=%s", k, e.Attributes[k])
		}
		out = append(out, s)
	}
	return out
}

// TestTaskAndBackendEvents: a task's start, its backend announced, then
// drained and removed when its service goes, are events.
func TestTaskAndBackendEvents(t *testing.T) {
	e := driftNodeEnv(t)
	f := e.f
	id := e.task.spec.ID
	if got := eventLines(f, events.TypeTask, "name", "service"); !slices.Contains(got, "running "+id+" name="+e.task.spec.Name()+" service=www") {
		t.Errorf("task events %q, want the task running", got)
	}
	net := e.task.spec.Networks[0]
	added := "added " + id + " service=www network=" + net.NetworkName + " network.id=" + net.NetworkID
	if got := eventLines(f, events.TypeBackend, "service", "network", "network.id"); !slices.Contains(got, added) {
		t.Errorf("backend events %q, want %q", got, added)
	}

	f.agent.cfg.DrainDelay = time.Minute
	if err := f.mgr.RemoveService(f.ctx, "www"); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.clock = f.clock.Add(time.Hour) // past the drain
	f.reconcile()
	f.reconcile()
	// Per network, in order; networks are announced in no set order.
	for _, tn := range e.task.spec.Networks {
		var got []string
		for _, l := range eventLines(f, events.TypeBackend, "network.id") {
			if strings.HasSuffix(l, " network.id="+tn.NetworkID) {
				got = append(got, strings.Fields(l)[0])
			}
		}
		if want := []string{"added", "drained", "removed"}; !slices.Equal(got, want) {
			t.Errorf("backend events on %s: %q, want %q", tn.NetworkName, got, want)
		}
	}
}
