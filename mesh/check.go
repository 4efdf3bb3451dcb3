package mesh

import (
	"context"
	"net/http"

	"github.com/meshd/meshd/mesh/api"
)

// Check is meshctl check on this node: the agent's dry run of its
// reconcile pass, and the digests of this node's gossip tables.
func (n nodeReads) Check(ctx context.Context) (api.Check, error) {
	sess, _ := n.d.current()
	if sess == nil {
		return api.Check{}, api.ErrNotInSwarm
	}
	diffs, paused, err := sess.agent.Check(ctx)
	if err != nil {
		return api.Check{}, api.Errorf(http.StatusServiceUnavailable, "check: the agent did not answer: %v", err)
	}
	out := api.Check{Node: n.d.cfg.NodeName, Diffs: diffs, RepairPaused: paused}
	for _, t := range sess.db.Digests() {
		out.Tables = append(out.Tables, api.TableDigest{Table: t.Table, Entries: t.Entries, Digest: t.Digest})
	}
	return out, nil
}

// PauseRepair is the test hook that pauses the agent's reconciling (see
// Config.TestHooks); without --test-hooks it is refused.
func (n nodeReads) PauseRepair(ctx context.Context, paused bool) error {
	if !n.d.cfg.TestHooks {
		return api.Errorf(http.StatusForbidden, "test hooks are off: start meshd with --test-hooks")
	}
	sess, _ := n.d.current()
	if sess == nil {
		return api.ErrNotInSwarm
	}
	return sess.agent.PauseRepair(ctx, paused)
}
