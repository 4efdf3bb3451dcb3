package lb

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCheckAfterSync: whatever a sync makes, a check of the same model
// finds in step, on every golden scenario and both data planes, and a
// check writes nothing.
func TestCheckAfterSync(t *testing.T) {
	ctx := context.Background()
	for _, sc := range scenarios {
		for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
			t.Run(sc.name+"/"+string(mode), func(t *testing.T) {
				for _, sb := range []Sandbox{sc.world.ingress, sc.world.lb} {
					p, rules, _, _ := newFakePlane(t, mode)
					mustSync(t, p, sb)
					n := len(rules.Payloads())
					if got, err := p.Check(ctx, sb); err != nil || len(got) > 0 {
						t.Errorf("%s sandbox: got %+v, %v, want no difference", sb.Kind, got, err)
					}
					if len(rules.Payloads()) != n {
						t.Errorf("%s sandbox: the check wrote rules", sb.Kind)
					}
				}
				h := NewHostSyncer(NewFakeRules(), WithConntrack(NewFakeConntrack()))
				if err := h.Sync(ctx, sc.world.host); err != nil {
					t.Fatal(err)
				}
				if got, err := h.Check(ctx, sc.world.host); err != nil || len(got) > 0 {
					t.Errorf("host: got %+v, %v, want no difference", got, err)
				}
				ts := NewTaskSyncer(NewFakeRules())
				if err := ts.Sync(ctx, sc.world.task); err != nil {
					t.Fatal(err)
				}
				if got, err := ts.Check(ctx, sc.world.task); err != nil || len(got) > 0 {
					t.Errorf("task: got %+v, %v, want no difference", got, err)
				}
			})
		}
	}
}

// TestCheckHostDrift: each change by hand to the host's rules, and what
// the check names.
func TestCheckHostDrift(t *testing.T) {
	ctx := context.Background()
	want := worldOne.host
	tests := []struct {
		name    string
		payload string // applied by hand after the sync
		want    []Diff
	}{
		{
			name:    "nat MESH-INGRESS flushed",
			payload: "*nat\n:MESH-INGRESS - [0:0]\nCOMMIT\n",
			want: []Diff{{Kind: "rule", State: Missing, Where: "nat",
				Object: "-A MESH-INGRESS -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.18.0.2:8888"}},
		},
		{
			name:    "a jump deleted",
			payload: "*nat\n-D POSTROUTING -j MESH-POSTROUTING\nCOMMIT\n",
			want:    []Diff{{Kind: "rule", State: Missing, Where: "nat", Object: "-A POSTROUTING -j MESH-POSTROUTING"}},
		},
		{
			name:    "a jump doubled",
			payload: "*filter\n-A FORWARD -j MESH-INGRESS\nCOMMIT\n",
			want:    []Diff{{Kind: "rule", State: Extra, Where: "filter", Object: "-A FORWARD -j MESH-INGRESS"}},
		},
		{
			name:    "a rule added to a chain of ours",
			payload: "*filter\n-A MESH-INGRESS -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n",
			want:    []Diff{{Kind: "rule", State: Extra, Where: "filter", Object: "-A MESH-INGRESS -p tcp -m tcp --dport 22 -j ACCEPT"}},
		},
		{
			name:    "a chain of ours removed",
			payload: "*nat\n-D POSTROUTING -j MESH-INGRESS-SNAT\n:MESH-INGRESS-SNAT - [0:0]\n-X MESH-INGRESS-SNAT\nCOMMIT\n",
			want: []Diff{
				{Kind: "chain", State: Missing, Where: "nat", Object: "MESH-INGRESS-SNAT"},
				{Kind: "rule", State: Missing, Where: "nat", Object: "-A MESH-INGRESS-SNAT -o mesh_gwbridge -m addrtype --src-type LOCAL -j MASQUERADE"},
				{Kind: "rule", State: Missing, Where: "nat", Object: "-A POSTROUTING -j MESH-INGRESS-SNAT"},
			},
		},
		{
			name:    "other chains are not ours to check",
			payload: "*nat\n:DOCKER - [0:0]\n-A DOCKER -j RETURN\n-A PREROUTING -j DOCKER\nCOMMIT\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules := NewFakeRules()
			h := NewHostSyncer(rules, WithConntrack(NewFakeConntrack()))
			if err := h.Sync(ctx, want); err != nil {
				t.Fatal(err)
			}
			if err := rules.Apply(ctx, []byte(tc.payload)); err != nil {
				t.Fatal(err)
			}
			got, err := h.Check(ctx, want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckSandbox: a sandbox that has not caught up with its model, and
// IPVS tables changed by hand.
func TestCheckSandbox(t *testing.T) {
	ctx := context.Background()
	vs := VirtualService{FWMark: 0x100, Scheduler: "rr"}
	scaled := wwwIngress
	scaled.Backends = backends("10.255.0.5", "10.255.0.6", "10.255.0.9")
	tests := []struct {
		name    string
		mode    Mode
		breakIt func(v *FakeIPVS) error
		model   Sandbox // checked against; the sync was of worldOne's ingress
		want    []string
	}{
		{name: "iptables: a backend more in the model", mode: ModeIPTables, model: ingressSandbox(scaled),
			want: []string{
				"rule missing -A MESH-SVC-T3B7FZFQ -j DNAT --to-destination 10.255.0.9 (nat)",
				"rule missing -A MESH-SVC-T3B7FZFQ -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.255.0.6 (nat)",
				"rule missing -A MESH-SVC-T3B7FZFQ -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 10.255.0.5 (nat)",
				"rule extra -A MESH-SVC-T3B7FZFQ -j DNAT --to-destination 10.255.0.6 (nat)",
				"rule extra -A MESH-SVC-T3B7FZFQ -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.255.0.5 (nat)",
			}},
		{name: "ipvs: a backend more in the model", mode: ModeIPVS, model: ingressSandbox(scaled),
			want: []string{"backend missing FWM 256 -> 10.255.0.9 weight 1 (ipvs)"}},
		{name: "ipvs: a destination removed", mode: ModeIPVS, model: ingressSandbox(wwwIngress),
			breakIt: func(v *FakeIPVS) error { return v.RemoveDestination(vs, Destination{Addr: addr("10.255.0.5")}) },
			want:    []string{"backend missing FWM 256 -> 10.255.0.5 weight 1 (ipvs)"}},
		{name: "ipvs: a weight changed", mode: ModeIPVS, model: ingressSandbox(wwwIngress),
			breakIt: func(v *FakeIPVS) error {
				return v.EnsureDestination(vs, Destination{Addr: addr("10.255.0.6"), Weight: 0})
			},
			want: []string{"backend differs FWM 256 -> 10.255.0.6 weight 1 (ipvs) have FWM 256 -> 10.255.0.6 weight 0"}},
		{name: "ipvs: the service removed", mode: ModeIPVS, model: ingressSandbox(wwwIngress),
			breakIt: func(v *FakeIPVS) error { return v.RemoveService(vs) },
			want: []string{"ipvs missing FWM 256 rr (ipvs)", "backend missing FWM 256 -> 10.255.0.5 weight 1 (ipvs)",
				"backend missing FWM 256 -> 10.255.0.6 weight 1 (ipvs)"}},
		{name: "ipvs: a service added by hand", mode: ModeIPVS, model: ingressSandbox(wwwIngress),
			breakIt: func(v *FakeIPVS) error {
				o := VirtualService{FWMark: 999, Scheduler: "wlc"}
				return errors.Join(v.EnsureService(o), v.EnsureDestination(o, Destination{Addr: addr("10.255.0.99"), Port: 80, Weight: 1}))
			},
			want: []string{"ipvs extra FWM 999 wlc (ipvs)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, ipvs, _ := newFakePlane(t, tc.mode)
			mustSync(t, p, worldOne.ingress)
			if tc.breakIt != nil {
				if err := tc.breakIt(ipvs); err != nil {
					t.Fatal(err)
				}
			}
			diffs, err := p.Check(ctx, tc.model)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range diffs {
				s := d.Kind + " " + d.State + " " + d.Object + " (" + d.Where + ")"
				if d.Have != "" {
					s += " have " + d.Have
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
			// The sync repairs exactly that.
			mustSync(t, p, tc.model)
			p.Recheck()
			mustSync(t, p, tc.model)
			if got, err := p.Check(ctx, tc.model); err != nil || len(got) > 0 {
				t.Errorf("after a sync: got %+v, %v, want no difference", got, err)
			}
		})
	}
}

// TestCheckSandboxSets: a large sandbox keeps its marks in ipsets; a
// member deleted or changed by hand, or a set destroyed, is named by the
// check and put back by the next sync that reads the kernel.
func TestCheckSandboxSets(t *testing.T) {
	withBucketThreshold(t, 1)
	ctx := context.Background()
	sb := worldTwo.ingress
	tests := []struct {
		name    string
		payload string
		want    []string
	}{
		{name: "a member deleted",
			payload: "*ipset\n-D MESH-PREROUTING-TCP 8888 comment \"www\" skbmark 0x100\nCOMMIT\n",
			want:    []string{`member missing MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x100 (ipset)`}},
		{name: "a member's mark changed",
			payload: "*ipset\n-D MESH-PREROUTING-TCP 8888 comment \"www\" skbmark 0x100\n-A MESH-PREROUTING-TCP 8888 comment \"www\" skbmark 0x102\nCOMMIT\n",
			want: []string{`member missing MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x100 (ipset)`,
				`member extra MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x102 (ipset)`}},
		{name: "a set flushed",
			payload: "*ipset\n:MESH-OUTPUT-VIP - [0:0]\nCOMMIT\n",
			want: []string{`member missing MESH-OUTPUT-VIP 10.255.0.4 comment "www" skbmark 0x100 (ipset)`,
				`member missing MESH-OUTPUT-VIP 10.255.0.7 comment "api" skbmark 0x102 (ipset)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, rules, _, _ := newFakePlane(t, ModeIPTables)
			mustSync(t, p, sb)
			if err := rules.Apply(ctx, []byte(tc.payload)); err != nil {
				t.Fatal(err)
			}
			diffs, err := p.Check(ctx, sb)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range diffs {
				got = append(got, d.Kind+" "+d.State+" "+d.Object+" ("+d.Where+")")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
			p.Recheck()
			mustSync(t, p, sb)
			if got, err := p.Check(ctx, sb); err != nil || len(got) > 0 {
				t.Errorf("after a sync: got %+v, %v, want no difference", got, err)
			}
		})
	}
}

// TestRestartKeepsSets: a new syncer over a namespace that already holds
// the sets (meshd restarted) starts with a full resync; it mends the sets
// member by member instead of flushing them, which would leave new
// connections unmarked meanwhile.
func TestRestartKeepsSets(t *testing.T) {
	withBucketThreshold(t, 1)
	ctx := context.Background()
	p, rules, _, _ := newFakePlane(t, ModeIPTables)
	mustSync(t, p, worldTwo.ingress)
	// While meshd is down, a member is lost and one is changed.
	if err := rules.Apply(ctx, []byte("*ipset\n-D MESH-PREROUTING-VIP 10.255.0.7 comment \"api\" skbmark 0x102\n"+
		"-D MESH-PREROUTING-TCP 8888 comment \"www\" skbmark 0x100\n-A MESH-PREROUTING-TCP 8888 comment \"www\" skbmark 0x102\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	n := len(rules.Payloads())
	restarted, err := NewDataPlane(ModeIPTables, "", WithRules(rules), WithSysctls(&FakeSysctls{AnyKey: true}), WithConntrack(NewFakeConntrack()))
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, restarted, worldTwo.ingress)
	payload := strings.Join(rules.Payloads()[n:], "")
	if strings.Contains(payload, ":MESH-PREROUTING-TCP ") || strings.Contains(payload, ":MESH-PREROUTING-VIP ") {
		t.Errorf("the restart's full resync flushed a set:\n%s", payload)
	}
	for _, want := range []string{`-A MESH-PREROUTING-VIP 10.255.0.7 comment "api" skbmark 0x102`,
		`-D MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x102`, `-A MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x100`} {
		if !strings.Contains(payload, want+"\n") {
			t.Errorf("the restart's full resync lacks %q:\n%s", want, payload)
		}
	}
	if got, err := restarted.(*plane).Check(ctx, worldTwo.ingress); err != nil || len(got) > 0 {
		t.Errorf("after the restart: got %+v, %v, want no difference", got, err)
	}
}
