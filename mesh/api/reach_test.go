package api

import (
	"slices"
	"testing"
)

func TestSendingNodes(t *testing.T) {
	ready := map[string]bool{"n1": true, "n2": true, "n3": true, "down": false}
	tasks := map[string]Task{
		"a": {ID: "a", NodeID: "n2", DesiredState: TaskRunning, Networks: []TaskNetwork{{NetworkID: "ov"}}},
		"b": {ID: "b", NodeID: "down", DesiredState: TaskRunning, Networks: []TaskNetwork{{NetworkID: "ov"}}},
		"c": {ID: "c", NodeID: "n3", DesiredState: TaskShutdown, Networks: []TaskNetwork{{NetworkID: "ov"}}},
		"d": {ID: "d", NodeID: "n1", DesiredState: TaskRunning, Networks: []TaskNetwork{{NetworkID: "other"}}},
	}
	ingress := []PortConfig{{PublishMode: PublishIngress, PublishedPort: 80, TargetPort: 80}}
	host := []PortConfig{{PublishMode: PublishHost, PublishedPort: 80, TargetPort: 80}}
	for _, tt := range []struct {
		name string
		svc  Service
		want []string
	}{
		{"a VIP: the ready nodes with a current task on its network", Service{Networks: []NetworkAttachment{{Target: "ov"}}}, []string{"n2"}},
		{"published through the mesh: every ready node", Service{Endpoint: Endpoint{Ports: ingress}}, []string{"n1", "n2", "n3"}},
		{"a host-mode port alone: nobody balances it", Service{Endpoint: Endpoint{Ports: host}}, nil},
		{"no network, no port", Service{}, nil},
	} {
		if got := tt.svc.SendingNodes(tasks, ready); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	byNode := map[string][]string{"n1": {"a"}, "n2": {"a", "d"}}
	if !ProgrammedBy(byNode, []string{"n1", "n2"}, "a") || ProgrammedBy(byNode, []string{"n1", "n2"}, "d") || !ProgrammedBy(byNode, nil, "x") {
		t.Error("ProgrammedBy: want a programmed by n1 and n2, d not by n1, anything by no node")
	}
}
