package apiserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
)

// A renewal or a container request acts for its caller, or for the node a
// forwarding manager names; a worker may not name one.
func TestForwardedFor(t *testing.T) {
	worker := ca.Peer{NodeID: "w1", Role: api.RoleWorker}
	manager := ca.Peer{NodeID: "m1", Role: api.RoleManager}
	tests := []struct {
		name    string
		forFunc func(*http.Request) (string, error)
		header  string
		peer    *ca.Peer // nil: none verified
		fwd     string   // the header's value
		want    string   // the node, or the refusal
	}{
		{"renewal of the caller", renewFor, api.RenewForHeader, &worker, "", "w1"},
		{"renewal forwarded by a manager", renewFor, api.RenewForHeader, &manager, "w2", "w2"},
		{"renewal forwarded by a worker", renewFor, api.RenewForHeader, &worker, "w2", "only managers forward renewals"},
		{"renewal without a certificate", renewFor, api.RenewForHeader, nil, "", "a node certificate of this cluster is required"},
		{"containers of the caller", nodeFor, api.NodeForHeader, &worker, "", "w1"},
		{"containers forwarded by a manager", nodeFor, api.NodeForHeader, &manager, "w2", "w2"},
		{"containers forwarded by a worker", nodeFor, api.NodeForHeader, &worker, "w2", "only managers forward a node's container requests"},
		{"containers without a certificate", nodeFor, api.NodeForHeader, nil, "", "a node certificate of this cluster is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tt.peer != nil {
				r = r.WithContext(context.WithValue(r.Context(), peerKey{}, *tt.peer))
			}
			if tt.fwd != "" {
				r.Header.Set(tt.header, tt.fwd)
			}
			got, err := tt.forFunc(r)
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
