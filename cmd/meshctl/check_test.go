package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// fakeCheck answers one node's check.
type fakeCheck struct {
	check api.Check
	err   error
}

func (f fakeCheck) Check(context.Context) (api.Check, error) { return f.check, f.err }

// The lab of the fixtures: node3 is the entry node whose FDB entry for
// the backend on node1 was deleted while its repair was paused; node2's
// lb sandbox lacks a VIP and holds a stray rule; node2 has not yet heard
// of the last task status.
var (
	checkTables = []api.TableDigest{
		{Table: "endpoint_table", Entries: 4, Digest: "3f2a9c1b7d0e55aa01"},
		{Table: "networks", Entries: 2, Digest: "a41c0e9d2b7f6c3300"},
		{Table: "overlay_peer_table", Entries: 7, Digest: "9be1d4c07a2f8e1100"},
		{Table: "task_status", Entries: 2, Digest: "0c5e7a1f9d3b2c4400"},
	}
	checkClean = []checkTarget{
		{"node1", fakeCheck{check: api.Check{Node: "node1", Tables: checkTables}}},
		{"node2", fakeCheck{check: api.Check{Node: "node2", Tables: checkTables}}},
		{"node3", fakeCheck{check: api.Check{Node: "node3", Tables: checkTables}}},
	}
	staleTables = append(append([]api.TableDigest(nil), checkTables[:3]...),
		api.TableDigest{Table: "task_status", Entries: 1, Digest: "77e0a9c35b1d4f2200"})
	checkDrifted = []checkTarget{
		{"node1", fakeCheck{check: api.Check{Node: "node1", Tables: checkTables}}},
		{"node2", fakeCheck{check: api.Check{Node: "node2", Tables: staleTables, Diffs: []api.CheckDiff{
			{Netns: "lb_y66l6o1cy", Kind: api.DiffVIP, State: "missing", Object: "10.0.0.2/32", Where: "eth0"},
			{Netns: "lb_y66l6o1cy", Kind: api.DiffRule, State: "extra", Object: "-A MESH-PREROUTING -d 10.0.0.9/32 -j MARK --set-xmark 0x109/0xffffffff", Where: "mangle"},
		}}}},
		{"node3", fakeCheck{check: api.Check{Node: "node3", Tables: checkTables, RepairPaused: true, Diffs: []api.CheckDiff{
			{Netns: "1-rp2c9ia1ub", Kind: api.DiffFDB, State: "missing", Object: "02:42:0a:ff:00:05 dst 192.168.33.10", Where: "vxlan0"},
			{Netns: "1-rp2c9ia1ub", Kind: api.DiffNeigh, State: "differs", Object: "10.255.0.5 lladdr 02:42:0a:ff:00:05", Where: "vxlan0",
				Have: "10.255.0.5 lladdr 02:42:de:ad:be:ef"},
		}}}},
	}
)

func TestCheckGolden(t *testing.T) {
	down := append(append([]checkTarget(nil), checkClean[:2]...),
		checkTarget{"node3", fakeCheck{err: errors.New("dial unix /run/meshd-lab/default/node3/meshd.sock: connect: connection refused")}})
	for _, tc := range []struct {
		name    string
		targets []checkTarget
		opts    checkOptions
		code    int // the exit status
	}{
		{"check", checkDrifted, checkOptions{output: "text"}, 1},
		{"check-clean", checkClean, checkOptions{output: "text"}, 0},
		{"check-one-node", checkClean[2:], checkOptions{output: "text"}, 0},
		{"check-unreachable", down, checkOptions{output: "text"}, 1},
		{"check-json", checkDrifted, checkOptions{output: "json"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runCheck(context.Background(), tc.targets, &out, tc.opts)
			var code exitCode
			if err != nil && !errors.As(err, &code) {
				t.Fatalf("got error %v, want an exit status", err)
			}
			if int(code) != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			golden(t, tc.name, out.String())
		})
	}
}

// TestCheckTargetName: a node reached through its socket names itself;
// the lab's name wins where there is one.
func TestCheckTargetName(t *testing.T) {
	var out bytes.Buffer
	err := runCheck(context.Background(), []checkTarget{{"", fakeCheck{check: api.Check{Node: "worker7",
		Diffs: []api.CheckDiff{{Netns: "host", Kind: api.DiffChain, State: "missing", Object: "MESH-INGRESS", Where: "nat"}}}}}},
		&out, checkOptions{output: "text"})
	if err == nil {
		t.Error("a difference: no exit status")
	}
	if want := "worker7  host  chain missing  MESH-INGRESS  (nat)\n"; !bytes.HasPrefix(out.Bytes(), []byte(want)) {
		t.Errorf("got %q, want it to start with %q", out.String(), want)
	}
}
