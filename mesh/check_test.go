package mesh

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// TestPauseRepairNeedsTestHooks: without --test-hooks the hook is refused
// before anything else is looked at; with it, a node outside a swarm has
// no agent to pause, and neither has it a check to answer.
func TestPauseRepairNeedsTestHooks(t *testing.T) {
	ctx := context.Background()
	err := nodeReads{&Daemon{}}.PauseRepair(ctx, true)
	if api.StatusCode(err) != http.StatusForbidden {
		t.Errorf("without test hooks: got %v, want a 403", err)
	}
	d := &Daemon{cfg: Config{TestHooks: true}}
	if err := (nodeReads{d}).PauseRepair(ctx, true); !errors.Is(err, api.ErrNotInSwarm) {
		t.Errorf("with test hooks, outside a swarm: got %v, want %v", err, api.ErrNotInSwarm)
	}
	if _, err := (nodeReads{d}).Check(ctx); !errors.Is(err, api.ErrNotInSwarm) {
		t.Errorf("check outside a swarm: got %v, want %v", err, api.ErrNotInSwarm)
	}
}
