package agent

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/container"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/overlay"
)

// A container of the node's engine (a bridge container) may be on the
// swarm's attachable overlays too (network connect). The leader holds
// its addresses in an attachment task (api.Standalone.Attachment), which
// runs no process; the engine keeps the attachment with the container and
// reserves its ethN. The agent builds the link into the container's
// namespace, onto the overlay's bridge, and names the container there,
// while the container runs: a stopped container's links went with its
// namespace and come back at its start, in the new one.

// attachedLink is one overlay link the agent built for an attachment.
type attachedLink struct {
	sandbox, ifName string
	net             api.TaskNetwork
}

// reconcileAttachments makes the links of the attachment tasks of this
// node those their running containers should have: a link is (re)made
// where it is missing or changed (a container started again has a new
// namespace), and taken away, with its names, where the attachment, the
// network or the container went.
func (a *Agent) reconcileAttachments(st records.Objects, desired map[string]api.Task, built map[string]api.Network) {
	want := map[string]map[string]attachedLink{} // by task, then network
	if a.cfg.Bridges != nil {
		links := map[string]container.OverlayLink{} // by container and network
		for _, l := range a.cfg.Bridges.OverlayLinks() {
			links[l.ContainerID+"/"+l.Net.NetworkID] = l
		}
		for id, t := range desired {
			if !t.IsAttachment() {
				continue
			}
			if !a.cfg.Bridges.Has(t.ContainerID()) {
				// Removed without a word to the leader (run --rm): the
				// leader removes an attachment that reports its end.
				if s, ok := records.TaskStatus(a.cfg.DB, id); !ok || !api.Terminal(s.State) {
					a.report(t, api.TaskStatus{State: api.TaskComplete})
				}
				continue
			}
			for _, tn := range t.Networks {
				l, ok := links[t.ContainerID()+"/"+tn.NetworkID]
				if _, isBuilt := built[tn.NetworkID]; !ok || !isBuilt || l.IfName == "" {
					continue
				}
				if want[id] == nil {
					want[id] = map[string]attachedLink{}
				}
				want[id][tn.NetworkID] = attachedLink{sandbox: l.Sandbox, ifName: l.IfName, net: tn}
			}
		}
	}
	for id, have := range a.attached {
		for netID, l := range have {
			if w, ok := want[id][netID]; !ok || !sameLink(w, l) {
				a.unlinkAttachment(id, l)
				delete(have, netID)
			}
		}
		if len(have) == 0 {
			delete(a.attached, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		t := desired[id]
		recs := endpointRecords(t, st)
		for _, netID := range slices.Sorted(maps.Keys(want[id])) {
			l := want[id][netID]
			// Made every pass: EnsureEndpoint mends a link deleted by hand.
			// Announced once, unless the announcement went.
			_, had := a.attached[id][netID]
			announce := !had || !records.HasEndpoint(a.cfg.DB, netID, id)
			if err := a.linkAttachment(t, l, recs[netID], announce); err != nil {
				a.log.Error("connect container to overlay", "container", t.Standalone.Name, "network", l.net.NetworkName, "err", err)
				continue
			}
			if a.attached[id] == nil {
				a.attached[id] = map[string]attachedLink{}
			}
			if !had {
				a.log.Info("container connected", "container", t.Standalone.Name, "network", l.net.NetworkName, "interface", l.ifName, "addr", l.net.Addr)
			}
			a.attached[id][netID] = l
		}
	}
}

func sameLink(a, b attachedLink) bool {
	return a.sandbox == b.sandbox && a.ifName == b.ifName && a.net.Addr == b.net.Addr && a.net.MAC == b.net.MAC &&
		slices.Equal(a.net.Aliases, b.net.Aliases)
}

// linkAttachment builds one link of an attachment and announces its
// address (peer) and names (endpoint) to the other nodes.
func (a *Agent) linkAttachment(t api.Task, l attachedLink, rec records.Endpoint, announce bool) error {
	mac, err := net.ParseMAC(l.net.MAC)
	if err != nil {
		return fmt.Errorf("container mac %q: %w", l.net.MAC, err)
	}
	ip := api.AddrOf(l.net.Addr)
	ep := overlay.Endpoint{ID: t.ID, IP: ip, MAC: mac, Sandbox: l.sandbox, IfName: l.ifName}
	if err := a.ov.EnsureEndpoint(l.net.NetworkID, ep); err != nil {
		return fmt.Errorf("attach %s to %s: %w", t.Standalone.Name, l.net.NetworkName, err)
	}
	if !announce {
		return nil
	}
	if err := records.SetPeer(a.cfg.DB, l.net.NetworkID, t.ID, records.Peer{IP: ip, MAC: mac, VTEP: a.cfg.AdvertiseAddr}); err != nil {
		return fmt.Errorf("announce %s on %s: %w", t.Standalone.Name, l.net.NetworkName, err)
	}
	if err := records.PutEndpoint(a.cfg.DB, l.net.NetworkID, t.ID, rec); err != nil {
		return fmt.Errorf("name %s on %s: %w", t.Standalone.Name, l.net.NetworkName, err)
	}
	return nil
}

// unlinkAttachment takes one link away with its announcements; a link
// whose namespace went already is no error.
func (a *Agent) unlinkAttachment(taskID string, l attachedLink) {
	if err := records.DeleteEndpoint(a.cfg.DB, l.net.NetworkID, taskID); err != nil {
		a.log.Warn("withdraw container's names", "network", l.net.NetworkName, "err", err)
	}
	if err := records.DeletePeer(a.cfg.DB, l.net.NetworkID, taskID); err != nil {
		a.log.Debug("withdraw peer", "network", l.net.NetworkName, "err", err)
	}
	if err := a.ov.RemoveEndpoint(l.net.NetworkID, taskID); err != nil {
		a.log.Warn("detach container from overlay", "network", l.net.NetworkName, "err", err)
	}
	a.log.Info("container disconnected", "network", l.net.NetworkName, "addr", l.net.Addr)
}

// SyncNow runs a reconcile pass in the agent's loop and returns once it
// is done: a network connect of an engine container to an overlay
// returns with its link built, as docker's does.
func (a *Agent) SyncNow(ctx context.Context) error {
	return a.inLoop(ctx, func() { a.Reconcile(ctx) })
}
