package apiserver

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// TestCheckRoutes: the check is a local read; the repair hook goes to the
// node, which refuses it without --test-hooks, and neither is on the
// cluster port.
func TestCheckRoutes(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	got, err := tc.worker.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := api.Check{Node: "node2", Diffs: []api.CheckDiff{{Netns: "ingress_sbox", Kind: api.DiffVIP, State: "missing", Object: "10.255.0.4/32", Where: "eth0"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("check (-want +got):\n%s", diff)
	}
	err = tc.worker.PauseRepair(ctx, true)
	if err == nil || api.StatusCode(err) != http.StatusForbidden || !strings.Contains(err.Error(), "--test-hooks") {
		t.Errorf("pause without test hooks: got %v, want a 403 naming --test-hooks", err)
	}
	for _, route := range []string{"GET /v1/check", "POST /v1/debug/repair"} {
		for _, r := range routes {
			if r.pattern == route && r.on != local {
				t.Errorf("%s is served on %v, want the local socket only", route, r.on)
			}
		}
	}
}
