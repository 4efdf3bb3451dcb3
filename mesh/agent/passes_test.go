package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// TestTablesMoved: after a wake-up from the tables, Run reconciles only
// if they changed what a pass reads. A service's entry that comes ahead
// of the head certifying it changes nothing the node serves; the head
// does, and so does a remote task's endpoint.
func TestTablesMoved(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2),
		Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	// The local task announces its endpoint once its process listens.
	local, ingress := f.tasks("www")["node1id"], f.netID(api.IngressName)
	testutil.Eventually(t, 5*time.Second, "www's local task announced", func() error {
		if !records.HasEndpoint(f.db, ingress, local.ID) {
			return errors.New("not yet")
		}
		return nil
	})
	// A pass writes tables itself (the sandboxes' peers, that endpoint):
	// the next pass reads them, and then nothing moves.
	for i := 0; f.agent.tablesMoved(); i++ {
		if i == 5 {
			t.Fatal("the tables still move after 5 passes with nothing new")
		}
		f.agent.Reconcile(f.ctx)
	}

	svc, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "api", Image: "whoami", Replicas: replicas(0),
		Ports: []api.PortConfig{{PublishedPort: 9090, TargetPort: 80}}})
	if err != nil {
		t.Fatal(err)
	}
	// The entry as the leader writes it, without its head.
	ahead := records.NewFakeDB("node1id")
	if err := records.NewPublisher().Publish(ahead, f.mgr.Objects(), f.version+1, ""); err != nil {
		t.Fatal(err)
	}
	e, ok := ahead.Get(records.TableServices, "", svc.ID)
	if !ok {
		t.Fatalf("no entry for service %s", svc.ID)
	}
	if err := f.db.Put(records.TableServices, "", e.Key, e.Value); err != nil {
		t.Fatal(err)
	}
	if f.agent.tablesMoved() {
		t.Error("a service's entry ahead of its head: the tables moved")
	}
	if !f.agent.desired.Info().Partial {
		t.Error("the tables are short of their head, but not seen as partial (the pull would not be planned)")
	}
	f.publish()
	if !f.agent.tablesMoved() {
		t.Error("the head came: the tables did not move")
	}
	f.agent.Reconcile(f.ctx)
	if f.agent.tablesMoved() {
		t.Error("moved again after the pass that adopted the head")
	}
	f.announceRemote(f.tasks("www")["node2id"])
	if !f.agent.tablesMoved() {
		t.Error("a remote endpoint came: the tables did not move")
	}
}

// TestArmPull: the pull timer runs only while a pull is planned and none
// runs; once the tables catch up it is stopped, where it used to fire a
// pass with nothing to do half a second after every change.
func TestArmPull(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	pull := time.NewTimer(time.Hour)
	defer pull.Stop()
	pull.Stop()

	f.agent.pullDue = f.agent.now().Add(pullAfter)
	f.agent.armPull(pull)
	if !pull.Stop() {
		t.Error("a pull planned: the timer is not armed")
	}
	f.agent.armPull(pull)
	f.agent.pulling.Store(true)
	f.agent.armPull(pull)
	if pull.Stop() {
		t.Error("armed while a pull runs")
	}
	f.agent.pulling.Store(false)
	f.agent.armPull(pull)
	f.agent.pullDue = time.Time{} // the tables caught up
	f.agent.armPull(pull)
	if pull.Stop() {
		t.Error("armed with no pull planned")
	}
}
