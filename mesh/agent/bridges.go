package agent

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/container"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

// Bridges are the node's bridge networks as a task connected to one sees
// them (mesh/container's Engine): the engine builds the link, the agent
// owns the sandbox and picks the link's name.
type Bridges interface {
	AttachTask(network string, l container.TaskLink) (api.TaskNetwork, error)
	DetachTask(network, taskID string) (api.TaskNetwork, error)
	// RepairTask makes a task's bridge links again where they are gone.
	RepairTask(taskID string) error
	// OverlayLinks are the links the running containers' attachments to
	// overlays should have; SetOverlayNames gives the containers'
	// resolvers the overlays' names.
	OverlayLinks() []container.OverlayLink
	// Has says whether the engine has a container (ID, name or prefix).
	Has(ref string) bool
	SetOverlayNames(t *dns.Table)
	// Names are the bridge networks' names; OnNames is told when they
	// change.
	Names() *dns.Table
	OnNames(f func())
}

// errNoBridges answers a bridge connect where meshd runs no bridge
// networks.
var errNoBridges = api.Errorf(503, "this meshd runs no bridge networks")

// ConnectBridge connects a task this node runs to one of its bridge
// networks, live, as docker network connect does: a new ethN, the task's
// names on that network, and the network's names for the task. It runs
// in the agent's goroutine, which owns the task's sandbox.
func (a *Agent) ConnectBridge(ctx context.Context, taskID, network string, at api.ContainerAttach) error {
	if a.cfg.Bridges == nil {
		return errNoBridges
	}
	var err error
	if lerr := a.inLoop(ctx, func() { err = a.connectBridge(taskID, network, at) }); lerr != nil {
		return lerr
	}
	return err
}

// DisconnectBridge takes a task off a bridge network it was connected to.
func (a *Agent) DisconnectBridge(ctx context.Context, taskID, network string) error {
	if a.cfg.Bridges == nil {
		return errNoBridges
	}
	var err error
	if lerr := a.inLoop(ctx, func() { err = a.disconnectBridge(taskID, network) }); lerr != nil {
		return lerr
	}
	return err
}

// runningTask is a task of this node whose process runs.
func (a *Agent) runningTask(taskID string) (*localTask, error) {
	lt := a.tasks[taskID]
	if lt == nil || lt.cancel == nil || a.hasExited(lt) || !lt.drainUntil.IsZero() {
		return nil, api.Conflict("Container %s is not running", api.Clip(taskID))
	}
	return lt, nil
}

func (a *Agent) connectBridge(taskID, network string, at api.ContainerAttach) error {
	lt, err := a.runningTask(taskID)
	if err != nil {
		return err
	}
	ifName := freeIfName(lt)
	id := lt.spec.ContainerID()
	tn, err := a.cfg.Bridges.AttachTask(network, container.TaskLink{TaskID: lt.spec.ID, Name: api.ContainerName(lt.spec),
		ContainerID: id, Sandbox: lt.sandbox, IfName: ifName, Attach: at})
	if err != nil {
		return err
	}
	lt.bridges = append(lt.bridges, tn)
	lt.ifNames[tn.NetworkID] = ifName
	a.bridgesChanged(lt)
	a.log.Info("container connected", "task", lt.spec.Name(), "network", tn.NetworkName, "interface", ifName, "addr", tn.Addr)
	return nil
}

func (a *Agent) disconnectBridge(taskID, network string) error {
	lt, err := a.runningTask(taskID)
	if err != nil {
		return err
	}
	tn, err := a.cfg.Bridges.DetachTask(network, lt.spec.ID)
	if err != nil {
		return err
	}
	lt.bridges = slices.DeleteFunc(lt.bridges, func(o api.TaskNetwork) bool { return o.NetworkID == tn.NetworkID })
	delete(lt.ifNames, tn.NetworkID)
	a.bridgesChanged(lt)
	a.log.Info("container disconnected", "task", lt.spec.Name(), "network", tn.NetworkName, "addr", tn.Addr)
	return nil
}

// bridgesChanged makes lt's resolver, the node's names and lt's
// /etc/hosts follow a bridge connect or disconnect at once.
func (a *Agent) bridgesChanged(lt *localTask) {
	st := a.desired.Current()
	if lt.dns != nil {
		lt.dns.SetQuerier(taskQuerier(lt, st))
	}
	a.setNames()
	hosts := filepath.Join(a.taskDir(lt.spec), "hosts")
	if err := os.WriteFile(hosts, task.RenderHosts(lt.spec.Hostname(), taskHostsAddrs(lt, st)), 0o644); err != nil {
		a.log.Warn("rewrite the container's hosts file", "task", lt.spec.Name(), "err", err)
	}
}

// detachBridges takes a task that stops off every bridge network.
func (a *Agent) detachBridges(lt *localTask) {
	for _, tn := range lt.bridges {
		if _, err := a.cfg.Bridges.DetachTask(tn.NetworkID, lt.spec.ID); err != nil {
			a.log.Warn("disconnect from bridge network", "task", lt.spec.Name(), "network", tn.NetworkName, "err", err)
		}
		delete(lt.ifNames, tn.NetworkID)
	}
	if len(lt.bridges) > 0 {
		lt.bridges = nil
		a.setNames()
	}
}

// setNames installs the overlays' names joined with the bridge
// networks': a task's resolver sees the networks its querier lists, of
// either owner.
func (a *Agent) setNames() {
	if a.cfg.Bridges == nil {
		a.dns.SetTable(a.names)
		return
	}
	a.dns.SetTable(dns.Merge(a.names, a.cfg.Bridges.Names()))
	a.cfg.Bridges.SetOverlayNames(a.names)
}

// taskQuerier is what lt's resolver sees: its overlays, then the bridge
// networks it was connected to, in connection order.
func taskQuerier(lt *localTask, st records.Objects) dns.Querier {
	q := querier(lt.spec, st)
	for _, tn := range lt.bridges {
		q.Networks = append(q.Networks, tn.NetworkID)
	}
	return q
}

// taskHostsAddrs are lt's addresses for its /etc/hosts, its bridge
// networks' included.
func taskHostsAddrs(lt *localTask, st records.Objects) []netip.Addr {
	out := hostsAddrs(lt.spec, st)
	for _, tn := range lt.bridges {
		out = append(out, api.AddrOf(tn.Addr))
	}
	return out
}
