package container

import (
	"slices"
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

func TestOverlayAttachment(t *testing.T) {
	h := newFakeHost(t)
	e, stop := h.engine()
	dev := mustNetwork(t, e, api.NetworkCreate{Name: "dev"})
	mustRun(t, e, api.ContainerCreate{Name: "c1", Image: "alpine", Networks: []api.ContainerAttach{{Network: "dev"}}})
	ov := api.TaskNetwork{NetworkID: "ovid", NetworkName: "ov", Addr: "10.0.9.5/24", MAC: "02:42:0a:00:09:05"}
	link, err := e.ConnectOverlay("c1", ov)
	if err != nil {
		t.Fatal(err)
	}
	if link.IfName != "eth1" || link.Name != "c1" || len(link.ShortID) != 12 || link.Sandbox == "" || link.Net.Addr != ov.Addr {
		t.Errorf("link = %+v, want eth1 of c1's sandbox on ov", link)
	}
	if _, err := e.ConnectOverlay("c1", ov); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("a second connect: %v", err)
	}
	// A bridge connected later takes the next ethN, not the overlay's.
	mustNetwork(t, e, api.NetworkCreate{Name: "prod"})
	if err := e.Connect("prod", "c1", api.ContainerAttach{}); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	c := e.byContainerName("c1")
	ifs, q := e.boxes[c.Task.ID].ifs, querier(e.st, c)
	e.mu.Unlock()
	if ifs[dev.ID] != "eth0" || ifs["ovid"] != "eth1" || ifs[e.byName("prod").ID] != "eth2" {
		t.Errorf("interfaces = %v, want dev eth0, ov eth1, prod eth2", ifs)
	}
	if !slices.Contains(q.Networks, "ovid") || q.Networks[0] != dev.ID {
		t.Errorf("resolver sees %v, want dev first and ov", q.Networks)
	}
	// The attachment outlives a restart: it is the container's.
	stop()
	e, _ = h.engine()
	waitState(t, e, "c1", api.TaskRunning)
	links := e.OverlayLinks()
	if len(links) != 1 || links[0].Net.NetworkID != "ovid" || links[0].IfName != "eth2" {
		t.Errorf("links after a restart = %+v, want ov as eth2 (after dev and prod)", links)
	}
	got, err := e.DisconnectOverlay("c1", "ov")
	if err != nil || got.Addr != ov.Addr {
		t.Fatalf("disconnect = %+v, %v", got, err)
	}
	if links := e.OverlayLinks(); len(links) != 0 {
		t.Errorf("links after disconnect: %+v", links)
	}
	if _, err := e.DisconnectOverlay("c1", "ov"); err == nil || !strings.Contains(err.Error(), "is not connected") {
		t.Errorf("a second disconnect: %v", err)
	}
}
