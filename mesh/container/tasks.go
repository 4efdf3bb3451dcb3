package container

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
)

// A swarm task on this node (a service's task, or a container on the
// cluster's attachable overlays) may be connected to a bridge network
// too, as Docker's containers can be on a bridge network and an overlay
// at once. The node agent owns the task's sandbox and picks the ethN;
// the engine gives the address, builds the veth onto the bridge and
// answers the task's names on the network. These links live in memory
// only: a task does not outlive meshd, and its sandbox goes with it.

// TaskLink is a task's link to one bridge network.
type TaskLink struct {
	TaskID string
	// Name is the task's container name (www.1.<taskid>) and ContainerID
	// its container ID, whose first 12 hex answer on the network with the
	// name, as a container's do.
	Name, ContainerID string
	// Sandbox is the task's namespace file and IfName the link's name in
	// it, which the agent picks.
	Sandbox, IfName string
	// Attach are network connect's --alias and --ip.
	Attach api.ContainerAttach
}

// taskLink is a TaskLink made: its address and the host end of its veth.
type taskLink struct {
	TaskLink
	net  api.TaskNetwork
	veth string
}

// AttachTask connects a task to a bridge network: an address from the
// network's pool (or --ip's), a veth from its bridge into the task's
// sandbox as IfName, no default route (the task keeps its own), and the
// task's names on the network at once.
func (e *Engine) AttachTask(netRef string, l TaskLink) (api.TaskNetwork, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil {
		return api.TaskNetwork{}, api.Errorf(503, "bridge networks are not ready yet: meshd is starting")
	}
	n := e.resolveNetworkLocked(netRef)
	if n == nil {
		return api.TaskNetwork{}, api.NotFound("network %s not found", api.Clip(netRef))
	}
	if err := (api.NetworkConnect{Attach: l.Attach}).CheckSizes(); err != nil {
		return api.TaskNetwork{}, err
	}
	if err := checkAliases(l.Attach.Aliases); err != nil {
		return api.TaskNetwork{}, err
	}
	if e.links[l.TaskID][n.ID] != nil {
		return api.TaskNetwork{}, api.Conflict("container %s is already attached to network %s", l.Name, n.Name)
	}
	tn, err := e.allocateLocked(n, l.Attach)
	if err != nil {
		return api.TaskNetwork{}, err
	}
	link := &taskLink{TaskLink: l, net: tn, veth: vethName(l.TaskID, n.ID)}
	if err := e.bridges[n.ID].Connect(l.Sandbox, l.IfName, link.veth, api.AddrOf(tn.Addr), false); err != nil {
		_ = e.pools[n.ID].Release(api.AddrOf(tn.Addr))
		_ = e.cfg.Kernel.RemoveLink("", link.veth) // a half-made veth
		return api.TaskNetwork{}, fmt.Errorf("connect %s to %s: %w", l.Name, n.Name, err)
	}
	if e.links[l.TaskID] == nil {
		e.links[l.TaskID] = map[string]*taskLink{}
	}
	e.links[l.TaskID][n.ID] = link
	e.log.Info("task connected", "task", l.Name, "network", n.Name, "interface", l.IfName, "addr", tn.Addr)
	e.syncRulesLocked(e.ctx)
	return tn, nil
}

// DetachTask takes a task off a bridge network: its veth goes (absent is
// fine: the task's sandbox may be gone already), its address is given
// back and its names there stop answering. It returns the attachment
// that went.
func (e *Engine) DetachTask(netRef, taskID string) (api.TaskNetwork, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.resolveNetworkLocked(netRef)
	if n == nil {
		return api.TaskNetwork{}, api.NotFound("network %s not found", api.Clip(netRef))
	}
	link := e.links[taskID][n.ID]
	if link == nil {
		return api.TaskNetwork{}, api.Invalid("container %s is not connected to network %s", api.Clip(taskID), n.Name)
	}
	if err := e.cfg.Kernel.RemoveLink("", link.veth); err != nil {
		return api.TaskNetwork{}, fmt.Errorf("disconnect %s from %s: %w", link.Name, n.Name, err)
	}
	_ = e.pools[n.ID].Release(api.AddrOf(link.net.Addr))
	delete(e.links[taskID], n.ID)
	if len(e.links[taskID]) == 0 {
		delete(e.links, taskID)
	}
	e.log.Info("task disconnected", "task", link.Name, "network", n.Name, "addr", link.net.Addr)
	if e.ctx != nil {
		e.syncRulesLocked(e.ctx)
	}
	return link.net, nil
}

// RepairTask makes a task's links to bridge networks again where they
// are gone (a veth deleted by hand), with the same names and addresses.
func (e *Engine) RepairTask(taskID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for netID, l := range e.links[taskID] {
		if err := e.bridges[netID].Connect(l.Sandbox, l.IfName, l.veth, api.AddrOf(l.net.Addr), false); err != nil {
			errs = append(errs, fmt.Errorf("repair %s's link to %s: %w", l.Name, l.net.NetworkName, err))
		}
	}
	return errors.Join(errs...)
}

// TaskLinks are a task's attachments to bridge networks, in the order of
// their links in its sandbox (eth2 before eth10), for docker inspect.
func (e *Engine) TaskLinks(taskID string) []api.TaskNetwork {
	e.mu.Lock()
	defer e.mu.Unlock()
	links := slices.Collect(maps.Values(e.links[taskID]))
	slices.SortFunc(links, func(a, b *taskLink) int {
		return cmp.Or(cmp.Compare(len(a.IfName), len(b.IfName)), cmp.Compare(a.IfName, b.IfName))
	})
	out := make([]api.TaskNetwork, 0, len(links))
	for _, l := range links {
		tn := l.net
		tn.Aliases = slices.Clone(tn.Aliases)
		out = append(out, tn)
	}
	return out
}

// Names is the name table of the bridge networks, which a task's
// resolver joins to its own for the bridge networks it is connected to.
func (e *Engine) Names() *dns.Table {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.names
}

// OnNames sets the function called after each change of Names (nil: no
// more); it must not block.
func (e *Engine) OnNames(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onNames = f
}

// linkedOnLocked says whether a task is connected to a network.
func (e *Engine) linkedOnLocked(netID string) bool {
	for _, links := range e.links {
		if links[netID] != nil {
			return true
		}
	}
	return false
}

// taskEndpoints are the names the tasks connected to bridge networks
// answer to there, as a named container's: its name, its aliases, its
// short ID. The default bridge has none.
func taskEndpoints(st state, links map[string]map[string]*taskLink) []dns.Endpoint {
	isDefault := map[string]bool{}
	for _, n := range st.Networks {
		isDefault[n.ID] = n.Default
	}
	var out []dns.Endpoint
	for _, byNet := range links {
		for _, l := range byNet {
			if isDefault[l.net.NetworkID] {
				continue
			}
			out = append(out, dns.Endpoint{NetworkID: l.net.NetworkID, Network: l.net.NetworkName, IP: api.AddrOf(l.net.Addr),
				TaskName: l.Name, TaskAliases: append(slices.Clone(l.net.Aliases), l.ContainerID[:min(12, len(l.ContainerID))])})
		}
	}
	// Map order is random: sorted, the table is the same at every sync.
	slices.SortFunc(out, func(x, y dns.Endpoint) int { return x.IP.Compare(y.IP) })
	return out
}
