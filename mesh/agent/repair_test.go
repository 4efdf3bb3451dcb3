package agent

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/kwatch"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/events"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/overlay"
)

// driftNode is a node running one task of www (on ovnet, published on
// 8888) after one reconcile.
func driftNodeEnv(t *testing.T) driftEnv {
	t.Helper()
	f := newFakeNode(t, lb.ModeIPTables)
	f.reconcile()
	if _, err := f.mgr.CreateNetwork(f.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(1),
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}, Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.reconcile() // the task's network is built: the task starts
	var lt *localTask
	for _, l := range f.agent.tasks {
		lt = l
	}
	// Its endpoints are announced by its supervisor, once it listens:
	// the balancers take it at the reconcile after that.
	testutil.Eventually(t, 5*time.Second, "the task announced", func() error {
		if lt == nil || !records.HasEndpoint(f.db, f.netID(api.IngressName), lt.spec.ID) {
			return fmt.Errorf("endpoints %v", records.Endpoints(f.db, records.AllNetworks))
		}
		return nil
	})
	f.reconcile()
	sb := f.agent.sboxes[f.netID("ovnet")]
	ingress := f.agent.sboxes[f.netID(api.IngressName)]
	if lt == nil || sb == nil || len(sb.vips) != 1 || ingress == nil {
		t.Fatalf("want a task, ingress_sbox and ovnet's sandbox with one VIP; tasks %v, sandboxes %v", f.agent.tasks, f.agent.sboxes)
	}
	return driftEnv{f: f, task: lt, lb: sb, ingress: ingress}
}

func linkOf(t *testing.T, k overlay.Kernel, ns, name string) *overlay.Link {
	t.Helper()
	links, err := k.ListLinks(ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name == name {
			return &l
		}
	}
	return nil
}

// flushNat empties every chain of ours in the nat table of r, as
// "iptables -t nat -F CHAIN" for each would.
func flushNat(t *testing.T, r *lb.FakeRules) {
	t.Helper()
	save, err := r.Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("*nat\n")
	inNat := false
	for _, line := range strings.Split(string(save), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			inNat = line == "*nat"
		case inNat && strings.HasPrefix(line, ":MESH-"):
			b.WriteString(strings.Fields(line)[0] + " - [0:0]\n")
		}
	}
	b.WriteString("COMMIT\n")
	if err := r.Apply(context.Background(), []byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

func saved(t *testing.T, r *lb.FakeRules) string {
	t.Helper()
	out, err := r.Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// driftEnv is what a drift case breaks.
type driftEnv struct {
	f       *fakeNode
	task    *localTask
	lb      *lbSandbox // ovnet's
	ingress *lbSandbox
}

// TestDriftRepairedOnNotice breaks, by hand, what the agent built in each
// kind of namespace, and checks that a reconcile without a report from
// the kernel does not look (it trusts what it set: that is the cheap
// path), and that the next reconcile after the report repairs it.
func TestDriftRepairedOnNotice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ns      func(e driftEnv) string
		kind    kwatch.Kind
		breakIt func(t *testing.T, e driftEnv)
		fixed   func(t *testing.T, e driftEnv) error
	}{{
		name: "VIP removed from an lb sandbox",
		ns:   func(e driftEnv) string { return e.lb.path },
		kind: kwatch.Stack,
		breakIt: func(t *testing.T, e driftEnv) {
			if err := e.f.kernel.DelAddr(e.lb.path, "eth0", netip.PrefixFrom(e.lb.vips[0], 32)); err != nil {
				t.Fatal(err)
			}
		},
		fixed: func(t *testing.T, e driftEnv) error {
			eth0 := linkOf(t, e.f.kernel, e.lb.path, "eth0")
			if eth0 == nil || !slices.Contains(eth0.Addrs, netip.PrefixFrom(e.lb.vips[0], 32)) {
				return fmt.Errorf("eth0 of %s: %+v, want %s/32 on it", e.lb.path, eth0, e.lb.vips[0])
			}
			return nil
		},
	}, {
		name: "task's overlay veth deleted",
		ns:   func(e driftEnv) string { return e.task.sandbox },
		kind: kwatch.Stack,
		breakIt: func(t *testing.T, e driftEnv) {
			if err := e.f.kernel.RemoveLink(e.task.sandbox, "eth0"); err != nil {
				t.Fatal(err)
			}
		},
		fixed: func(t *testing.T, e driftEnv) error {
			eth0 := linkOf(t, e.f.kernel, e.task.sandbox, "eth0")
			want := netip.MustParsePrefix(e.task.spec.Networks[0].Addr)
			if eth0 == nil || !slices.Contains(eth0.Addrs, want) {
				return fmt.Errorf("task eth0: %+v, want %s on it", eth0, want)
			}
			return nil
		},
	}, {
		name: "task's gateway veth deleted",
		ns:   func(e driftEnv) string { return e.task.sandbox },
		kind: kwatch.Stack,
		breakIt: func(t *testing.T, e driftEnv) {
			if err := e.f.kernel.RemoveLink("", e.task.gwVeth); err != nil {
				t.Fatal(err)
			}
		},
		fixed: func(t *testing.T, e driftEnv) error {
			if linkOf(t, e.f.kernel, "", e.task.gwVeth) == nil {
				return fmt.Errorf("no %s on mesh_gwbridge", e.task.gwVeth)
			}
			return nil
		},
	}, {
		name: "ingress sandbox's gateway veth deleted",
		ns:   func(e driftEnv) string { return e.ingress.path },
		kind: kwatch.Stack,
		breakIt: func(t *testing.T, e driftEnv) {
			if err := e.f.kernel.RemoveLink("", ingressGWVeth); err != nil {
				t.Fatal(err)
			}
		},
		fixed: func(t *testing.T, e driftEnv) error {
			if linkOf(t, e.f.kernel, e.ingress.path, "eth1") == nil {
				return fmt.Errorf("no eth1 in the ingress sandbox")
			}
			return nil
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := driftNodeEnv(t)
			before := e.f.kernel.Dump()
			tc.breakIt(t, e)
			e.f.agent.Reconcile(e.f.ctx)
			if tc.fixed(t, e) == nil {
				t.Fatal("repaired without a report from the kernel: the check is not the cheap one")
			}
			e.f.notify(tc.ns(e), tc.kind)
			e.f.agent.Reconcile(e.f.ctx)
			if err := tc.fixed(t, e); err != nil {
				t.Fatal(err)
			}
			if after := e.f.kernel.Dump(); after != before {
				t.Errorf("kernel after the repair differs from before the fault:\n--- before\n%s\n--- after\n%s", before, after)
			}
			if got := driftEvents(e.f, "rules"); len(got) != 0 {
				t.Errorf("rules drift events in %q, want none", got)
			}
			var wantLinks []string // a task's links repaired are an event
			if tc.ns(e) == e.task.sandbox {
				wantLinks = []string{filepath.Base(e.task.sandbox)}
			}
			if got := driftEvents(e.f, "links"); !slices.Equal(got, wantLinks) {
				t.Errorf("links drift events in %q, want %q", got, wantLinks)
			}
		})
	}
}

// driftEvents returns the namespaces of the drift events of one kind the
// agent recorded.
func driftEvents(f *fakeNode, kind string) []string {
	var out []string
	for _, e := range f.events.Events(events.Query{Types: []string{events.TypeDrift}}) {
		if e.Attributes["kind"] == kind {
			out = append(out, e.Attributes["netns"])
		}
	}
	return out
}

// TestRulesRepairedOnNotice flushes the nat chains of the host and of the
// ingress sandbox and checks they are rebuilt, exactly, on the report.
func TestRulesRepairedOnNotice(t *testing.T) {
	for _, which := range []string{"host", "ingress_sbox", "task"} {
		t.Run(which, func(t *testing.T) {
			e := driftNodeEnv(t)
			ns := map[string]string{"host": "", "ingress_sbox": e.ingress.path, "task": e.task.sandbox}[which]
			r := e.f.rules[ns]
			before := saved(t, r)
			flushNat(t, r)
			if saved(t, r) == before {
				t.Fatalf("flushing changed nothing:\n%s", before)
			}
			e.f.notify(ns, kwatch.Rules)
			e.f.agent.Reconcile(e.f.ctx)
			if after := saved(t, r); after != before {
				t.Errorf("rules not rebuilt:\n--- before\n%s\n--- after\n%s", before, after)
			}
			wantNS := map[string]string{"host": "host", "ingress_sbox": "ingress_sbox", "task": filepath.Base(e.task.sandbox)}[which]
			if got := driftEvents(e.f, "rules"); !slices.Equal(got, []string{wantNS}) {
				t.Errorf("rules drift events in namespaces %q, want [%q]", got, wantNS)
			}
		})
	}
}

// TestNamespacesWatched checks the agent watches the namespaces it builds
// and lets go of them with what is in them.
func TestNamespacesWatched(t *testing.T) {
	e := driftNodeEnv(t)
	for _, ns := range []string{"", e.lb.path, e.ingress.path, e.task.sandbox, e.f.agent.ov.NamespacePath(e.lb.netID)} {
		if !e.f.watched[ns] {
			t.Errorf("%q not watched; watched: %v", ns, e.f.watched)
		}
	}
	if err := e.f.mgr.RemoveService(e.f.ctx, "www"); err != nil {
		t.Fatal(err)
	}
	e.f.clock = e.f.clock.Add(time.Hour) // past any drain
	e.f.reconcile()
	e.f.reconcile()
	for _, ns := range []string{e.lb.path, e.task.sandbox} {
		if e.f.watched[ns] {
			t.Errorf("%q still watched after service rm", ns)
		}
	}
}

// TestReachable: another node's endpoint is a backend only once its peer
// entry is programmed here; this node's own, and endpoints on networks
// not built here, are kept.
func TestReachable(t *testing.T) {
	ip := netip.MustParseAddr
	ep := func(netID, owner, addr string) records.EndpointEntry {
		return records.EndpointEntry{Network: netID, Owner: owner, TaskID: owner + addr, Endpoint: records.Endpoint{IP: ip(addr)}}
	}
	eps := []records.EndpointEntry{
		ep("ov", "node2", "10.0.0.5"), // peer programmed
		ep("ov", "node2", "10.0.0.6"), // peer not yet here
		ep("ov", "node1", "10.0.0.7"), // this node's own
		ep("other", "node2", "10.1.0.5"),
	}
	got := reachable(eps, map[string]map[netip.Addr]bool{"ov": {ip("10.0.0.5"): true}}, "node1")
	var addrs []string
	for _, e := range got {
		addrs = append(addrs, e.IP.String())
	}
	if want := []string{"10.0.0.5", "10.0.0.7", "10.1.0.5"}; !slices.Equal(addrs, want) {
		t.Errorf("reachable endpoints %v, want %v", addrs, want)
	}
}
