package container

import (
	"slices"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
)

// A container of the engine may be on a swarm overlay made --attachable
// too, as Docker's can be on a bridge network and an attachable overlay
// at once. The roles are those of a task connected to a bridge network,
// reversed: the cluster's leader gives the address, the node agent
// builds the link (an ethN onto the overlay's br0) in the container's
// namespace and names the container on the overlay; the engine keeps the
// attachment with the container (it outlives a stop and a meshd restart,
// as the leader's address does), reserves the ethN, and makes the
// container's resolver see the overlay's names after its bridges'.

// OverlayLink is one overlay attachment of a running container: where
// the agent builds its link, and what it names there.
type OverlayLink struct {
	// ContainerID is the container's 64-hex ID, Name its name and ShortID
	// the ID's first 12 hex: all three answer on the overlay.
	ContainerID, Name, ShortID string
	// Sandbox is the container's namespace file, IfName the link's name
	// in it, which the engine reserves.
	Sandbox, IfName string
	Net             api.TaskNetwork
}

// ConnectOverlay records a container's attachment to an overlay, whose
// address tn the leader allocated. A running container gets its ethN
// reserved at once; the link is the agent's to build (OverlayLinks).
func (e *Engine) ConnectOverlay(ref string, tn api.TaskNetwork) (OverlayLink, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return OverlayLink{}, err
	}
	if slices.ContainsFunc(c.Overlays, func(o api.TaskNetwork) bool { return o.NetworkID == tn.NetworkID }) {
		return OverlayLink{}, api.Conflict("container %s is already attached to network %s", c.Task.Standalone.Name, tn.NetworkName)
	}
	if len(c.Task.Networks)+len(c.Overlays) >= api.MaxNetworks {
		return OverlayLink{}, api.Invalid("container %s is on %d networks, the most it may be on", c.Task.Standalone.Name, len(c.Task.Networks)+len(c.Overlays))
	}
	c.Overlays = append(c.Overlays, tn)
	var link OverlayLink
	if sb := e.boxes[c.Task.ID]; sb != nil {
		sb.ifs[tn.NetworkID] = freeIfName(sb)
		sb.res.SetQuerier(querier(e.st, c))
		link = overlayLink(c, sb, tn)
	}
	e.log.Info("container connected to an overlay", "container", c.Task.Standalone.Name, "network", tn.NetworkName, "addr", tn.Addr)
	return link, e.saveLocked()
}

// DisconnectOverlay forgets a container's attachment to an overlay and
// its ethN, and returns it: the agent takes the link down, the leader
// releases the address.
func (e *Engine) DisconnectOverlay(ref, netRef string) (api.TaskNetwork, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return api.TaskNetwork{}, err
	}
	i := slices.IndexFunc(c.Overlays, func(o api.TaskNetwork) bool { return o.NetworkID == netRef || o.NetworkName == netRef })
	if i < 0 {
		return api.TaskNetwork{}, api.Invalid("container %s is not connected to network %s", c.Task.Standalone.Name, api.Clip(netRef))
	}
	tn := c.Overlays[i]
	c.Overlays = slices.Delete(c.Overlays, i, i+1)
	if sb := e.boxes[c.Task.ID]; sb != nil {
		delete(sb.ifs, tn.NetworkID)
		sb.res.SetQuerier(querier(e.st, c))
	}
	e.log.Info("container disconnected from an overlay", "container", c.Task.Standalone.Name, "network", tn.NetworkName)
	return tn, e.saveLocked()
}

// Overlays are a container's overlay attachments, nil for a container
// this engine does not have.
func (e *Engine) Overlays(ref string) []api.TaskNetwork {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return nil
	}
	return slices.Clone(c.Overlays)
}

// OverlayLinks are the overlay links the running containers should
// have, which the agent builds and repairs; a stopped container's come
// back at its start, in a new namespace.
func (e *Engine) OverlayLinks() []OverlayLink {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []OverlayLink
	for _, c := range e.st.Containers {
		sb := e.boxes[c.Task.ID]
		if sb == nil {
			continue
		}
		for _, tn := range c.Overlays {
			out = append(out, overlayLink(c, sb, tn))
		}
	}
	return out
}

// SetOverlayNames sets the overlays' names (the agent's table), which
// the containers' resolvers see beside the bridges' for the overlays
// they are on.
func (e *Engine) SetOverlayNames(t *dns.Table) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.overlayNames = t
	e.dns.SetTable(dns.Merge(e.names, e.overlayNames))
}

func overlayLink(c *container, sb *sandbox, tn api.TaskNetwork) OverlayLink {
	id := c.Task.ContainerID()
	return OverlayLink{ContainerID: id, Name: c.Task.Standalone.Name, ShortID: id[:min(12, len(id))],
		Sandbox: sb.path, IfName: sb.ifs[tn.NetworkID], Net: tn}
}

// reserveOverlayIfs names the overlay links of a container that starts:
// after its bridge networks' eth0…ethN-1, in connection order.
func reserveOverlayIfs(c *container, sb *sandbox) {
	for j, tn := range c.Overlays {
		sb.ifs[tn.NetworkID] = "eth" + strconv.Itoa(len(c.Task.Networks)+j)
	}
}
