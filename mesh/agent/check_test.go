package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/kwatch"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// checkEnv is node1 running www.1 (ovnet, published 8888:80) with www.2
// on node2 announced: node1 has FDB entries towards node2, a VIP in
// lb_<ovnet>, the ingress rules and a task sandbox.
type checkEnv struct {
	f              *fakeNode
	local, remote  api.Task
	ingress, ovnet string // network IDs
}

func newCheckEnv(t *testing.T, mode lb.Mode) checkEnv {
	t.Helper()
	f := newFakeNode(t, mode)
	f.reconcile()
	if _, err := f.mgr.CreateNetwork(f.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2),
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}, Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	e := checkEnv{f: f, ingress: f.netID(api.IngressName), ovnet: f.netID("ovnet")}
	tasks := f.tasks("www")
	e.local, e.remote = tasks["node1id"], tasks["node2id"]
	f.reconcile()
	f.reconcile()
	// The task announces its endpoints one network after the other, in
	// no set order: wait for both, or the next reconcile may miss one.
	testutil.Eventually(t, 5*time.Second, "www.1 announced on ingress and ovnet", func() error {
		if !records.HasEndpoint(f.db, e.ingress, e.local.ID) || !records.HasEndpoint(f.db, e.ovnet, e.local.ID) {
			return fmt.Errorf("endpoints %v", records.Endpoints(f.db, records.AllNetworks))
		}
		return nil
	})
	f.announceRemote(e.remote)
	f.reconcile()
	return e
}

func (e checkEnv) nsPath(name string) string { return filepath.Join(e.f.runDir, "netns", name) }

// lines are a check's differences as "NETNS KIND STATE OBJECT (WHERE)".
func checkLines(diffs []api.CheckDiff) []string {
	var out []string
	for _, d := range diffs {
		s := strings.Join([]string{d.Netns, d.Kind, d.State, d.Object}, " ")
		if d.Where != "" {
			s += " (" + d.Where + ")"
		}
		if d.Have != "" {
			s += " have " + d.Have
		}
		out = append(out, s)
	}
	return out
}

// TestCheck breaks what the agent built, one thing at a time, and checks
// that the check names it (node, namespace, what), that it changes
// nothing, and that once the agent has reconciled, the check finds the
// node in step: what it reports is what the agent repairs.
func TestCheck(t *testing.T) {
	for _, mode := range []lb.Mode{lb.ModeIPTables, lb.ModeIPVS} {
		t.Run(string(mode), func(t *testing.T) { testCheck(t, mode) })
	}
}

func testCheck(t *testing.T, mode lb.Mode) {
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, e checkEnv) (notify string)
		want    func(e checkEnv) []string // the check's lines, in order
		stays   bool                      // the agent does not repair it
	}{{
		name:    "in step",
		breakIt: func(*testing.T, checkEnv) string { return "" },
		want:    func(checkEnv) []string { return nil },
	}, {
		name: "FDB entry of a remote backend deleted",
		breakIt: func(t *testing.T, e checkEnv) string {
			ns := e.nsPath("1-" + e.ingress[:10])
			if err := e.f.kernel.DelFDB(ns, "vxlan0", macOf(e.remote, e.ingress), node2Addr); err != nil {
				t.Fatal(err)
			}
			return ns
		},
		want: func(e checkEnv) []string {
			return []string{"1-" + e.ingress[:10] + " fdb missing " + macOf(e.remote, e.ingress).String() + " dst 192.168.33.11 (vxlan0)"}
		},
	}, {
		name: "VIP removed from the lb sandbox",
		breakIt: func(t *testing.T, e checkEnv) string {
			sb := e.f.agent.sboxes[e.ovnet]
			if err := e.f.kernel.DelAddr(sb.path, "eth0", netip.PrefixFrom(sb.vips[0], 32)); err != nil {
				t.Fatal(err)
			}
			return sb.path
		},
		want: func(e checkEnv) []string {
			return []string{"lb_" + e.ovnet[:9] + " vip missing " + e.f.agent.sboxes[e.ovnet].vips[0].String() + "/32 (eth0)"}
		},
	}, {
		name: "task's overlay veth deleted",
		breakIt: func(t *testing.T, e checkEnv) string {
			ns := e.f.agent.tasks[e.local.ID].sandbox
			if err := e.f.kernel.RemoveLink(ns, "eth0"); err != nil {
				t.Fatal(err)
			}
			return ns
		},
		want: func(e checkEnv) []string { return []string{shortID(e.local) + " link missing eth0"} },
	}, {
		name: "the SNAT rule deleted in ingress_sbox",
		breakIt: func(t *testing.T, e checkEnv) string {
			ns := e.f.agent.sboxes[e.ingress].path
			r := e.f.rulesOf(ns)
			rule := "-d 10.255.0.0/16 -m conntrack --ctstate DNAT -j SNAT --to-source 10.255.0.2"
			if mode == lb.ModeIPVS {
				rule = "-d 10.255.0.0/16 -m ipvs --ipvs -j SNAT --to-source 10.255.0.2"
			}
			if err := r.Apply(context.Background(), []byte("*nat\n-D MESH-SNAT "+rule+"\nCOMMIT\n")); err != nil {
				t.Fatal(err)
			}
			return ns
		},
		want: func(e checkEnv) []string {
			match := "-m conntrack --ctstate DNAT"
			if mode == lb.ModeIPVS {
				match = "-m ipvs --ipvs"
			}
			return []string{"ingress_sbox rule missing -A MESH-SNAT -d 10.255.0.0/16 " + match + " -j SNAT --to-source 10.255.0.2 (nat)"}
		},
	}, {
		// The iptables plane's flowtable deleted; the IPVS plane, which
		// has none, finds one an earlier run left.
		name: "the flowtable in ingress_sbox",
		breakIt: func(t *testing.T, e checkEnv) string {
			ns := e.f.agent.sboxes[e.ingress].path
			table := ""
			if mode == lb.ModeIPVS {
				table = "table inet meshd {\n}\n"
			}
			e.f.flowsOf(ns).SetTable(table)
			return ns
		},
		want: func(e checkEnv) []string {
			if mode == lb.ModeIPVS {
				return []string{"ingress_sbox flowtable extra table inet meshd (nftables)"}
			}
			return []string{"ingress_sbox flowtable missing table inet meshd (flowtable fastpath over eth0, eth1) (nftables)"}
		},
	}, {
		name: "a sandbox namespace deleted",
		breakIt: func(t *testing.T, e checkEnv) string {
			if err := e.f.kernel.RemoveNS(e.f.agent.sboxes[e.ovnet].path); err != nil {
				t.Fatal(err)
			}
			return e.f.agent.sboxes[e.ovnet].path
		},
		want: func(e checkEnv) []string {
			return []string{"lb_" + e.ovnet[:9] + " netns missing lb_" + e.ovnet[:9] + " (" + e.nsPath("lb_"+e.ovnet[:9]) + ")"}
		},
	}, {
		name: "a stray overlay namespace",
		breakIt: func(t *testing.T, e checkEnv) string {
			if err := e.f.kernel.EnsureNS(e.nsPath("1-0123456789")); err != nil {
				t.Fatal(err)
			}
			return ""
		},
		want: func(e checkEnv) []string {
			return []string{"1-0123456789 netns extra 1-0123456789 (" + e.nsPath("1-0123456789") + ")"}
		},
		stays: true, // swept at the next start, as the agent sweeps
	}, {
		name: "a service the agent has not programmed yet",
		breakIt: func(t *testing.T, e checkEnv) string {
			if _, err := e.f.mgr.CreateService(e.f.ctx, api.ServiceCreate{Name: "api", Image: "whoami", Replicas: replicas(1),
				Networks: []api.NetworkAttachment{{Target: "ovnet"}}}); err != nil {
				t.Fatal(err)
			}
			e.f.publish()
			return ""
		},
		want: func(e checkEnv) []string {
			var vip string
			for _, s := range e.f.mgr.Objects().Services {
				if s.Name == "api" {
					vip = strings.TrimSuffix(s.Endpoint.VirtualIPs[0].Addr, "/24")
				}
			}
			lbNS := "lb_" + e.ovnet[:9] + " "
			out := []string{lbNS + "vip missing " + vip + "/32 (eth0)"}
			if mode == lb.ModeIPVS {
				// IPVS rejects a service without backends itself.
				out = append(out, lbNS+"rule missing -A MESH-INPUT -d "+vip+"/32 -m comment --comment api -j MARK --set-xmark 0x102/0xffffffff (mangle)",
					lbNS+"ipvs missing FWM 258 rr (ipvs)")
			} else {
				out = append(out, lbNS+"chain missing MESH-REJECT (filter)",
					lbNS+"rule missing -A MESH-REJECT -m mark --mark 0x102 -m conntrack ! --ctstate DNAT -m comment --comment api -j REJECT --reject-with icmp-port-unreachable (filter)",
					lbNS+"rule missing -A MESH-OUTPUT -d "+vip+"/32 -m comment --comment api -j MARK --set-xmark 0x102/0xffffffff (mangle)",
					lbNS+"rule missing -A MESH-PREROUTING -d "+vip+"/32 -m comment --comment api -j MARK --set-xmark 0x102/0xffffffff (mangle)",
					lbNS+"rule missing -A INPUT -j MESH-REJECT (filter)",
					lbNS+"rule missing -A OUTPUT -j MESH-REJECT (filter)")
			}
			// Its task, if it is this node's, has no sandbox yet.
			if t, ok := e.f.tasks("api")["node1id"]; ok {
				out = append([]string{shortID(t) + " netns missing " + shortID(t) + " (" + e.nsPath(shortID(t)) + ")"}, out...)
			}
			return out
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCheckEnv(t, mode)
			before := e.f.kernel.Dump()
			ns := tc.breakIt(t, e)
			broken := e.f.kernel.Dump()
			got := checkLines(e.f.agent.check(e.f.ctx))
			if diff := cmp.Diff(tc.want(e), got); diff != "" {
				t.Errorf("check (-want +got):\n%s", diff)
			}
			if after := e.f.kernel.Dump(); after != broken {
				t.Errorf("the check changed the kernel:\n%s\nwant\n%s", after, broken)
			}
			if tc.stays {
				return
			}
			if ns != "" {
				e.f.notify(ns, kwatch.Stack)
				e.f.notify(ns, kwatch.Rules)
			}
			// A new task announces itself once its process listens: a
			// few passes.
			testutil.Eventually(t, 5*time.Second, "in step after a reconcile", func() error {
				e.f.reconcile()
				if got := checkLines(e.f.agent.check(e.f.ctx)); len(got) > 0 {
					return fmt.Errorf("the check still finds:\n%s", strings.Join(got, "\n"))
				}
				return nil
			})
			if tc.name != "a service the agent has not programmed yet" && e.f.kernel.Dump() != before {
				t.Errorf("repaired to another state:\n%s\nwant\n%s", e.f.kernel.Dump(), before)
			}
		})
	}
}

// TestPauseRepair: a paused agent leaves a change by hand in place for
// the check to see, and repairs it once resumed.
func TestPauseRepair(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.agent.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	f.publish()
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2),
		Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	f.publish()
	remote, ingress := f.tasks("www")["node2id"], f.netID(api.IngressName)
	f.announceRemote(remote)
	check := func() ([]string, bool, error) {
		wait, stop := context.WithTimeout(ctx, 5*time.Second)
		defer stop()
		diffs, paused, err := f.agent.Check(wait)
		return checkLines(diffs), paused, err
	}
	pause := func(paused bool) {
		wait, stop := context.WithTimeout(ctx, 5*time.Second)
		defer stop()
		if err := f.agent.PauseRepair(wait, paused); err != nil {
			t.Fatal(err)
		}
	}
	inStep := func(what string) {
		testutil.Eventually(t, 5*time.Second, what, func() error {
			got, paused, err := check()
			if err != nil || len(got) > 0 || paused {
				return fmt.Errorf("got %q, paused %v, %v", got, paused, err)
			}
			return nil
		})
	}
	// The local task's endpoint comes when its process listens: until
	// then the sandbox is in step without it, and a pause would catch it
	// arriving.
	local := f.tasks("www")["node1id"]
	testutil.Eventually(t, 5*time.Second, "www's local task announced", func() error {
		if !records.HasEndpoint(f.db, ingress, local.ID) {
			return errors.New("not yet")
		}
		return nil
	})
	inStep("in step")

	pause(true)
	ns := filepath.Join(f.runDir, "netns", "1-"+ingress[:10])
	mac := macOf(remote, ingress)
	if err := f.kernel.DelFDB(ns, "vxlan0", mac, node2Addr); err != nil {
		t.Fatal(err)
	}
	f.notify(ns, kwatch.Stack)
	f.publish() // a table change wakes the agent too
	want := []string{"1-" + ingress[:10] + " fdb missing " + mac.String() + " dst 192.168.33.11 (vxlan0)"}
	if got, paused, err := check(); err != nil || !slices.Equal(got, want) || !paused {
		t.Errorf("paused: got %q, paused %v, %v; want %q, paused", got, paused, err, want)
	}
	pause(false)
	inStep("repaired once resumed")
}
