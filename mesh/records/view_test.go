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
		"m4": {ID: "m4", Hostname: "node4", Role: api.RoleManager},
	}
	tests := []struct {
		name   string
		alive  map[string]bool
		self   string
		leader string
		want   []string // hostname/status/manager status/self
	}{
		{name: "all alive", alive: map[string]bool{"m1": true, "w2": true, "w3": true, "m4": true}, self: "m1", leader: "m1",
			want: []string{"node1 Ready Leader *", "node2 Ready  ", "node3 Ready  ", "node4 Ready Reachable "}},
		{name: "worker dead", alive: map[string]bool{"m1": true, "w3": true, "m4": true}, self: "w3", leader: "m4",
			want: []string{"node1 Ready Reachable ", "node2 Down  ", "node3 Ready  *", "node4 Ready Leader "}},
		{name: "leader dead, no new one yet", alive: map[string]bool{"w2": true, "m4": true}, self: "m4", leader: "",
			want: []string{"node1 Down Unreachable ", "node2 Ready  ", "node3 Down  ", "node4 Ready Reachable *"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, n := range BuildView(records, tt.alive, tt.self, tt.leader) {
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
