package apiserver

import (
	"context"
	"errors"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// TestServiceUpdateAndRollbackThroughAFollower: service update and
// rollback are writes a follower forwards to the leader; their refusals
// come back as the leader words them, and a worker refuses them.
func TestServiceUpdateAndRollbackThroughAFollower(t *testing.T) {
	tc := newTestCluster(t)
	c := tc.follower
	ctx := context.Background()
	if _, err := c.CreateService(ctx, api.ServiceCreate{Name: "www", Image: "nginx:1.14-alpine", Env: []string{"FOO=bar"}}); err != nil {
		t.Fatal(err)
	}
	img := "nginx:1.15"
	svc, err := c.UpdateService(ctx, "www", api.ServiceUpdate{Image: &img, EnvAdd: []string{"A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Image != img || svc.PreviousSpec == nil || svc.PreviousSpec.Image != "nginx:1.14-alpine" || svc.UpdateStatus == nil || len(svc.Env) != 2 {
		t.Errorf("after update: %+v, want the new image and env, the old spec as previous, a status", svc)
	}
	if got, want := tc.waited.Load(), tc.m.State().Version; got != want {
		t.Errorf("the follower waited for version %d, want the leader's %d", got, want)
	}
	svc, err = c.RollbackService(ctx, "www")
	if err != nil {
		t.Fatal(err)
	}
	// The task never left the old image (no sync runs here): nothing to
	// roll back, done at once.
	if svc.Image != "nginx:1.14-alpine" || svc.PreviousSpec.Image != img || svc.UpdateStatus.State != api.UpdateRollbackCompleted {
		t.Errorf("after rollback: image %s previous %s status %+v, want the old image, the update's as previous, completed", svc.Image, svc.PreviousSpec.Image, svc.UpdateStatus)
	}
	if _, err := c.CreateService(ctx, api.ServiceCreate{Name: "db", Image: "alpine"}); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		do   func() error
		want string
	}{
		"unknown service":  {func() error { _, err := c.UpdateService(ctx, "nope", api.ServiceUpdate{}); return err }, "service nope not found"},
		"no previous spec": {func() error { _, err := c.RollbackService(ctx, "db"); return err }, "service db does not have a previous spec"},
	} {
		if err := tt.do(); err == nil || err.Error() != tt.want {
			t.Errorf("%s: err %v, want %q", name, err, tt.want)
		}
	}
	if _, err := tc.worker.UpdateService(ctx, "www", api.ServiceUpdate{}); !errors.Is(err, api.ErrNotManager) && (err == nil || err.Error() != api.ErrNotManager.Error()) {
		t.Errorf("update on a worker: err %v, want %v", err, api.ErrNotManager)
	}
	if _, err := tc.worker.RollbackService(ctx, "www"); err == nil || err.Error() != api.ErrNotManager.Error() {
		t.Errorf("rollback on a worker: err %v, want %v", err, api.ErrNotManager)
	}
}
