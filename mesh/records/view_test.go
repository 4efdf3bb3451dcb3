package records

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

func TestBuildView(t *testing.T) {
	records := map[string]api.Node{
		"m1": {ID: "m1", Hostname: "node1", Role: api.RoleManager},
		"w2": {ID: "w2", Hostname: "node2", Role: api.RoleWorker},
		"w3": {ID: "w3", Hostname: "node3", Role: api.RoleWorker},
	}
	tests := []struct {
		name  string
		alive map[string]bool
		self  string
		want  []string // hostname/status/manager status/self
	}{
		{name: "all alive", alive: map[string]bool{"m1": true, "w2": true, "w3": true}, self: "m1",
			want: []string{"node1 Ready Leader *", "node2 Ready  ", "node3 Ready  "}},
		{name: "worker dead", alive: map[string]bool{"m1": true, "w3": true}, self: "w3",
			want: []string{"node1 Ready Leader ", "node2 Down  ", "node3 Ready  *"}},
		{name: "manager unreachable", alive: map[string]bool{"w2": true}, self: "w2",
			want: []string{"node1 Down Unreachable ", "node2 Ready  *", "node3 Down  "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, n := range BuildView(records, tt.alive, tt.self) {
				mark := ""
				if n.Self {
					mark = "*"
				}
				got = append(got, strings.Join([]string{n.Hostname, n.Status, n.ManagerStatus, mark}, " "))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("view (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindNode(t *testing.T) {
	nodes := []api.Node{
		{ID: "abc111", Hostname: "node1", Self: true},
		{ID: "abd222", Hostname: "node2"},
		{ID: "xyz333", Hostname: "twin"},
		{ID: "xyz444", Hostname: "twin"},
	}
	tests := []struct {
		ref, wantID, wantErr string
	}{
		{ref: "abd222", wantID: "abd222"},
		{ref: "node1", wantID: "abc111"},
		{ref: "self", wantID: "abc111"},
		{ref: "abc", wantID: "abc111"},
		{ref: "ab", wantErr: "ambiguous"},
		{ref: "twin", wantErr: "ambiguous"},
		{ref: "node9", wantErr: "not found"},
		{ref: "", wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			n, err := FindNode(nodes, tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || n.ID != tt.wantID {
				t.Errorf("got %q, %v; want %q", n.ID, err, tt.wantID)
			}
		})
	}
}
