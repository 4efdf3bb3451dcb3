package agent

import (
	"reflect"
	"sync"

	"github.com/meshd/meshd/internal/kwatch"
)

// drifted collects the namespaces where the kernel reported a removal
// since the last reconcile, and what kind of change it was. The
// watcher's goroutines add to it; Reconcile takes it.
type drifted struct {
	mu sync.Mutex
	ns map[string]map[kwatch.Kind]bool
}

func (d *drifted) add(ns string, k kwatch.Kind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ns == nil {
		d.ns = map[string]map[kwatch.Kind]bool{}
	}
	if d.ns[ns] == nil {
		d.ns[ns] = map[kwatch.Kind]bool{}
	}
	d.ns[ns][k] = true
}

func (d *drifted) take() map[string]map[kwatch.Kind]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.ns
	d.ns = nil
	return out
}

// kernelChanged is the watcher's notify: note the namespace and wake the
// reconcile loop, which repairs it.
func (a *Agent) kernelChanged(ns string, k kwatch.Kind) {
	a.drift.add(ns, k)
	a.poke()
}

// watch starts watching a namespace meshd built; a failure costs only the
// prompt repair (the periodic resync still runs), so it is logged.
func (a *Agent) watch(ns string) {
	if err := a.watcher.Watch(ns); err != nil {
		a.log.Warn("watch namespace for changes", "netns", ns, "err", err)
	}
}

// markDrift turns the kernel's reports into work for this reconcile: what
// is compared with the kernel only when asked (a sandbox's VIPs and
// gateway link, a task's links, the rules of a namespace) is compared in
// the namespaces that changed. Everything else is read from the kernel at
// every reconcile anyway.
func (a *Agent) markDrift() {
	for ns, kinds := range a.drift.take() {
		stack, rules := kinds[kwatch.Stack], kinds[kwatch.Rules]
		a.log.Debug("kernel changed: checking", "netns", ns, "stack", stack, "rules", rules)
		if ns == "" {
			if stack {
				a.gwChecked = false
			}
			if rules {
				a.host.Recheck()
			}
			continue
		}
		for _, sb := range a.sboxes {
			if sb.path == ns {
				sb.checkStack = sb.checkStack || stack
				if rules {
					sb.plane.Recheck()
				}
			}
		}
		for _, lt := range a.tasks {
			if lt.sandbox == ns {
				lt.checkStack = lt.checkStack || stack
				if rules && lt.rules != nil {
					lt.rules.Recheck()
				}
			}
		}
	}
}

// repairTasks rebuilds the links of the tasks whose namespace changed: a
// veth deleted by hand is made again with the task's address and MAC, and
// the default route through mesh_gwbridge is set again. The overlay and
// gateway calls compare with the kernel and change only what differs.
func (a *Agent) repairTasks() {
	for _, lt := range a.tasks {
		if !lt.checkStack {
			continue
		}
		lt.checkStack = false
		// The kernel also reports the agent's own changes (a task just
		// built): a repair counts only if the links came out different.
		before, err := a.cfg.Kernel.ListLinks(lt.sandbox)
		a.repairTask(lt)
		if after, err2 := a.cfg.Kernel.ListLinks(lt.sandbox); err == nil && err2 == nil && !reflect.DeepEqual(before, after) {
			a.cfg.Metrics.LinkRepair()
			a.driftEvent("links", lt.sandbox, map[string]string{"task": lt.spec.Name()})
		}
	}
}

// repairTask makes a task's links again where they differ from what they
// should be; a failure asks for another look at the next reconcile.
func (a *Agent) repairTask(lt *localTask) {
	for _, tn := range lt.spec.Networks {
		ifName, ok := lt.ifNames[tn.NetworkID]
		if _, built := a.nets[tn.NetworkID]; !built || !ok {
			continue
		}
		if err := a.attach(lt, ifName, tn); err != nil {
			a.log.Error("repair task link", "task", lt.spec.Name(), "network", tn.NetworkName, "err", err)
			lt.checkStack = true
		}
	}
	if lt.gwVeth != "" {
		if err := a.gw.Attach(lt.sandbox, lt.gwIf, lt.gwVeth, lt.gwAddr); err != nil {
			a.log.Error("repair task gateway link", "task", lt.spec.Name(), "err", err)
			lt.checkStack = true
		}
	}
	if len(lt.bridges) > 0 {
		if err := a.cfg.Bridges.RepairTask(lt.spec.ID); err != nil {
			a.log.Error("repair task bridge links", "task", lt.spec.Name(), "err", err)
			lt.checkStack = true
		}
	}
}
