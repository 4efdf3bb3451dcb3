package agent

import (
	"time"

	"github.com/meshd/meshd/mesh/records"
)

// pullAfter is how long the tables may stay short of what their head
// certifies before the agent asks the head's publisher for its full
// state. A publish normally completes in a gossip round or two (tens of
// milliseconds); an entry that gossip lost would otherwise wait for
// memberlist's push/pull with a random member, up to its interval (10 s),
// with this node serving the previous state meanwhile.
const pullAfter = 500 * time.Millisecond

// pullIfStuck starts a pull from the head's publisher once the tables
// have been partial for pullAfter, and again every pullAfter while they
// stay so, one at a time. Run's timer brings it back when no table
// changes; the pull's end wakes Run.
func (a *Agent) pullIfStuck() {
	if !a.desired.Info().Partial {
		a.partialSince, a.pullDue = time.Time{}, time.Time{}
		return
	}
	now := a.now()
	if a.partialSince.IsZero() {
		a.partialSince, a.pullDue = now, now.Add(pullAfter)
	}
	if a.pulling.Load() || now.Before(a.pullDue) {
		return
	}
	head, ok := a.cfg.DB.Get(records.TableCluster, "", records.HeadKey)
	if !ok || head.Owner == a.cfg.NodeID {
		return
	}
	a.pulling.Store(true)
	a.pullDue = now.Add(pullAfter) // the next pull, if this one does not help
	a.pulls.Add(1)
	go func() {
		defer a.pulls.Done()
		if err := a.cfg.DB.SyncWith(head.Owner); err != nil {
			a.log.Warn("pull the desired state from its publisher", "leader", head.Owner, "err", err)
		} else {
			a.log.Info("pulled the desired state from its publisher: gossip had not brought all of it", "leader", head.Owner)
		}
		a.pulling.Store(false)
		a.poke()
	}()
}
