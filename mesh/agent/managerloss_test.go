package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/miekg/dns"
)

// The data plane never depends on the manager: these tests take the
// manager's entries away, bring them back in pieces or changed, and
// restart the agent without them.

// managerTables are the tables the leader owns: the desired state and its
// head.
var managerTables = []string{records.TableCluster, records.TableNodes, records.TableNetworks, records.TableServices, records.TableTasks}

// newServingNode is a node serving www (replicas tasks over node1 and
// node2, on ovnet, publishing 8888:80) on the IPVS data plane, with an
// hour's drain delay on the test's clock, every task running and
// announced.
func newServingNode(t *testing.T, replicas int) *fakeNode {
	t.Helper()
	f := newFakeNode(t, lb.ModeIPVS)
	f.agent.cfg.DrainDelay = time.Hour
	if _, err := f.mgr.CreateNetwork(f.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: &replicas,
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}, Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	for _, task := range f.mgr.Objects().Tasks {
		if task.NodeID == "node2id" {
			f.announceRemote(task)
		}
	}
	f.waitServing()
	f.agent.Reconcile(f.ctx) // the remote backends
	return f
}

// localTasks are the manager's tasks on this node, by ID.
func (f *fakeNode) localTasks() map[string]api.Task {
	out := map[string]api.Task{}
	for id, task := range f.mgr.Objects().Tasks {
		if task.NodeID == "node1id" {
			out[id] = task
		}
	}
	return out
}

// waitServing waits until every task the agent runs is running and
// announced on each of its networks: the fake process reports from its
// own goroutine.
func (f *fakeNode) waitServing() {
	f.t.Helper()
	testutil.Eventually(f.t, 5*time.Second, "local tasks running and announced", func() error {
		if len(f.agent.tasks) == 0 {
			return fmt.Errorf("no task started")
		}
		for id, lt := range f.agent.tasks {
			if !slices.Contains(f.runner.Running(), id) {
				return fmt.Errorf("%s not running: %v", lt.spec.Name(), f.runner.Running())
			}
			for _, tn := range lt.spec.Networks {
				if !records.HasEndpoint(f.db, tn.NetworkID, id) {
					return fmt.Errorf("%s not announced on %s", lt.spec.Name(), tn.NetworkName)
				}
			}
		}
		return nil
	})
}

// dropManager takes the manager's entries away, as gossip does when it
// dies or restarts (dropOwner).
func (f *fakeNode) dropManager() {
	for _, table := range managerTables {
		for _, e := range f.db.List(table, "") {
			_ = f.db.Delete(table, "", e.Key)
		}
	}
}

// dataPlane is what the node serves, as text: the tasks and how often
// each was started, its namespaces, links and peers, the rules and IPVS
// table of every namespace, the VIPs on the sandboxes, the endpoint table,
// and what each local task's resolver answers for www.
func (f *fakeNode) dataPlane() string {
	f.t.Helper()
	var b strings.Builder
	b.WriteString(f.runner.Dump())
	f.mu.Lock()
	rules, ipvs := maps.Clone(f.rules), maps.Clone(f.ipvs)
	f.mu.Unlock()
	b.WriteString(f.kernel.Dump())
	for _, ns := range slices.Sorted(maps.Keys(rules)) {
		saved, err := rules[ns].Save(f.ctx)
		if err != nil {
			f.t.Fatal(err)
		}
		fmt.Fprintf(&b, "rules of %q:\n%s", ns, saved)
	}
	for _, ns := range slices.Sorted(maps.Keys(ipvs)) {
		fmt.Fprintf(&b, "ipvs of %q:\n%s", ns, ipvs[ns].Dump())
	}
	for _, id := range slices.Sorted(maps.Keys(f.agent.sboxes)) {
		fmt.Fprintf(&b, "sandbox %s: %v\n", filepath.Base(f.agent.sboxes[id].path), f.agent.sboxes[id].vips)
	}
	for _, e := range records.Endpoints(f.db, records.AllNetworks) {
		fmt.Fprintf(&b, "endpoint %s/%s: %s %s draining %v\n", e.Network, e.TaskID, e.Name, e.IP, e.Draining)
	}
	for _, id := range slices.Sorted(maps.Keys(f.agent.tasks)) {
		lt := f.agent.tasks[id]
		for _, name := range []string{"www.", "tasks.www."} {
			fmt.Fprintf(&b, "%s asks %s: %v\n", lt.spec.Name(), name, f.resolve(lt.sandbox, name))
		}
	}
	return b.String()
}

// resolve asks the resolver of a task's sandbox for name's A records.
func (f *fakeNode) resolve(sandbox, name string) []string {
	f.t.Helper()
	f.mu.Lock()
	addr := f.resolvers[sandbox]
	f.mu.Unlock()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := dns.Client{Net: "udp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		f.t.Fatalf("ask %s for %s: %v", addr, name, err)
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// weights lists the weight every sandbox's IPVS gives each address of
// task, as "sandbox addr=weight", sorted; an address in no table is
// missing from it.
func (f *fakeNode) weights(task api.Task) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for ns, v := range f.ipvs {
		svcs, _ := v.Services()
		for _, s := range svcs {
			dests, _ := v.Destinations(s)
			for _, d := range dests {
				for _, tn := range task.Networks {
					if d.Addr == api.AddrOf(tn.Addr) {
						out = append(out, fmt.Sprintf("%s %s=%d", filepath.Base(ns), d.Addr, d.Weight))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// endpointsOf lists a task's entries in the endpoint table with their
// draining flag.
func (f *fakeNode) endpointsOf(taskID string) []string {
	var out []string
	for _, e := range records.Endpoints(f.db, records.AllNetworks) {
		if e.TaskID == taskID {
			out = append(out, fmt.Sprintf("%s draining=%v", e.IP, e.Draining))
		}
	}
	return out
}

// wantWeights is what weights says of task when every sandbox gives its
// addresses weight.
func wantWeights(task api.Task, weight int) []string {
	var out []string
	for _, tn := range task.Networks {
		name := lbSandboxPrefix + tn.NetworkID[:lbSandboxIDLen]
		if tn.NetworkName == api.IngressName {
			name = ingressSandbox
		}
		out = append(out, fmt.Sprintf("%s %s=%d", name, api.AddrOf(tn.Addr), weight))
	}
	slices.Sort(out)
	return out
}

// (a) The manager's entries gone, the node serves on: the same tasks,
// rules, backends and names, at every pass, long after a drain would have
// ended.
func TestManagerGoneKeepsServing(t *testing.T) {
	f := newServingNode(t, 2)
	before := f.dataPlane()
	if info := f.agent.DesiredInfo(); !info.Fresh || info.Warning() != "" {
		t.Fatalf("desired info before: %+v, want fresh", info)
	}
	f.dropManager()
	for pass := range 3 {
		f.agent.Reconcile(f.ctx)
		if diff := cmp.Diff(before, f.dataPlane()); diff != "" {
			t.Fatalf("pass %d without the manager changed the data plane (-before +after):\n%s", pass, diff)
		}
		f.agent.gwChecked = false // a resync tick
		f.clock = f.clock.Add(time.Hour)
	}
	info := f.agent.DesiredInfo()
	if info.Fresh || info.Leader != "node1id" || info.Warning() != "manager unreachable: serving the last desired state" {
		t.Errorf("desired info without the manager: %+v, want the last state served, with the warning", info)
	}
}

// (b) A restarted manager republishes, and gossip brings the pieces in
// any order, the head among them: at no step is a task drained, stopped
// or restarted, nor a rule, backend or name changed.
func TestRepublishInPiecesChangesNothing(t *testing.T) {
	type piece struct{ table, key string }
	tests := []struct {
		name  string
		order func(head piece, entries []piece) []piece
	}{
		{name: "head first", order: func(h piece, es []piece) []piece { return append([]piece{h}, es...) }},
		{name: "head last", order: func(h piece, es []piece) []piece { return append(es, h) }},
		{name: "head midway, a task late", order: func(h piece, es []piece) []piece {
			// es ends with the tasks: hold the first task back until last.
			late := slices.IndexFunc(es, func(p piece) bool { return p.table == records.TableTasks })
			out := slices.Concat(es[:late/2], []piece{h}, es[late/2:late], es[late+1:])
			return append(out, es[late])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newServingNode(t, 2)
			before := f.dataPlane()
			f.dropManager()
			f.agent.Reconcile(f.ctx)

			// The manager restarted: a new publisher, in a store of its
			// own from which gossip brings one entry at a time.
			restarted := records.NewFakeDB("node1id")
			if err := records.NewPublisher().Publish(restarted, f.mgr.Objects(), f.version+1, ""); err != nil {
				t.Fatal(err)
			}
			var entries []piece
			for _, table := range managerTables[1:] {
				for _, e := range restarted.List(table, "") {
					entries = append(entries, piece{table, e.Key})
				}
			}
			pieces := tt.order(piece{records.TableCluster, records.HeadKey}, entries)
			if len(pieces) != len(entries)+1 {
				t.Fatalf("order gives %d pieces of %d", len(pieces), len(entries)+1)
			}
			for i, p := range pieces {
				e, _ := restarted.Get(p.table, "", p.key)
				if err := f.db.PutAs("node1id", p.table, "", p.key, e.Value); err != nil {
					t.Fatal(err)
				}
				f.agent.Reconcile(f.ctx)
				if diff := cmp.Diff(before, f.dataPlane()); diff != "" {
					t.Fatalf("after %s/%s (%d of %d) the data plane changed (-before +after):\n%s", p.table, p.key, i+1, len(pieces), diff)
				}
			}
			if info := f.agent.DesiredInfo(); !info.Fresh {
				t.Errorf("desired info after the republish: %+v, want fresh", info)
			}
		})
	}
}

// drainOne starts a new leader that republishes the state without one of
// the local tasks, and returns that task and a local task kept.
func (f *fakeNode) drainOne() (gone, kept api.Task, full records.Objects) {
	f.t.Helper()
	local := f.localTasks()
	if len(local) < 2 {
		f.t.Fatalf("%d local tasks, want 2 at least", len(local))
	}
	ids := slices.Sorted(maps.Keys(local))
	gone, kept = local[ids[0]], local[ids[1]]
	full = f.mgr.Objects()
	without := f.mgr.Objects()
	delete(without.Tasks, gone.ID)
	f.dropManager()
	f.agent.Reconcile(f.ctx)
	f.pub = records.NewPublisher() // the new leader
	f.publishObjects(without)
	f.agent.Reconcile(f.ctx)
	return gone, kept, full
}

// (c) A full republish without one task: that task drains (weight 0 on
// every node, no longer named) for the drain delay, then stops; the other
// tasks are not touched.
func TestRepublishWithoutATaskDrainsItThenStops(t *testing.T) {
	f := newServingNode(t, 4)
	gone, kept, full := f.drainOne()
	if got := f.weights(gone); !slices.Equal(got, wantWeights(gone, 0)) {
		t.Errorf("weights of the task gone: %v, want %v", got, wantWeights(gone, 0))
	}
	if got := f.endpointsOf(gone.ID); len(got) != 2 || !strings.Contains(strings.Join(got, " "), "draining=true") ||
		strings.Contains(strings.Join(got, " "), "draining=false") {
		t.Errorf("endpoints of the task gone: %v, want both draining", got)
	}
	if names := f.resolve(f.agent.tasks[kept.ID].sandbox, "tasks.www."); slices.Contains(names, api.AddrOf(gone.Networks[1].Addr).String()) {
		t.Errorf("tasks.www still names the draining task: %v", names)
	}
	if !slices.Contains(f.runner.Running(), gone.ID) {
		t.Errorf("the task gone stopped before its drain delay")
	}
	checkUntouched := func(when string) {
		t.Helper()
		for _, task := range full.Tasks {
			if task.ID == gone.ID {
				continue
			}
			if got := f.weights(task); !slices.Equal(got, wantWeights(task, 1)) {
				t.Errorf("%s: weights of %s: %v, want %v", when, task.Name(), got, wantWeights(task, 1))
			}
		}
		if !slices.Contains(f.runner.Running(), kept.ID) || f.runner.Starts(kept.ID) != 1 {
			t.Errorf("%s: the task kept: running %v, started %d times; want running, started once", when, f.runner.Running(), f.runner.Starts(kept.ID))
		}
	}
	checkUntouched("draining")

	f.clock = f.clock.Add(time.Hour)
	f.agent.Reconcile(f.ctx)
	if slices.Contains(f.runner.Running(), gone.ID) || f.agent.tasks[gone.ID] != nil {
		t.Errorf("the task gone still runs after its drain delay")
	}
	if got := f.weights(gone); len(got) != 0 {
		t.Errorf("the task gone is still a backend: %v", got)
	}
	if got := f.endpointsOf(gone.ID); len(got) != 0 {
		t.Errorf("the task gone is still announced: %v", got)
	}
	checkUntouched("after the drain")
}

// (d) A draining task that is desired again goes back to weight 1 on
// every node, is named again, and is not stopped when its drain would
// have ended.
func TestTaskDesiredAgainIsUndrained(t *testing.T) {
	f := newServingNode(t, 4)
	gone, kept, full := f.drainOne()
	if got := f.weights(gone); !slices.Equal(got, wantWeights(gone, 0)) {
		t.Fatalf("weights of the task gone: %v, want %v (draining)", got, wantWeights(gone, 0))
	}
	f.publishObjects(full)
	f.agent.Reconcile(f.ctx)
	check := func(when string) {
		t.Helper()
		if got := f.weights(gone); !slices.Equal(got, wantWeights(gone, 1)) {
			t.Errorf("%s: weights: %v, want %v", when, got, wantWeights(gone, 1))
		}
		if got := strings.Join(f.endpointsOf(gone.ID), " "); strings.Contains(got, "draining=true") || strings.Count(got, "draining=false") != 2 {
			t.Errorf("%s: endpoints %q, want both announced, not draining", when, got)
		}
		if names := f.resolve(f.agent.tasks[kept.ID].sandbox, "tasks.www."); !slices.Contains(names, api.AddrOf(gone.Networks[1].Addr).String()) {
			t.Errorf("%s: tasks.www does not name the task: %v", when, names)
		}
		if !slices.Contains(f.runner.Running(), gone.ID) || f.runner.Starts(gone.ID) != 1 {
			t.Errorf("%s: running %v, started %d times; want running, started once", when, f.runner.Running(), f.runner.Starts(gone.ID))
		}
	}
	check("desired again")
	f.clock = f.clock.Add(2 * time.Hour)
	f.agent.Reconcile(f.ctx)
	check("past the drain delay")
}

// (e) An agent that restarts while no manager is reachable starts the
// tasks of the state it last verified, with their VIPs, backends and
// names.
func TestRestartWithoutManagerServesThePersistedState(t *testing.T) {
	f := newServingNode(t, 2)
	local := f.tasks("www")["node1id"]
	vip := vipOn(f.mgr.Objects().Services[local.ServiceID], f.netID("ovnet"))
	f.agent.teardown() // meshd stops
	f.dropManager()    // and the manager goes: its entries with it

	f.agent = f.newAgent()
	f.agent.sweep()
	f.agent.Reconcile(f.ctx)
	f.waitServing()
	f.agent.Reconcile(f.ctx)
	if lt := f.agent.tasks[local.ID]; lt == nil || f.runner.Starts(local.ID) != 2 {
		t.Fatalf("after the restart: task %s started %d times, want twice", local.Name(), f.runner.Starts(local.ID))
	}
	if got := f.weights(local); !slices.Equal(got, wantWeights(local, 1)) {
		t.Errorf("weights: %v, want %v", got, wantWeights(local, 1))
	}
	if sb := f.agent.sboxes[f.netID("ovnet")]; sb == nil || !slices.Equal(sb.vips, []netip.Addr{vip}) {
		t.Errorf("ovnet's sandbox: %+v, want it holding %s", sb, vip)
	}
	if got := f.resolve(f.agent.tasks[local.ID].sandbox, "www."); !slices.Equal(got, []string{vip.String()}) {
		t.Errorf("www resolves to %v, want %s", got, vip)
	}
	_, out := lb.TracePacket(t, f.traceNet(lb.ModeIPVS), client, "tcp", node1Addr, 8888)
	if n := len(strings.Split(out, ", ")); n != 2 {
		t.Errorf("client to node1:8888 ends at %q, want both tasks", out)
	}
	if info := f.agent.DesiredInfo(); info.Fresh || info.Leader != "node1id" || info.Warning() == "" {
		t.Errorf("desired info: %+v, want the persisted state, not fresh", info)
	}
}

// (c') A drained task outlives its delay while a reachable node still
// reports it among its backends (that node would send new connections
// into a removed sandbox), for a bounded time. Unreachable nodes do not
// hold it.
func TestDrainWaitsForTheNodesThatStillSendToTheTask(t *testing.T) {
	cases := []struct {
		name    string
		node2   gossip.MemberState
		report  bool          // node2 still reports the task gone
		after   time.Duration // past the drain delay
		stopped bool
	}{
		{"every node applied the drain", gossip.StateAlive, false, time.Millisecond, true},
		{"node2 still sends to it", gossip.StateAlive, true, time.Millisecond, false},
		{"node2 suspect still counts", gossip.StateSuspect, true, maxDrainWait - time.Second, false},
		{"node2 dead is not waited for", gossip.StateDead, true, time.Millisecond, true},
		{"the wait is bounded", gossip.StateAlive, true, maxDrainWait, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newServingNode(t, 4)
			f.db.SetMembers(gossip.Member{Name: "node1id", State: gossip.StateAlive}, gossip.Member{Name: "node2id", State: c.node2})
			gone, _, _ := f.drainOne()
			ids := []string{}
			for id, task := range f.mgr.Objects().Tasks {
				if c.report || id != gone.ID {
					ids = append(ids, task.ID)
				}
			}
			b, _ := json.Marshal(ids)
			if err := f.db.PutAs("node2id", records.TableProgrammed, gone.ServiceID, "node2id", b); err != nil {
				t.Fatal(err)
			}
			f.clock = f.clock.Add(time.Hour) // the drain delay is over
			f.agent.Reconcile(f.ctx)
			f.clock = f.clock.Add(c.after)
			f.agent.Reconcile(f.ctx)
			if stopped := !slices.Contains(f.runner.Running(), gone.ID); stopped != c.stopped {
				t.Errorf("task gone stopped %v, want %v (running %v)", stopped, c.stopped, f.runner.Running())
			}
			if c.stopped {
				return
			}
			// node2 applies the drain: the task stops at the next pass.
			b, _ = json.Marshal(slices.DeleteFunc(ids, func(id string) bool { return id == gone.ID }))
			if err := f.db.PutAs("node2id", records.TableProgrammed, gone.ServiceID, "node2id", b); err != nil {
				t.Fatal(err)
			}
			f.agent.Reconcile(f.ctx)
			if slices.Contains(f.runner.Running(), gone.ID) {
				t.Errorf("task gone still runs once node2 reports it drained")
			}
		})
	}
}
