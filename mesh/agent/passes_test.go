package agent

import (
	"testing"
	"time"

	"github.com/meshd/meshd/lb"
)

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
