package agent

import (
	"context"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/overlay"
)

// meshctl check: the reconcile pass as a dry run. Check computes what
// this node must have with the same pure functions Reconcile uses
// (neededNetworks, sandboxModel, hostRules, taskRules, the peers of the
// tables) and hands it to the same diffs the syncers repair with
// (overlay.CheckPeers, the lb syncers' Check), which report instead of
// applying. Nothing here is a second model of the desired state.

// Check compares this node's desired state with its kernel and returns
// the differences, by namespace, and whether PauseRepair paused the
// agent. It runs in the agent's goroutine, between two reconciles, so it
// sees the agent's own state (fwmarks, task links, DNS ports) as it
// stands; ctx bounds the wait for that turn.
func (a *Agent) Check(ctx context.Context) ([]api.CheckDiff, bool, error) {
	var diffs []api.CheckDiff
	var paused bool
	// Read only once f has run: after a timeout it may still write them.
	if err := a.inLoop(ctx, func() { diffs, paused = a.check(ctx), a.paused }); err != nil {
		return nil, false, err
	}
	return diffs, paused, nil
}

// PauseRepair pauses or resumes the agent's reconciling. Paused, Run
// makes no reconcile pass and no IPVS verification, so nothing the agent
// built is repaired, and nothing new is built, until it is resumed; Check
// still answers. It is a test hook, for tests that break the kernel on
// purpose and look at the result (meshctl check, trace): the daemon
// offers it only when started with --test-hooks. It returns once the
// agent has taken the change, so no reconcile runs after a pause returns.
func (a *Agent) PauseRepair(ctx context.Context, paused bool) error {
	return a.inLoop(ctx, func() {
		if paused != a.paused {
			a.log.Warn("reconcile paused by a test hook", "paused", paused)
		}
		a.paused = paused
		if !paused {
			a.poke()
		}
	})
}

// inLoop runs f in Run's goroutine and waits until it has run, or until
// ctx ends (f then still runs, later; it must only write what the caller
// no longer reads, hence the result channel).
func (a *Agent) inLoop(ctx context.Context, f func()) error {
	done := make(chan struct{}, 1)
	select {
	case a.calls <- func() { f(); done <- struct{}{} }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checker collects a check's differences.
type checker struct {
	diffs []api.CheckDiff
	seen  map[string]bool // namespaces expected, by name
}

func (c *checker) add(ns string, d api.CheckDiff) {
	d.Netns = ns
	c.diffs = append(c.diffs, d)
}

func (c *checker) failed(ns, what string, err error) {
	c.add(ns, api.CheckDiff{Kind: api.DiffError, State: "failed", Object: what + ": " + err.Error()})
}

func (c *checker) lb(ns string, diffs []lb.Diff, err error, what string) {
	if err != nil {
		c.failed(ns, what, err)
	}
	for _, d := range diffs {
		c.add(ns, api.CheckDiff{Kind: d.Kind, State: d.State, Object: d.Object, Where: d.Where, Have: d.Have})
	}
}

// check is Check's body: in Run's goroutine, touching no kernel state.
func (a *Agent) check(ctx context.Context) []api.CheckDiff {
	c := &checker{seen: map[string]bool{}}
	names, err := a.cfg.Kernel.ListNS(a.nsDir)
	if err != nil {
		c.failed("host", "list namespaces", err)
		return c.diffs
	}
	present := map[string]bool{}
	for _, n := range names {
		present[n] = true
	}
	// expect says whether namespace path should be and is there.
	expect := func(path string) bool {
		name := filepath.Base(path)
		c.seen[name] = true
		if !present[name] {
			c.add(name, api.CheckDiff{Kind: api.DiffNetns, State: lb.Missing, Object: name, Where: path})
			return false
		}
		return true
	}
	st := a.desired.Current()
	desired := tasksOf(st, a.cfg.NodeID)
	needed := neededNetworks(st, desired, a.runningSpecs(), a.nets)
	peered := a.checkPeers(c, needed, expect)
	eps := reachable(records.Endpoints(a.cfg.DB, records.AllNetworks), peered, a.cfg.NodeID)
	a.checkSandboxes(ctx, c, st, needed, eps, expect)
	local, gw := a.localTasks()
	diffs, err := a.host.Check(ctx, hostRules(st, a.ingressGW, a.cfg.GatewaySubnet, local, gw))
	c.lb("host", diffs, err, "host rules")
	a.checkTasks(ctx, c, st, desired, needed, expect)
	// Only the namespaces the agent names are its own: a task's and a
	// container's are both a short ID, and the containers outside the
	// swarm are the container engine's.
	for _, n := range names {
		mine := strings.HasPrefix(n, "1-") || strings.HasPrefix(n, lbSandboxPrefix) || n == ingressSandbox
		if mine && !c.seen[n] {
			c.add(n, api.CheckDiff{Kind: api.DiffNetns, State: lb.Extra, Object: n, Where: filepath.Join(a.nsDir, n)})
		}
	}
	slices.SortStableFunc(c.diffs, func(x, y api.CheckDiff) int { return strings.Compare(x.Netns, y.Netns) })
	return c.diffs
}

// checkPeers checks each needed network's namespace and its vxlan0
// entries, and returns the remote addresses the tables give for each, as
// Reconcile's peered.
func (a *Agent) checkPeers(c *checker, needed map[string]api.Network, expect func(string) bool) map[string]map[netip.Addr]bool {
	peered := map[string]map[netip.Addr]bool{}
	for _, n := range ingressFirst(needed) {
		peers, _ := records.RemotePeers(a.cfg.DB, n.ID, a.cfg.NodeID)
		peered[n.ID] = map[netip.Addr]bool{}
		for _, p := range peers {
			peered[n.ID][p.IP] = true
		}
		path := a.ov.NamespacePath(n.ID)
		if !expect(path) {
			continue
		}
		ns := filepath.Base(path)
		diffs, err := a.ov.CheckPeers(n.ID, overlayPeers(peers))
		if err != nil {
			c.failed(ns, "peers of "+n.Name, err)
		}
		for _, d := range diffs {
			where := "vxlan0"
			if d.Kind == api.DiffLink {
				where = ""
			}
			c.add(ns, api.CheckDiff{Kind: d.Kind, State: d.State, Object: d.Entry, Where: where, Have: d.Have})
		}
	}
	return peered
}

// checkSandboxes checks the load-balancing sandboxes: their VIPs, rules
// and IPVS tables, against the models Reconcile would sync. fwmarks come
// from a copy of the agent's, handed out in Reconcile's order, so a
// service not yet programmed gets the mark the next pass would give it.
func (a *Agent) checkSandboxes(ctx context.Context, c *checker, st records.Objects, needed map[string]api.Network, eps []records.EndpointEntry, expect func(string) bool) {
	marks := marks{next: a.marks.next, by: maps.Clone(a.marks.by)}
	for _, n := range ingressFirst(needed) {
		addr, err := netip.ParsePrefix(n.LBAddrs[a.cfg.NodeID])
		if err != nil {
			continue // no address here yet: no sandbox is due
		}
		sb := a.sboxes[n.ID]
		if sb == nil {
			sb = &lbSandbox{netID: n.ID, path: filepath.Join(a.nsDir, lbSandboxName(n)), addr: addr}
		}
		model := sandboxModel(st, n, addr.Addr(), eps, marks.For)
		if !expect(sb.path) {
			continue
		}
		ns := filepath.Base(sb.path)
		have, err := a.kernelVIPs(sb)
		if err != nil {
			c.failed(ns, "VIPs", err)
		}
		want := vips(model)
		for _, v := range want {
			if err == nil && !slices.Contains(have, v) {
				c.add(ns, api.CheckDiff{Kind: api.DiffVIP, State: lb.Missing, Object: v.String() + "/32", Where: sandboxIf})
			}
		}
		for _, v := range have {
			if !slices.Contains(want, v) {
				c.add(ns, api.CheckDiff{Kind: api.DiffVIP, State: lb.Extra, Object: v.String() + "/32", Where: sandboxIf})
			}
		}
		plane, done, err := a.planeOf(sb)
		if err != nil {
			c.failed(ns, "data plane", err)
			continue
		}
		diffs, err := plane.Check(ctx, model)
		done()
		c.lb(ns, diffs, err, "data plane")
	}
}

// planeOf is a sandbox's data plane: the agent's, or for a sandbox it has
// not built (paused) a new one, to be closed with done.
func (a *Agent) planeOf(sb *lbSandbox) (plane lb.DataPlane, done func(), err error) {
	if sb.plane != nil {
		return sb.plane, func() {}, nil
	}
	opts, err := a.cfg.planeOptions(sb.path)
	if err != nil {
		return nil, nil, err
	}
	p, err := lb.NewDataPlane(a.cfg.DataPlane, sb.path, opts...)
	if err != nil {
		return nil, nil, err
	}
	return p, func() { _ = p.Close() }, nil
}

// localTasks are the tasks running here and their addresses on
// mesh_gwbridge, as syncRules gives them to hostRules.
func (a *Agent) localTasks() (map[string]api.Task, map[string]netip.Addr) {
	local, gw := map[string]api.Task{}, map[string]netip.Addr{}
	for id, lt := range a.tasks {
		local[id] = lt.spec
		if lt.gwAddr.IsValid() {
			gw[id] = lt.gwAddr
		}
	}
	return local, gw
}

// checkTasks checks that every task due here has its sandbox, its links
// and its own rules. A desired task that Reconcile would start (its
// service and networks are here) and that has no sandbox is missing.
func (a *Agent) checkTasks(ctx context.Context, c *checker, st records.Objects, desired map[string]api.Task, needed map[string]api.Network, expect func(string) bool) {
	for id, t := range desired {
		if _, ok := st.Services[t.ServiceID]; (!ok && t.Standalone == nil) || !networksReady(t, needed) || t.IsAttachment() {
			continue
		}
		if _, ok := a.tasks[id]; !ok {
			expect(filepath.Join(a.nsDir, shortID(t)))
		}
	}
	// The engine containers' overlay links, in their namespaces.
	for _, id := range slices.Sorted(maps.Keys(a.attached)) {
		byNet := a.attached[id]
		for _, netID := range slices.Sorted(maps.Keys(byNet)) {
			l := byNet[netID]
			ns := filepath.Base(l.sandbox)
			links, err := a.cfg.Kernel.ListLinks(l.sandbox)
			if err != nil {
				c.failed(ns, "links", err)
				continue
			}
			if !slices.ContainsFunc(links, func(k overlay.Link) bool { return k.Name == l.ifName }) {
				c.add(ns, api.CheckDiff{Kind: api.DiffLink, State: lb.Missing, Object: l.ifName})
			}
		}
	}
	for _, lt := range a.tasks {
		if !expect(lt.sandbox) {
			continue
		}
		ns := filepath.Base(lt.sandbox)
		links, err := a.cfg.Kernel.ListLinks(lt.sandbox)
		if err != nil {
			c.failed(ns, "links", err)
		}
		want := slices.Collect(maps.Values(lt.ifNames))
		if lt.gwIf != "" {
			want = append(want, lt.gwIf)
		}
		slices.Sort(want)
		for _, name := range want {
			if err == nil && !slices.ContainsFunc(links, func(l overlay.Link) bool { return l.Name == name }) {
				c.add(ns, api.CheckDiff{Kind: api.DiffLink, State: lb.Missing, Object: name})
			}
		}
		if lt.rules != nil {
			diffs, err := lt.rules.Check(ctx, taskRules(st, lt.spec, lt.dnsPorts))
			c.lb(ns, diffs, err, "task rules")
		}
	}
}
