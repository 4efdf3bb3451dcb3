package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

// reconnectTasks follows network connect and disconnect: a standalone
// container or a service's task whose desired networks differ from those
// its sandbox has (the same task: the manager changed its networks in
// place) is attached to
// the new ones and detached from the old ones live, as docker's is, and
// its process keeps running. Its names are announced or withdrawn on
// those networks and its resolver sees the networks it is on. A network
// not built here yet waits for a later reconcile.
func (a *Agent) reconnectTasks(st records.Objects, desired map[string]api.Task, built map[string]api.Network) {
	for id, lt := range a.tasks {
		t, ok := desired[id]
		if !ok || lt.cancel == nil || sameNetworks(lt.spec.Networks, t.Networks) || !networksReady(t, built) {
			continue
		}
		if a.hasExited(lt) {
			continue // it is stopped, not reattached
		}
		a.reconnect(lt, t, st)
	}
}

// reconnect moves lt to t's networks. A network that fails to attach is
// left out of lt's networks, so that the next reconcile tries it again.
func (a *Agent) reconnect(lt *localTask, t api.Task, st records.Objects) {
	var gone, added []api.TaskNetwork
	for _, tn := range lt.spec.Networks {
		if !slices.ContainsFunc(t.Networks, func(o api.TaskNetwork) bool { return sameNetwork(o, tn) }) {
			gone = append(gone, tn)
		}
	}
	for _, tn := range gone {
		a.detach(lt, tn)
	}
	attached := map[string]bool{}
	for _, tn := range t.Networks {
		if slices.ContainsFunc(lt.spec.Networks, func(o api.TaskNetwork) bool { return sameNetwork(o, tn) }) {
			attached[tn.NetworkID] = true
			continue
		}
		ifName := freeIfName(lt)
		if err := a.attach(lt, ifName, tn); err != nil {
			a.log.Error("connect container", "task", t.Name(), "network", tn.NetworkName, "err", err)
			_ = a.ov.RemoveEndpoint(tn.NetworkID, lt.spec.ID) // a half-built link is made again next time
			delete(lt.ifNames, tn.NetworkID)
			continue
		}
		attached[tn.NetworkID] = true
		added = append(added, tn)
		a.log.Info("container connected", "task", t.Name(), "network", tn.NetworkName, "interface", ifName, "addr", tn.Addr)
	}
	spec := t
	spec.Networks = slices.DeleteFunc(slices.Clone(t.Networks), func(tn api.TaskNetwork) bool { return !attached[tn.NetworkID] })
	// A container on internal networks only, or on none, has no way out:
	// it gets one with its first other network and loses it with its
	// last, as docker's.
	switch wantGW := wantsGateway(spec, st); {
	case wantGW && lt.gwVeth == "":
		if err := a.attachGateway(lt, freeIfName(lt)); err != nil {
			a.log.Error("connect container to the gateway bridge", "task", t.Name(), "err", err)
			a.detachGateway(lt) // tried again at the next change
		}
	case !wantGW && lt.gwVeth != "":
		a.detachGateway(lt)
	}
	lt.mu.Lock()
	lt.spec = spec
	lt.endpoints = endpointRecords(spec, st)
	if lt.running && lt.listening {
		for _, tn := range added {
			rec := lt.endpoints[tn.NetworkID]
			rec.Draining = lt.draining
			if err := records.PutEndpoint(a.cfg.DB, tn.NetworkID, spec.ID, rec); err != nil {
				a.log.Warn("announce endpoint", "task", spec.Name(), "err", err)
			}
		}
	}
	lt.mu.Unlock()
	if lt.dns != nil {
		lt.dns.SetQuerier(taskQuerier(lt, st))
	}
	// Docker adds a line to the container's /etc/hosts at a connect and
	// takes it out at a disconnect. The file is written in place: the
	// process sees it through its bind mount.
	hosts := filepath.Join(a.taskDir(spec), "hosts")
	if err := os.WriteFile(hosts, task.RenderHosts(spec.Hostname(), taskHostsAddrs(lt, st)), 0o644); err != nil {
		a.log.Warn("rewrite the container's hosts file", "task", spec.Name(), "err", err)
	}
	if len(gone) > 0 || len(added) > 0 {
		a.poke() // the networks and sandboxes no longer needed go at the next reconcile
	}
}

// detach takes lt off one network: its name and peer entry are
// withdrawn, then its link removed.
func (a *Agent) detach(lt *localTask, tn api.TaskNetwork) {
	lt.mu.Lock()
	delete(lt.endpoints, tn.NetworkID) // a late announcement of the supervisor skips it
	lt.mu.Unlock()
	if err := records.DeleteEndpoint(a.cfg.DB, tn.NetworkID, lt.spec.ID); err != nil {
		a.log.Warn("withdraw endpoint", "task", lt.spec.Name(), "network", tn.NetworkName, "err", err)
	}
	if err := records.DeletePeer(a.cfg.DB, tn.NetworkID, lt.spec.ID); err != nil {
		a.log.Debug("withdraw peer", "task", lt.spec.Name(), "err", err)
	}
	if err := a.ov.RemoveEndpoint(tn.NetworkID, lt.spec.ID); err != nil {
		a.log.Warn("detach endpoint", "task", lt.spec.Name(), "network", tn.NetworkName, "err", err)
	}
	delete(lt.ifNames, tn.NetworkID)
	a.log.Info("container disconnected", "task", lt.spec.Name(), "network", tn.NetworkName, "addr", tn.Addr)
}

// freeIfName is the first ethN of lt's sandbox that no link of it has:
// the gateway's link is one of them.
func freeIfName(lt *localTask) string {
	used := map[string]bool{lt.gwIf: true}
	for _, name := range lt.ifNames {
		used[name] = true
	}
	for i := 0; ; i++ {
		if name := fmt.Sprintf("eth%d", i); !used[name] {
			return name
		}
	}
}

// sameNetworks says whether two attachments lists are the same networks
// with the same addresses, in the same order.
func sameNetworks(x, y []api.TaskNetwork) bool {
	return slices.EqualFunc(x, y, sameNetwork)
}

func sameNetwork(x, y api.TaskNetwork) bool { return x.NetworkID == y.NetworkID && x.Addr == y.Addr }
