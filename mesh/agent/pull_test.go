package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/records"
)

// Tables that stay short of what their head certifies are pulled from the
// head's publisher after pullAfter, once at a time; tables that catch up
// first are not.
func TestPartialTablesArePulledFromThePublisher(t *testing.T) {
	f := newServingNode(t, 2)
	// A new leader on node2 republishes; gossip brings all but one task.
	next := records.NewFakeDB("node2id")
	if err := records.NewPublisher().Publish(next, f.mgr.Objects(), f.version+1, ""); err != nil {
		t.Fatal(err)
	}
	tasks := next.List(records.TableTasks, "")
	lost := tasks[0]
	for _, table := range []string{records.TableNetworks, records.TableNodes, records.TableServices, records.TableTasks, records.TableCluster} {
		for _, e := range next.List(table, "") {
			// The lost task differs from the one the tables hold: its
			// status was published anew.
			if e.Table == lost.Table && e.Key == lost.Key {
				continue
			}
			if err := f.db.PutAs("node2id", table, "", e.Key, e.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.db.PutAs("node2id", lost.Table, "", lost.Key, []byte(`{"stale":true}`)); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		after time.Duration
		want  []string
	}{
		{0, nil},                         // first seen partial
		{pullAfter / 2, nil},             // gossip may still bring it
		{pullAfter, []string{"node2id"}}, // pulled
		{pullAfter / 2, []string{"node2id"}},
		{pullAfter, []string{"node2id", "node2id"}}, // still partial: again
	}
	for i, s := range steps {
		f.clock = f.clock.Add(s.after)
		f.agent.Reconcile(f.ctx)
		if info := f.agent.DesiredInfo(); !info.Partial {
			t.Fatalf("step %d: desired info %+v, want partial", i, info)
		}
		f.agent.pulls.Wait()
		if diff := cmp.Diff(s.want, f.db.Synced()); diff != "" {
			t.Fatalf("step %d (+%v): pulls (-want +got):\n%s", i, s.after, diff)
		}
	}

	// The pull brought the entry (as SyncWith would have): fresh, and no
	// more pulls however long it stays so.
	if err := f.db.PutAs("node2id", lost.Table, "", lost.Key, lost.Value); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.clock = f.clock.Add(pullAfter)
		f.agent.Reconcile(f.ctx)
		f.agent.pulls.Wait()
	}
	if info := f.agent.DesiredInfo(); !info.Fresh {
		t.Errorf("desired info once the entry came: %+v, want fresh", info)
	}
	if diff := cmp.Diff([]string{"node2id", "node2id"}, f.db.Synced()); diff != "" {
		t.Errorf("pulls once fresh (-want +got):\n%s", diff)
	}
}
