package apiserver

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// TestContainersOnOverlays runs, stops, starts and removes a container on
// an attachable overlay from a worker (through the cluster port with its
// certificate, the first manager it knows being down) and from a
// follower manager (forwarding to the leader), and checks the refusals.
func TestContainersOnOverlays(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	for _, req := range []api.NetworkCreate{{Name: "ovnet", Attachable: true}, {Name: "ov2", Attachable: true}, {Name: "plain"}} {
		if _, err := tc.m.CreateNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	run := func(c *api.Client, name, network string) (api.Task, error) {
		return c.RunContainer(ctx, api.ContainerCreate{Name: name, Image: "alpine", Cmd: []string{"sleep", "1000"},
			Networks: []api.ContainerAttach{{Network: network, Aliases: []string{"box"}}}})
	}
	for _, c := range []struct {
		name   string
		client *api.Client
	}{{"worker", tc.worker}, {"follower", tc.follower}} {
		t.Run(c.name, func(t *testing.T) {
			made, err := run(c.client, "", "ovnet")
			if err != nil {
				t.Fatal(err)
			}
			name := made.Standalone.Name
			got := tc.m.State().Tasks[made.ID]
			if name == "" || got.NodeID != "w2" || got.ServiceID != "" || got.Networks[0].NetworkName != "ovnet" || made.NodeName != "node2" {
				t.Fatalf("made %+v; the leader has %+v", made, got)
			}
			if _, err := run(c.client, name, "ovnet"); err == nil || !strings.Contains(err.Error(), `The container name "/`+name+`" is already in use`) {
				t.Errorf("the same name again: %v", err)
			}
			if err := c.client.RemoveContainer(ctx, name, false); api.StatusCode(err) != http.StatusConflict {
				t.Errorf("rm of a running container without -f: %v", err)
			}
			if err := c.client.ConnectNetwork(ctx, "ov2", api.NetworkConnect{Container: name, Attach: api.ContainerAttach{Aliases: []string{"box2"}}}); err != nil {
				t.Fatalf("network connect: %v", err)
			}
			if got := tc.m.State().Tasks[made.ID].Networks; len(got) != 2 || got[1].NetworkName != "ov2" || got[1].Aliases[0] != "box2" {
				t.Errorf("after connect, the leader has %+v", got)
			}
			for _, network := range []string{"ov2", "ovnet"} {
				if err := c.client.ConnectNetwork(ctx, network, api.NetworkConnect{Container: name}); err == nil || !strings.Contains(err.Error(), "already attached") {
					t.Errorf("network connect to %s again: %v", network, err)
				}
			}
			if err := c.client.ConnectNetwork(ctx, "plain", api.NetworkConnect{Container: name}); err == nil || !strings.Contains(err.Error(), "not manually attachable") {
				t.Errorf("network connect to a plain overlay: %v", err)
			}
			if err := c.client.DisconnectNetwork(ctx, "ov2", api.NetworkConnect{Container: name}); err != nil {
				t.Fatalf("network disconnect: %v", err)
			}
			if got := tc.m.State().Tasks[made.ID].Networks; len(got) != 1 || got[0].NetworkName != "ovnet" {
				t.Errorf("after disconnect, the leader has %+v", got)
			}
			if err := c.client.DisconnectNetwork(ctx, "ov2", api.NetworkConnect{Container: name}); err == nil || !strings.Contains(err.Error(), "is not connected to network ov2") {
				t.Errorf("network disconnect again: %v", err)
			}
			if err := c.client.StopContainer(ctx, name, api.ContainerStop{}); err != nil {
				t.Fatal(err)
			}
			if tc.m.State().Tasks[made.ID].Current() {
				t.Errorf("stopped container still desired running")
			}
			// The node's agent ended the process by the stop's SIGTERM;
			// the managers, which wrote the stop before, learn its status.
			if code, ok := api.ContainerExitCode(tc.m.State().Tasks[made.ID]); !ok || code != 143 {
				t.Errorf("stopped container's exit code %d (known %v), want 143", code, ok)
			}
			again, err := c.client.StartContainer(ctx, name)
			if err != nil || again.ID == made.ID || !tc.m.State().Tasks[again.ID].Current() {
				t.Fatalf("start: %+v, %v", again, err)
			}
			if err := c.client.RemoveContainer(ctx, name, true); err != nil {
				t.Fatal(err)
			}
			if _, ok := tc.m.State().Tasks[again.ID]; ok {
				t.Errorf("removed container kept")
			}
		})
	}

	_, err := run(tc.worker, "c1", "plain")
	if want := "Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable"; err == nil || err.Error() != want {
		t.Errorf("a plain overlay: %v, want %q", err, want)
	}
	// A node acts on its own containers only; only a manager names
	// another node.
	mine, err := tc.m.RunContainer(ctx, "m1", api.ContainerCreate{Name: "mc", Image: "alpine", Networks: []api.ContainerAttach{{Network: "ovnet"}}})
	if err != nil {
		t.Fatal(err)
	}
	asWorker := api.NewClusterClient(tc.leaderAddr, tc.ids["w2"].ClientConfig())
	if err := asWorker.RemoveNodeContainer(ctx, "", "mc", true); api.StatusCode(err) != http.StatusNotFound {
		t.Errorf("a worker removing a manager's container: %v, want 404", err)
	}
	if err := asWorker.RemoveNodeContainer(ctx, "m1", "mc", true); api.StatusCode(err) != http.StatusForbidden {
		t.Errorf("a worker naming another node: %v, want 403", err)
	}
	if _, err := asWorker.ConnectNodeContainer(ctx, "", "mc", api.ContainerAttach{Network: "ov2"}); api.StatusCode(err) != http.StatusNotFound {
		t.Errorf("a worker connecting a manager's container: %v, want 404", err)
	}
	if _, err := asWorker.DisconnectNodeContainer(ctx, "m1", "mc", "ovnet"); api.StatusCode(err) != http.StatusForbidden {
		t.Errorf("a worker disconnecting another node's container: %v, want 403", err)
	}
	if _, ok := tc.m.State().Tasks[mine.ID]; !ok {
		t.Errorf("the manager's container went")
	}
	if err := tc.follower.ConnectNetwork(ctx, "ovnet", api.NetworkConnect{Container: "local"}); api.StatusCode(err) != http.StatusNotFound || !strings.Contains(err.Error(), "No such container: local") {
		t.Errorf("network connect of no container here to an overlay: %v", err)
	}
	// Another node's containers are its own: a manager lists and finds
	// its own only (names are per node).
	all, err := tc.follower.Tasks(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range all {
		if tk.Standalone != nil && tk.NodeID != "w2" {
			t.Errorf("the task list of node w2 has %s of %s", tk.Standalone.Name, tk.NodeID)
		}
	}
	if _, err := tc.follower.Container(ctx, "mc"); api.StatusCode(err) != http.StatusNotFound {
		t.Errorf("inspect of another node's container: %v, want 404", err)
	}
	if _, err := tc.outside.RunContainer(ctx, api.ContainerCreate{Image: "alpine", Networks: []api.ContainerAttach{{Network: "ovnet"}}}); err == nil {
		t.Errorf("a node in no swarm ran a container on a swarm network")
	}
}
