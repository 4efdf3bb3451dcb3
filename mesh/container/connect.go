package container

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
)

// Connect attaches a container to one more network, as docker network
// connect: a running one gets a new ethN at once (no default route
// unless it had none), and its names there answer at once.
func (e *Engine) Connect(netRef, ref string, a api.ContainerAttach) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, n, err := e.pairLocked(netRef, ref)
	if err != nil {
		return err
	}
	if err := (api.NetworkConnect{Attach: a}).CheckSizes(); err != nil {
		return err
	}
	if err := checkAliases(a.Aliases); err != nil {
		return err
	}
	a.Network = n.ID
	if err := e.attachLocked(c, a); err != nil {
		return err
	}
	tn := c.Task.Networks[len(c.Task.Networks)-1]
	if sb := e.boxes[c.Task.ID]; sb != nil {
		ifName := freeIfName(sb)
		veth := vethName(c.Task.ID, n.ID)
		routed := false
		for id := range sb.ifs {
			if o := e.resolveNetworkLocked(id); o != nil && !o.Internal {
				routed = true
			}
		}
		if err := e.bridges[n.ID].Connect(sb.path, ifName, veth, api.AddrOf(tn.Addr), !routed && !n.Internal); err != nil {
			c.Task.Networks = c.Task.Networks[:len(c.Task.Networks)-1]
			_ = e.pools[n.ID].Release(api.AddrOf(tn.Addr))
			return fmt.Errorf("connect %s to %s: %w", c.Task.Standalone.Name, n.Name, err)
		}
		sb.veths[n.ID], sb.ifs[n.ID] = veth, ifName
		sb.res.SetQuerier(querier(e.st, c))
	}
	e.log.Info("container connected", "container", c.Task.Standalone.Name, "network", n.Name, "addr", tn.Addr)
	e.syncRulesLocked(e.ctx)
	return e.saveLocked()
}

// Disconnect detaches a container from a network: its interface there
// goes, its address is given back, its names there stop answering.
func (e *Engine) Disconnect(netRef, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, n, err := e.pairLocked(netRef, ref)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(c.Task.Networks, func(tn api.TaskNetwork) bool { return tn.NetworkID == n.ID })
	if i < 0 {
		return api.Invalid("container %s is not connected to network %s", c.Task.Standalone.Name, n.Name)
	}
	tn := c.Task.Networks[i]
	if sb := e.boxes[c.Task.ID]; sb != nil {
		if err := e.cfg.Kernel.RemoveLink("", sb.veths[n.ID]); err != nil {
			return fmt.Errorf("disconnect %s from %s: %w", c.Task.Standalone.Name, n.Name, err)
		}
		delete(sb.veths, n.ID)
		delete(sb.ifs, n.ID)
	}
	c.Task.Networks = slices.Delete(c.Task.Networks, i, i+1)
	_ = e.pools[n.ID].Release(api.AddrOf(tn.Addr))
	if sb := e.boxes[c.Task.ID]; sb != nil {
		sb.res.SetQuerier(querier(e.st, c))
	}
	e.log.Info("container disconnected", "container", c.Task.Standalone.Name, "network", n.Name)
	e.syncRulesLocked(e.ctx)
	return e.saveLocked()
}

// freeIfName is the first ethN the sandbox does not use.
func freeIfName(sb *sandbox) string {
	for i := 0; ; i++ {
		name := "eth" + strconv.Itoa(i)
		if !slices.Contains(slices.Collect(maps.Values(sb.ifs)), name) {
			return name
		}
	}
}

// pairLocked resolves a container and a network.
func (e *Engine) pairLocked(netRef, ref string) (*container, *network, error) {
	c, err := e.resolveLocked(ref)
	if err != nil {
		return nil, nil, err
	}
	n := e.resolveNetworkLocked(netRef)
	if n == nil {
		return nil, nil, api.NotFound("network %s not found", api.Clip(netRef))
	}
	return c, n, nil
}
