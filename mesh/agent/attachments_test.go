package agent

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/container"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/overlay"
)

// fakeBridges is the container engine as the agent sees it: which
// containers it has, and the overlay links its running ones should have.
type fakeBridges struct {
	has      map[string]bool
	links    []container.OverlayLink
	overlays *dns.Table // as the agent last set them
}

func (b *fakeBridges) AttachTask(string, container.TaskLink) (api.TaskNetwork, error) {
	return api.TaskNetwork{}, errNoBridges
}
func (b *fakeBridges) DetachTask(string, string) (api.TaskNetwork, error) {
	return api.TaskNetwork{}, errNoBridges
}
func (b *fakeBridges) RepairTask(string) error               { return nil }
func (b *fakeBridges) Names() *dns.Table                     { return dns.NewTable(nil) }
func (b *fakeBridges) OnNames(func())                        {}
func (b *fakeBridges) OverlayLinks() []container.OverlayLink { return slices.Clone(b.links) }
func (b *fakeBridges) Has(ref string) bool                   { return b.has[ref] }
func (b *fakeBridges) SetOverlayNames(t *dns.Table)          { b.overlays = t }

// An engine container's attachment to an overlay: the agent builds its
// link in the container's namespace and announces it while the
// container runs, takes it away when the container stops or the
// attachment goes, and reports the attachment complete once the engine no
// longer has the container. It starts no process for it.
func TestAttachmentLinksFollowTheContainer(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	if _, err := f.mgr.CreateNetwork(f.ctx, api.NetworkCreate{Name: "ovl", Attachable: true}); err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("c1", 32)
	sandbox := filepath.Join(t.TempDir(), "c1-netns")
	if err := f.kernel.EnsureNS(sandbox); err != nil {
		t.Fatal(err)
	}
	fb := &fakeBridges{has: map[string]bool{id: true}}
	f.agent.cfg.Bridges = fb
	at, err := f.mgr.ConnectContainer(f.ctx, "node1id", id, api.ContainerAttach{Network: "ovl", Aliases: []string{"box"},
		Local: &api.LocalContainer{ID: id, Name: "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	tn := at.Networks[0]
	link := container.OverlayLink{ContainerID: id, Name: "c1", ShortID: id[:12], Sandbox: sandbox, IfName: "eth1", Net: tn}
	hasLink := func() bool {
		links, err := f.kernel.ListLinks(sandbox)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(links, func(l overlay.Link) bool { return l.Name == "eth1" })
	}
	announced := func() bool {
		peers, _ := records.RemotePeers(f.db, tn.NetworkID, "nobody")
		return records.HasEndpoint(f.db, tn.NetworkID, at.ID) && slices.ContainsFunc(peers, func(p records.Peer) bool { return p.IP == api.AddrOf(tn.Addr) })
	}

	// Running: the link, the peer, the names; no process.
	fb.links = []container.OverlayLink{link}
	f.reconcile()
	if !hasLink() || !announced() {
		t.Fatalf("running container: link %v, announced %v; want both\n%s", hasLink(), announced(), f.kernel.Dump())
	}
	if slices.Contains(f.runner.Running(), at.ID) || f.runner.Starts(at.ID) != 0 {
		t.Errorf("the attachment task was started as a process")
	}
	if fb.overlays == nil {
		t.Errorf("the engine's resolvers were given no overlay names")
	}

	// A hand-deleted link: meshctl check names it, and the next pass
	// makes it again.
	if diffs := f.agent.check(f.ctx); len(diffs) != 0 {
		t.Errorf("check with the link in place: %+v", diffs)
	}
	if err := f.kernel.RemoveLink(sandbox, "eth1"); err != nil {
		t.Fatal(err)
	}
	if diffs := f.agent.check(f.ctx); !slices.ContainsFunc(diffs, func(d api.CheckDiff) bool {
		return d.Kind == api.DiffLink && d.State == lb.Missing && d.Object == "eth1"
	}) {
		t.Errorf("check after the link's deletion: %+v, want eth1 missing", diffs)
	}
	f.reconcile()
	if !hasLink() {
		t.Errorf("the deleted link was not made again")
	}

	// Stopped: its namespace's link and its announcements go.
	fb.links = nil
	f.reconcile()
	if announced() {
		t.Errorf("a stopped container is still announced")
	}

	// Started again, then disconnected: the attachment leaves the
	// desired state and takes everything with it.
	fb.links = []container.OverlayLink{link}
	f.reconcile()
	if !announced() {
		t.Fatalf("the container started again is not announced")
	}
	if _, err := f.mgr.DisconnectContainer(f.ctx, "node1id", id, "ovl"); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if announced() || hasLink() {
		t.Errorf("after disconnect: announced %v, link %v; want neither", announced(), hasLink())
	}

	// Removed from the engine without a word to the leader (run --rm):
	// the attachment reports its end, for the leader to remove it.
	if _, err := f.mgr.ConnectContainer(f.ctx, "node1id", id, api.ContainerAttach{Network: "ovl",
		Local: &api.LocalContainer{ID: id, Name: "c1"}}); err != nil {
		t.Fatal(err)
	}
	fb.has[id], fb.links = false, nil
	f.reconcile()
	var again api.Task
	for _, task := range f.mgr.Objects().Tasks {
		if task.IsAttachment() {
			again = task
		}
	}
	if s, ok := records.TaskStatus(f.db, again.ID); !ok || s.State != api.TaskComplete {
		t.Errorf("attachment of a removed container: status %+v (%v), want complete", s, ok)
	}
}
