package lb

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
)

// The local bridge networks of the tests, as Docker numbers them:
//
//	mesh0 (the default "bridge")  172.17.0.0/16  web 172.17.0.2 (-p 8080:80), idle 172.17.0.3
//	dev      br-3f2a1b4c5d6e      172.19.0.0/16  api 172.19.0.2 (-P: 32768 → 5000)
//	prod     br-9c8d7e6f5a4b      172.20.0.0/16  shop 172.20.0.5 (-p 8443:443)
//	secret   br-5e4d3c2b1a09      172.21.0.0/16  --internal, vault 172.21.0.2
var (
	defaultNet = BridgeNetwork{Bridge: "mesh0", Subnet: netip.MustParsePrefix("172.17.0.0/16")}
	devNet     = BridgeNetwork{Bridge: "br-3f2a1b4c5d6e", Subnet: netip.MustParsePrefix("172.19.0.0/16")}
	prodNet    = BridgeNetwork{Bridge: "br-9c8d7e6f5a4b", Subnet: netip.MustParsePrefix("172.20.0.0/16")}
	secretNet  = BridgeNetwork{Bridge: "br-5e4d3c2b1a09", Subnet: netip.MustParsePrefix("172.21.0.0/16"), Internal: true}

	webPort  = BridgePort{Proto: "tcp", HostPort: 8080, Bridge: "mesh0", Dest: addr("172.17.0.2"), Port: 80}
	apiPort  = BridgePort{Proto: "tcp", HostPort: 32768, Bridge: devNet.Bridge, Dest: addr("172.19.0.2"), Port: 5000}
	shopPort = BridgePort{Proto: "tcp", HostPort: 8443, Bridge: prodNet.Bridge, Dest: addr("172.20.0.5"), Port: 443}
)

var (
	bridgeOne     = BridgeRules{Networks: []BridgeNetwork{defaultNet}}
	bridgeTwo     = BridgeRules{Networks: []BridgeNetwork{defaultNet, devNet}}
	bridgePublish = BridgeRules{Networks: []BridgeNetwork{defaultNet}, Ports: []BridgePort{webPort}}
	bridgeAll     = BridgeRules{Networks: []BridgeNetwork{defaultNet, devNet}, Ports: []BridgePort{apiPort}}
	bridgeThree   = BridgeRules{Networks: []BridgeNetwork{defaultNet, devNet, prodNet}, Ports: []BridgePort{webPort, apiPort, shopPort}}
)

// bridgeScenarios are the bridge goldens. Without before, the golden is
// RenderBridge's payload (what meshd writes into a fresh namespace);
// with it, the payload a BridgeSyncer writes for the change. doc says
// what the user did; it heads the golden as comments.
var bridgeScenarios = []struct {
	name   string
	doc    string
	before *BridgeRules
	rules  BridgeRules
}{
	{"bridge_one", "the default bridge network alone (mesh0, 172.17.0.0/16)", nil, bridgeOne},
	{"bridge_two", "meshctl network create dev (br-3f2a1b4c5d6e, 172.19.0.0/16) beside the default bridge:\n" +
		"each may go out, neither may reach the other", nil, bridgeTwo},
	{"bridge_internal", "meshctl network create --internal secret (br-5e4d3c2b1a09, 172.21.0.0/16), alone:\n" +
		"no masquerade, nothing in or out of its subnet", nil, BridgeRules{Networks: []BridgeNetwork{secretNet}}},
	{"bridge_publish", "meshctl run -d -p 8080:80 --name web whoami (172.17.0.2 on the default bridge)",
		nil, bridgePublish},
	{"bridge_publish_all", "meshctl run -d -P --network dev --name api <image exposing 5000> (172.19.0.2):\n" +
		"-P took the first ephemeral port, 32768", nil, bridgeAll},
	{"bridge_publish_ip", "meshctl run -d -p 127.0.0.1:8080:80 -p 5353:53/udp --name web <image> (172.17.0.2)", nil,
		BridgeRules{Networks: []BridgeNetwork{defaultNet}, Ports: []BridgePort{
			{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 8080, Bridge: "mesh0", Dest: addr("172.17.0.2"), Port: 80},
			{Proto: "udp", HostPort: 5353, Bridge: "mesh0", Dest: addr("172.17.0.2"), Port: 53}}}},
	{"bridge_rm", "after bridge_publish_all: meshctl rm -f api; meshctl network rm dev\n" +
		"(the change only: dev's rules go, the default bridge's stay untouched)", &bridgeAll, bridgeOne},
}

func TestBridgeGolden(t *testing.T) {
	for _, sc := range bridgeScenarios {
		t.Run(sc.name, func(t *testing.T) {
			rules := NewFakeRules()
			s := NewBridgeSyncer(rules, WithConntrack(NewFakeConntrack()))
			if sc.before != nil {
				mustSyncBridge(t, s, *sc.before)
			}
			mustSyncBridge(t, s, sc.rules)
			payload := lastPayload(rules)
			if sc.before == nil {
				var b bytes.Buffer
				if err := RenderBridge(&b, sc.rules); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(payload, b.String()); diff != "" {
					t.Errorf("RenderBridge differs from the first sync (-sync +render):\n%s", diff)
				}
				payload = b.String()
			}
			head := "# " + strings.ReplaceAll(sc.doc, "\n", "\n# ") + "\n"
			testutil.Golden(t, goldenPath(sc.name), head+payload)
		})
	}
}

func mustSyncBridge(t *testing.T, s *BridgeSyncer, b BridgeRules) {
	t.Helper()
	if err := s.Sync(context.Background(), b); err != nil {
		t.Fatalf("bridge sync: %v", err)
	}
}

// ownedBy is the part of s that o owns: its chains, and the rules of
// built-in chains that jump to them, in kernel order.
func ownedBy(s saved, o owner) saved {
	out := saved{}
	for table, chains := range s {
		for c, rules := range chains {
			var keep []string
			if isBuiltin(table, c) {
				for _, r := range rules {
					if o.owns(chainKey{table, jumpTarget(r)}) {
						keep = append(keep, r)
					}
				}
			} else if o.owns(chainKey{table, c}) {
				keep = append([]string{}, rules...)
			}
			if keep != nil {
				if out[table] == nil {
					out[table] = map[string][]string{}
				}
				out[table][c] = keep
			}
		}
	}
	return out
}

// freshBridge is what a new BridgeSyncer makes of b in an empty namespace.
func freshBridge(t *testing.T, b BridgeRules) saved {
	t.Helper()
	rules := NewFakeRules()
	mustSyncBridge(t, NewBridgeSyncer(rules, WithConntrack(NewFakeConntrack())), b)
	return sortedSets(rawState(t, rules))
}

// TestBridgeSyncerChangesOnlyItsNetwork: adding or removing a network or
// a port writes rules of that bridge only, never redeclares (flushes) a
// chain that stays, and ends where a fresh sync does.
func TestBridgeSyncerChangesOnlyItsNetwork(t *testing.T) {
	withShop := BridgeRules{Networks: append(slices.Clone(bridgeAll.Networks), prodNet), Ports: append(slices.Clone(bridgeAll.Ports), shopPort)}
	withSecret := BridgeRules{Networks: append(slices.Clone(bridgeAll.Networks), secretNet), Ports: bridgeAll.Ports}
	tests := []struct {
		name     string
		from, to BridgeRules
		bridge   string // every rule written names it
	}{
		{"add a network", bridgeOne, bridgeTwo, devNet.Bridge},
		{"add a network with a published port", bridgeAll, withShop, prodNet.Bridge},
		{"add an internal network", bridgeAll, withSecret, secretNet.Bridge},
		{"publish a port", bridgeTwo, bridgeAll, devNet.Bridge},
		{"stop publishing", bridgeAll, bridgeTwo, devNet.Bridge},
		{"remove a network", bridgeTwo, bridgeOne, devNet.Bridge},
		{"remove a network with a published port", withShop, bridgeAll, prodNet.Bridge},
		{"remove an internal network", withSecret, bridgeAll, secretNet.Bridge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := NewFakeRules()
			s := NewBridgeSyncer(rules, WithConntrack(NewFakeConntrack()))
			mustSyncBridge(t, s, tt.from)
			before := rawState(t, rules)
			mustSyncBridge(t, s, tt.to)
			payload := lastPayload(rules)
			if len(rules.Payloads()) != 2 {
				t.Fatalf("%d payloads, want 2", len(rules.Payloads()))
			}
			var table string
			created := map[chainKey]bool{}
			for _, line := range strings.Split(strings.TrimSpace(payload), "\n") {
				f := strings.Fields(line)
				switch {
				case strings.HasPrefix(line, "*"):
					table = line[1:]
				case line == "COMMIT":
				case strings.HasPrefix(line, ":"):
					k := chainKey{table, strings.TrimPrefix(f[0], ":")}
					if len(before[table][k.chain]) > 0 && !strings.Contains(payload, "-X "+k.chain+"\n") {
						t.Errorf("redeclares (flushes) %s/%s, which stays:\n%s", table, k.chain, payload)
					}
					created[k] = true
				case f[0] == "-A" || f[0] == "-D" && !isBuiltin(table, f[1]):
					if !slices.Contains(f, tt.bridge) {
						t.Errorf("writes a rule of another bridge: %q\n%s", line, payload)
					}
				case f[0] == "-I" || f[0] == "-D" || f[0] == "-X":
					// A jump or a chain that comes or goes with its first
					// or last rule.
					k := chainKey{table, f[1]}
					if f[0] != "-X" {
						k.chain = jumpTarget(line)
					}
					if !created[k] && hookJumps[k] == nil && k.chain != chainBridgeForward {
						t.Errorf("%q: not a chain this change creates or removes\n%s", line, payload)
					}
				default:
					t.Errorf("unexpected line %q", line)
				}
			}
			if diff := cmp.Diff(freshBridge(t, tt.to), sortedSets(rawState(t, rules))); diff != "" {
				t.Errorf("state differs from a fresh sync (-fresh +changed):\n%s", diff)
			}
		})
	}
}

func TestBridgeSyncerZeroRemovesEverything(t *testing.T) {
	rules := withForeignRules(t)
	before := saveText(t, rules)
	s := NewBridgeSyncer(rules, WithConntrack(NewFakeConntrack()))
	for _, b := range []BridgeRules{bridgeThree, {}} {
		mustSyncBridge(t, s, b)
	}
	if diff := cmp.Diff(before, saveText(t, rules)); diff != "" {
		t.Errorf("bridge rules left behind (-before +after):\n%s", diff)
	}
	// A restarted syncer (a new process) finds and removes them too.
	mustSyncBridge(t, s, bridgeThree)
	mustSyncBridge(t, NewBridgeSyncer(rules, WithConntrack(NewFakeConntrack())), BridgeRules{})
	if diff := cmp.Diff(before, saveText(t, rules)); diff != "" {
		t.Errorf("a new syncer left bridge rules behind (-before +after):\n%s", diff)
	}
}

// TestBridgeAndHostSyncersShareNamespace runs the agent's HostSyncer and a
// BridgeSyncer on one namespace, as meshd does, restarting either now and
// then (a new syncer's first sync is a full resync, which removes chains
// of its own that it does not want): each step leaves the other's chains
// and jumps exactly as they were, and its own as a fresh sync makes them.
func TestBridgeAndHostSyncersShareNamespace(t *testing.T) {
	rules := withForeignRules(t)
	original := saveText(t, rules)
	ct := WithConntrack(NewFakeConntrack())
	host, bridge := NewHostSyncer(rules, ct), NewBridgeSyncer(rules, ct)
	type step struct {
		name    string
		host    *HostRules
		bridge  *BridgeRules
		restart bool
	}
	hr := func(h HostRules) *HostRules { return &h }
	br := func(b BridgeRules) *BridgeRules { return &b }
	steps := []step{
		{name: "host", host: hr(worldTwo.host)},
		{name: "bridge, first (full) sync", bridge: br(bridgeThree)},
		{name: "host changes", host: hr(worldOne.host)},
		{name: "bridge changes", bridge: br(bridgeAll)},
		{name: "host restarts", host: hr(worldTwo.host), restart: true},
		{name: "bridge restarts", bridge: br(bridgeTwo), restart: true},
		{name: "host rechecks", host: hr(worldTwo.host)},
		{name: "bridge removes everything", bridge: br(BridgeRules{})},
		{name: "bridge comes back", bridge: br(bridgePublish)},
		{name: "host removes everything", host: hr(HostRules{})},
		{name: "host comes back", host: hr(worldOne.host), restart: true},
	}
	ctx := context.Background()
	for _, st := range steps {
		before := rawState(t, rules)
		var mine, theirs owner
		var fresh saved
		if st.host != nil {
			mine, theirs = hostOwner, bridgeOwner
			if st.restart {
				host = NewHostSyncer(rules, ct)
			}
			host.Recheck() // a full look at the kernel, every time
			if err := host.Sync(ctx, *st.host); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			f := NewFakeRules()
			if err := NewHostSyncer(f, ct).Sync(ctx, *st.host); err != nil {
				t.Fatal(err)
			}
			fresh = sortedSets(rawState(t, f))
		} else {
			mine, theirs = bridgeOwner, hostOwner
			if st.restart {
				bridge = NewBridgeSyncer(rules, ct)
			}
			bridge.Recheck()
			mustSyncBridge(t, bridge, *st.bridge)
			fresh = freshBridge(t, *st.bridge)
		}
		after := rawState(t, rules)
		if diff := cmp.Diff(ownedBy(before, theirs), ownedBy(after, theirs)); diff != "" {
			t.Errorf("%s: the other syncer's chains or jumps changed (-before +after):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(ownedBy(fresh, mine), sortedSets(ownedBy(after, mine))); diff != "" {
			t.Errorf("%s: own rules differ from a fresh sync (-fresh +shared):\n%s", st.name, diff)
		}
	}
	// Both gone: only the foreign rules are left.
	mustSyncBridge(t, bridge, BridgeRules{})
	if err := host.Sync(ctx, HostRules{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(original, saveText(t, rules)); diff != "" {
		t.Errorf("rules left behind (-original +now):\n%s", diff)
	}
}

// TestBridgeSyncerRepairsDrift: someone deletes a rule, a jump, or
// flushes a chain; after Recheck (the kernel said rules went) or when the
// periodic check comes, the next Sync puts back exactly what was there,
// isolation still before the accepts, and the agent's rules untouched.
func TestBridgeSyncerRepairsDrift(t *testing.T) {
	drifts := []struct{ name, payload string }{
		{"a rule deleted", "*filter\n-D MESH-BRIDGE-ACCEPT -i mesh0 -o mesh0 -j ACCEPT\nCOMMIT\n"},
		{"an isolation rule deleted", "*filter\n-D MESH-ISOLATION-STAGE-2 -o br-3f2a1b4c5d6e -j DROP\nCOMMIT\n"},
		{"a DNAT deleted", "*nat\n-D MESH-BRIDGE ! -i br-3f2a1b4c5d6e -p tcp -m tcp --dport 32768 -j DNAT --to-destination 172.19.0.2:5000\nCOMMIT\n"},
		{"the FORWARD jump deleted", "*filter\n-D FORWARD -j MESH-BRIDGE-FORWARD\nCOMMIT\n"},
		{"a nat jump deleted", "*nat\n-D OUTPUT -m addrtype --dst-type LOCAL -j MESH-BRIDGE\nCOMMIT\n"},
		{"a jump doubled", "*nat\n-I POSTROUTING 1 -j MESH-BRIDGE-POSTROUTING\nCOMMIT\n"},
		{"the ordered chain flushed", "*filter\n:MESH-BRIDGE-FORWARD - [0:0]\nCOMMIT\n"},
		{"the isolation jump deleted", "*filter\n-D MESH-BRIDGE-FORWARD -j MESH-ISOLATION-STAGE-1\nCOMMIT\n"},
		{"a firewall reload", "*filter\n-D FORWARD -j MESH-BRIDGE-FORWARD\n:MESH-BRIDGE-FORWARD - [0:0]\n:MESH-BRIDGE-ACCEPT - [0:0]\n" +
			":MESH-ISOLATION-STAGE-1 - [0:0]\n:MESH-ISOLATION-STAGE-2 - [0:0]\n:MESH-BRIDGE - [0:0]\n-X MESH-BRIDGE-FORWARD\n-X MESH-BRIDGE-ACCEPT\n" +
			"-X MESH-ISOLATION-STAGE-1\n-X MESH-ISOLATION-STAGE-2\n-X MESH-BRIDGE\nCOMMIT\n"},
	}
	ctx := context.Background()
	for _, d := range drifts {
		for _, how := range []string{"recheck", "periodic"} {
			t.Run(d.name+"/"+how, func(t *testing.T) {
				rules := NewFakeRules()
				clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				host := NewHostSyncer(rules, WithConntrack(NewFakeConntrack()))
				s := NewBridgeSyncer(rules, WithConntrack(NewFakeConntrack()))
				s.p.s.now = func() time.Time { return clock }
				mustSyncBridge(t, s, bridgeAll)
				if err := host.Sync(ctx, worldOne.host); err != nil {
					t.Fatal(err)
				}
				want := rawState(t, rules)
				if err := rules.Apply(ctx, []byte(d.payload)); err != nil {
					t.Fatal(err)
				}
				drifted := saveText(t, rules)
				if how == "recheck" {
					s.Recheck()
				} else {
					clock = clock.Add(DefaultFullResyncPeriod / 2)
					mustSyncBridge(t, s, bridgeAll)
					if saveText(t, rules) != drifted {
						t.Fatal("repaired before the check was due: the test is broken")
					}
					clock = clock.Add(DefaultFullResyncPeriod)
				}
				mustSyncBridge(t, s, bridgeAll)
				got := rawState(t, rules)
				if diff := cmp.Diff(ownedBy(want, bridgeOwner), ownedBy(got, bridgeOwner)); diff != "" {
					t.Errorf("not repaired (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(ownedBy(want, hostOwner), ownedBy(got, hostOwner)); diff != "" {
					t.Errorf("the agent's rules changed (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestBridgeValidate(t *testing.T) {
	withPort := func(p BridgePort) BridgeRules {
		return BridgeRules{Networks: []BridgeNetwork{defaultNet, devNet}, Ports: []BridgePort{p}}
	}
	port := func(edit func(*BridgePort)) BridgeRules {
		p := apiPort
		edit(&p)
		return withPort(p)
	}
	tests := []struct {
		name  string
		rules BridgeRules
		err   string // "" = valid
	}{
		{"nothing", BridgeRules{}, ""},
		{"everything", bridgeThree, ""},
		{"the same port on two host addresses", BridgeRules{Networks: []BridgeNetwork{defaultNet}, Ports: []BridgePort{
			{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 8080, Bridge: "mesh0", Dest: addr("172.17.0.2"), Port: 80},
			{Proto: "tcp", HostIP: addr("192.168.0.10"), HostPort: 8080, Bridge: "mesh0", Dest: addr("172.17.0.3"), Port: 80}}}, ""},
		{"tcp and udp on one port", BridgeRules{Networks: []BridgeNetwork{defaultNet}, Ports: []BridgePort{
			webPort, {Proto: "udp", HostPort: 8080, Bridge: "mesh0", Dest: addr("172.17.0.2"), Port: 80}}}, ""},
		{"a port on an internal network (publishes nothing)", BridgeRules{Networks: []BridgeNetwork{secretNet},
			Ports: []BridgePort{{Proto: "tcp", HostPort: 8200, Bridge: secretNet.Bridge, Dest: addr("172.21.0.2"), Port: 8200}}}, ""},
		{"empty bridge name", BridgeRules{Networks: []BridgeNetwork{{Subnet: devNet.Subnet}}},
			`bridge rules: bridge name "": want 1 to 15 letters, digits, '-', '_' or '.'`},
		{"bridge name too long", BridgeRules{Networks: []BridgeNetwork{{Bridge: "br-3f2a1b4c5d6e7", Subnet: devNet.Subnet}}},
			`bridge rules: bridge name "br-3f2a1b4c5d6e7": want 1 to 15 letters, digits, '-', '_' or '.'`},
		{"iptables wildcard in a bridge name", BridgeRules{Networks: []BridgeNetwork{{Bridge: "br+", Subnet: devNet.Subnet}}},
			`bridge rules: bridge name "br+": want 1 to 15 letters, digits, '-', '_' or '.'`},
		{"space in a bridge name", BridgeRules{Networks: []BridgeNetwork{{Bridge: "br -j ACCEPT", Subnet: devNet.Subnet}}},
			`bridge rules: bridge name "br -j ACCEPT": want 1 to 15 letters, digits, '-', '_' or '.'`},
		{"bridge twice", BridgeRules{Networks: []BridgeNetwork{devNet, {Bridge: devNet.Bridge, Subnet: prodNet.Subnet}}},
			"bridge rules: bridge br-3f2a1b4c5d6e listed twice"},
		{"no subnet", BridgeRules{Networks: []BridgeNetwork{{Bridge: "mesh0"}}},
			"bridge rules: network mesh0: subnet invalid Prefix must be IPv4"},
		{"IPv6 subnet", BridgeRules{Networks: []BridgeNetwork{{Bridge: "mesh0", Subnet: netip.MustParsePrefix("fd00::/64")}}},
			"bridge rules: network mesh0: subnet fd00::/64 must be IPv4"},
		{"overlapping subnets", BridgeRules{Networks: []BridgeNetwork{defaultNet, {Bridge: "br-1", Subnet: netip.MustParsePrefix("172.17.5.0/24")}}},
			"bridge rules: network br-1: subnet 172.17.5.0/24 overlaps 172.17.0.0/16 of mesh0"},
		{"host port 0", port(func(p *BridgePort) { p.HostPort = 0 }), "bridge rules: port 0:5000/tcp: port 0"},
		{"container port 0", port(func(p *BridgePort) { p.Port = 0 }), "bridge rules: port 32768:0/tcp: port 0"},
		{"protocol", port(func(p *BridgePort) { p.Proto = "sctp" }), `bridge rules: port 32768:5000/sctp: protocol "sctp": want tcp or udp`},
		{"no protocol", port(func(p *BridgePort) { p.Proto = "" }), `bridge rules: port 32768:5000/: protocol "": want tcp or udp`},
		{"unknown bridge", port(func(p *BridgePort) { p.Bridge = "br-000000000000" }),
			`bridge rules: port 32768:5000/tcp: bridge "br-000000000000" is not a network's`},
		{"container outside the subnet", port(func(p *BridgePort) { p.Dest = addr("172.20.0.5") }),
			"bridge rules: port 32768:5000/tcp: container address 172.20.0.5 is not in br-3f2a1b4c5d6e's subnet 172.19.0.0/16"},
		{"no container address", port(func(p *BridgePort) { p.Dest = netip.Addr{} }),
			"bridge rules: port 32768:5000/tcp: container address invalid IP is not in br-3f2a1b4c5d6e's subnet 172.19.0.0/16"},
		{"IPv6 host address", port(func(p *BridgePort) { p.HostIP = addr("::1") }),
			"bridge rules: port [::1]:32768:5000/tcp: host address ::1 is not IPv4"},
		{"duplicate binding", BridgeRules{Networks: []BridgeNetwork{defaultNet, devNet}, Ports: []BridgePort{webPort,
			{Proto: "tcp", HostPort: 8080, Bridge: devNet.Bridge, Dest: addr("172.19.0.2"), Port: 80}}},
			"bridge rules: Bind for 0.0.0.0:8080 failed: port is already allocated"},
		{"any address after a specific one", BridgeRules{Networks: []BridgeNetwork{defaultNet}, Ports: []BridgePort{
			{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 8080, Bridge: "mesh0", Dest: addr("172.17.0.2"), Port: 80},
			{Proto: "tcp", HostIP: addr("0.0.0.0"), HostPort: 8080, Bridge: "mesh0", Dest: addr("172.17.0.3"), Port: 80}}},
			"bridge rules: Bind for 0.0.0.0:8080 failed: port is already allocated"},
		{"a specific address after any", BridgeRules{Networks: []BridgeNetwork{defaultNet}, Ports: []BridgePort{webPort,
			{Proto: "tcp", HostIP: addr("127.0.0.1"), HostPort: 8080, Bridge: "mesh0", Dest: addr("172.17.0.3"), Port: 80}}},
			"bridge rules: Bind for 127.0.0.1:8080 failed: port is already allocated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rules.validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("validate() = %q, want %q", got, tt.err)
			}
			if tt.err == "" {
				return
			}
			// Bad input changes nothing, through either door.
			rules := NewFakeRules()
			s := NewBridgeSyncer(rules, WithConntrack(NewFakeConntrack()))
			mustSyncBridge(t, s, bridgeOne)
			if err := s.Sync(context.Background(), tt.rules); err == nil || err.Error() != tt.err {
				t.Errorf("Sync = %v, want %q", err, tt.err)
			}
			if n := len(rules.Payloads()); n != 1 {
				t.Errorf("a refused Sync wrote a payload:\n%s", lastPayload(rules))
			}
			var b bytes.Buffer
			if err := RenderBridge(&b, tt.rules); err == nil || b.Len() > 0 {
				t.Errorf("RenderBridge = %v and wrote %q, want only an error", err, b.String())
			}
		})
	}
}

// A port on an internal network publishes nothing, as in Docker.
func TestBridgeInternalPortPublishesNothing(t *testing.T) {
	internal := BridgeRules{Networks: []BridgeNetwork{secretNet}}
	withPort := internal
	withPort.Ports = []BridgePort{{Proto: "udp", HostPort: 8200, Bridge: secretNet.Bridge, Dest: addr("172.21.0.2"), Port: 8200}}
	var a, b bytes.Buffer
	if err := RenderBridge(&a, internal); err != nil {
		t.Fatal(err)
	}
	if err := RenderBridge(&b, withPort); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a.String(), b.String()); diff != "" {
		t.Errorf("a port on an internal network changed the rules (-without +with):\n%s", diff)
	}
	ct := NewFakeConntrack()
	mustSyncBridge(t, NewBridgeSyncer(NewFakeRules(), WithConntrack(ct)), withPort)
	if calls := ct.Calls(); len(calls) != 0 {
		t.Errorf("conntrack deletions for a port that is not published: %v", calls)
	}
}

// TestBridgeSyncerUDPConntrack: a UDP port that starts being published
// forgets the entries nothing NATed to it; a failed deletion is retried.
func TestBridgeSyncerUDPConntrack(t *testing.T) {
	ct := NewFakeConntrack()
	s := NewBridgeSyncer(NewFakeRules(), WithConntrack(ct))
	dns := BridgePort{Proto: "udp", HostPort: 5353, Bridge: "mesh0", Dest: addr("172.17.0.2"), Port: 53}
	tcp := bridgePublish
	udp := BridgeRules{Networks: bridgePublish.Networks, Ports: []BridgePort{webPort, dns}}
	want := []ConntrackFilter{{OrigDstPort: 5353, NotNATed: true}}
	for i, step := range []struct {
		rules   BridgeRules
		failCT  bool
		deleted []ConntrackFilter
	}{
		{rules: tcp},
		{rules: udp, deleted: want},
		{rules: udp},
		{rules: tcp},
		{rules: udp, failCT: true},
		{rules: udp, deleted: want}, // the retry
		{rules: udp},
	} {
		if step.failCT {
			ct.FailNext(syscall.EPERM)
		}
		before := len(ct.Calls())
		err := s.Sync(context.Background(), step.rules)
		if (err != nil) != step.failCT {
			t.Fatalf("step %d: sync = %v, want failure %v", i, err, step.failCT)
		}
		var got []ConntrackFilter
		if calls := ct.Calls()[before:]; len(calls) > 0 {
			got = calls[len(calls)-1]
		}
		if diff := cmp.Diff(step.deleted, got, netipEqual); diff != "" {
			t.Errorf("step %d: deletions (-want +got):\n%s", i, diff)
		}
	}
}

func TestBridgeChainNamesFit(t *testing.T) {
	for k := range bridgeOwner.fixed {
		if len(k.chain) > maxChainName {
			t.Errorf("chain %q is %d characters, iptables allows %d", k.chain, len(k.chain), maxChainName)
		}
		if hostOwner.owns(k) || sandboxOwner.owns(k) || taskOwner.owns(k) {
			t.Errorf("chain %s/%s has two owners", k.table, k.chain)
		}
	}
}

// newBridgeNode is a node whose host namespace holds the agent's host
// rules and the bridge networks' rules (bridgeThree plus secret), each
// written by its own syncer, with a container namespace per network
// whose default route is the node.
func newBridgeNode(t *testing.T) TraceNet {
	t.Helper()
	ctx := context.Background()
	ifaces := map[netip.Prefix]Iface{gwSubnet: {GatewayBridgeName, addr("172.18.0.1")}}
	local := []netip.Addr{nodeIP, addr("127.0.0.1"), addr("172.18.0.1")}
	nets := append(slices.Clone(bridgeThree.Networks), secretNet)
	for _, n := range nets {
		gw := n.Subnet.Addr().Next()
		ifaces[n.Subnet] = Iface{n.Bridge, gw}
		local = append(local, gw)
	}
	host := &TraceNS{Name: "host", Rules: NewFakeRules(), Local: local, Ifaces: ifaces}
	if err := NewHostSyncer(host.Rules.(*FakeRules), WithConntrack(NewFakeConntrack())).Sync(ctx, worldOne.host); err != nil {
		t.Fatal(err)
	}
	mustSyncBridge(t, NewBridgeSyncer(host.Rules.(*FakeRules), WithConntrack(NewFakeConntrack())),
		BridgeRules{Networks: nets, Ports: bridgeThree.Ports})
	container := func(name, a string, n BridgeNetwork) *TraceNS {
		return &TraceNS{Name: name, Task: true, Local: []netip.Addr{addr(a)}, Gateway: host,
			Ifaces: map[netip.Prefix]Iface{n.Subnet: {"eth0", addr(a)}}}
	}
	return TraceNet{host,
		container("web", "172.17.0.2", defaultNet), container("idle", "172.17.0.3", defaultNet),
		container("api", "172.19.0.2", devNet), container("shop", "172.20.0.5", prodNet),
		container("vault", "172.21.0.2", secretNet),
		container("task", "172.18.0.5", BridgeNetwork{Bridge: GatewayBridgeName, Subnet: gwSubnet})}
}

func TestTraceBridge(t *testing.T) {
	node := newBridgeNode(t)
	tests := []struct {
		name     string
		src      netip.Addr
		proto    string
		dst      netip.Addr
		port     uint16
		out      string
		want     []string // substrings of some match
		wantNone []string // substrings of no match
	}{
		{name: "client to a -P port", src: extClient, proto: "tcp", dst: nodeIP, port: 32768,
			out: "172.19.0.2:5000",
			want: []string{"host nat/MESH-BRIDGE: ! -i br-3f2a1b4c5d6e -p tcp -m tcp --dport 32768 -j DNAT --to-destination 172.19.0.2:5000",
				"host filter/MESH-BRIDGE-FORWARD: -j MESH-ISOLATION-STAGE-1",
				"host filter/MESH-BRIDGE: -d 172.19.0.2/32 ! -i br-3f2a1b4c5d6e -o br-3f2a1b4c5d6e -p tcp -m tcp --dport 5000 -j ACCEPT"},
			wantNone: []string{"MASQUERADE"}},
		{name: "the node to its own -P port", src: addr("127.0.0.1"), proto: "tcp", dst: addr("127.0.0.1"), port: 32768,
			out: "172.19.0.2:5000",
			want: []string{"host nat/MESH-BRIDGE: ! -i br-3f2a1b4c5d6e",
				"host nat/MESH-BRIDGE-POSTROUTING: -o br-3f2a1b4c5d6e -m addrtype --src-type LOCAL -j MASQUERADE"}},
		{name: "client to -p 8080:80", src: extClient, proto: "tcp", dst: nodeIP, port: 8080,
			out: "172.17.0.2:80"},
		{name: "the agent's published port still goes to the ingress sandbox", src: extClient, proto: "tcp", dst: nodeIP, port: 8888,
			out: "172.18.0.2:8888", want: []string{"host nat/MESH-INGRESS"}, wantNone: []string{"MESH-BRIDGE:"}},
		{name: "unpublished port stays on the node", src: extClient, proto: "tcp", dst: nodeIP, port: 5000,
			out: "host 192.168.0.10:5000", wantNone: []string{"DNAT"}},
		{name: "a container goes out, masqueraded", src: addr("172.17.0.3"), proto: "tcp", dst: extClient, port: 80,
			out: "203.0.113.7:80",
			want: []string{"host filter/MESH-BRIDGE-ACCEPT: -i mesh0 ! -o mesh0 -j ACCEPT",
				"host nat/MESH-BRIDGE-POSTROUTING: -s 172.17.0.0/16 ! -o mesh0 -j MASQUERADE"}},
		{name: "another network is out of reach", src: addr("172.17.0.3"), proto: "tcp", dst: addr("172.19.0.2"), port: 5000,
			out: "DROP",
			want: []string{"host filter/MESH-ISOLATION-STAGE-1: -i mesh0 ! -o mesh0 -j MESH-ISOLATION-STAGE-2",
				"host filter/MESH-ISOLATION-STAGE-2: -o br-3f2a1b4c5d6e -j DROP"},
			wantNone: []string{"ACCEPT"}},
		{name: "so is its published port, from a container", src: addr("172.20.0.5"), proto: "tcp", dst: nodeIP, port: 32768,
			out: "DROP", want: []string{"DNAT --to-destination 172.19.0.2:5000", "MESH-ISOLATION-STAGE-2: -o br-3f2a1b4c5d6e -j DROP"}},
		// mesh_gwbridge is isolated as Docker's docker_gwbridge, with the
		// agent's published ports left reachable though MESH-BRIDGE-FORWARD
		// comes first in FORWARD here.
		{name: "a container reaches a published port of the mesh", src: addr("172.17.0.3"), proto: "tcp", dst: nodeIP, port: 8888,
			out: "172.18.0.2:8888", want: []string{"host nat/MESH-INGRESS: -p tcp -m tcp --dport 8888 -j DNAT"},
			wantNone: []string{"DROP"}},
		{name: "a task does not reach a container by address", src: addr("172.18.0.5"), proto: "tcp", dst: addr("172.17.0.2"), port: 80,
			out: "DROP", want: []string{"host filter/MESH-ISOLATION-STAGE-1: -i mesh_gwbridge ! -o mesh_gwbridge -m conntrack ! --ctstate DNAT -j MESH-ISOLATION-STAGE-2",
				"host filter/MESH-ISOLATION-STAGE-2: -o mesh0 -j DROP"}},
		{name: "nor a container a task", src: addr("172.17.0.3"), proto: "tcp", dst: addr("172.18.0.5"), port: 80,
			out: "DROP", want: []string{"host filter/MESH-ISOLATION-STAGE-2: -o mesh_gwbridge -m conntrack ! --ctstate DNAT -j DROP"}},
		{name: "an internal network cannot go out", src: addr("172.21.0.2"), proto: "tcp", dst: extClient, port: 443,
			out: "DROP", want: []string{"! -d 172.21.0.0/16 -i br-5e4d3c2b1a09 -j DROP"}},
		{name: "nor be reached from another network", src: addr("172.17.0.3"), proto: "tcp", dst: addr("172.21.0.2"), port: 8200,
			out: "DROP", want: []string{"! -s 172.21.0.0/16 -o br-5e4d3c2b1a09 -j DROP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			matches, out := TracePacket(t, node, tt.src, tt.proto, tt.dst, tt.port)
			all := strings.Join(matches, "\n")
			if out != tt.out {
				t.Errorf("out = %q, want %q; matches:\n%s", out, tt.out, all)
			}
			checkHolds(t, "the matches", all, tt.want, tt.wantNone)
		})
	}
}

// The tracer knows the bridge shapes meshd writes, not Docker's others.
func TestTraceBridgeRefusesUnknownShapes(t *testing.T) {
	for _, tt := range []struct{ table, hook, rule string }{
		{"nat", "PREROUTING", "-i mesh0 -j RETURN"},                                                        // Docker's nat DOCKER chain
		{"nat", "PREROUTING", "! -i mesh0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2"}, // no port
		{"filter", "FORWARD", "-i mesh0 ! -o mesh0 -j DROP"},                                               // a DROP where a jump to stage 2 belongs
	} {
		rules := NewFakeRules()
		payload := fmt.Sprintf("*%s\n:MESH-BRIDGE - [0:0]\n-A MESH-BRIDGE %s\n-I %s 1 -j MESH-BRIDGE\nCOMMIT\n", tt.table, tt.rule, tt.hook)
		if err := rules.Apply(context.Background(), []byte(payload)); err != nil {
			t.Fatal(err)
		}
		host := &TraceNS{Name: "host", Rules: rules, Local: []netip.Addr{nodeIP},
			Ifaces: map[netip.Prefix]Iface{defaultNet.Subnet: {"mesh0", addr("172.17.0.1")}}}
		web := &TraceNS{Name: "web", Local: []netip.Addr{addr("172.17.0.2")}, Gateway: host,
			Ifaces: map[netip.Prefix]Iface{defaultNet.Subnet: {"eth0", addr("172.17.0.2")}}}
		rec := &recordingT{}
		func() {
			defer func() {
				if r := recover(); r != nil && r != rec {
					panic(r)
				}
			}()
			if tt.table == "nat" {
				TracePacket(rec, TraceNet{host, web}, extClient, "tcp", nodeIP, 8080)
			} else {
				TracePacket(rec, TraceNet{host, web}, addr("172.17.0.2"), "tcp", extClient, 80)
			}
		}()
		if !strings.Contains(rec.msg, "unknown rule shape") {
			t.Errorf("%q: tracer said %q, want it to refuse the unknown shape", tt.rule, rec.msg)
		}
	}
}
