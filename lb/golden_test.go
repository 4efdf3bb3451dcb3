package lb

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
)

// goldenPath is where the golden file name lives; "go test ./lb -update"
// rewrites them (the flag is testutil's).
func goldenPath(name string) string {
	return filepath.Join("testdata", name+".golden")
}

func testdataText(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goldenTargets run a scenario through the real syncers over fakes and
// return what the last sync wrote (plus extra files: name suffix → text).
var goldenTargets = []struct {
	name string
	run  func(t *testing.T, before *world, w world) (payload string, extra map[string]string)
}{
	{"ingress_iptables", func(t *testing.T, before *world, w world) (string, map[string]string) {
		dp, rules, _, _ := newFakePlane(t, ModeIPTables)
		if before != nil {
			mustSync(t, dp, before.ingress)
		}
		mustSync(t, dp, w.ingress)
		return lastPayload(rules), nil
	}},
	{"ingress_ipvs", func(t *testing.T, before *world, w world) (string, map[string]string) {
		dp, rules, ipvs, _ := newFakePlane(t, ModeIPVS)
		if before != nil {
			mustSync(t, dp, before.ingress)
		}
		mustSync(t, dp, w.ingress)
		return lastPayload(rules), map[string]string{"ipvsadm": ipvs.Dump()}
	}},
	{"lb", func(t *testing.T, before *world, w world) (string, map[string]string) {
		dp, rules, _, _ := newFakePlane(t, ModeIPTables)
		if before != nil {
			mustSync(t, dp, before.lb)
		}
		mustSync(t, dp, w.lb)
		table, err := dp.Table()
		if err != nil {
			t.Fatal(err)
		}
		return lastPayload(rules), map[string]string{"table": table}
	}},
	{"host", func(t *testing.T, before *world, w world) (string, map[string]string) {
		rules := NewFakeRules()
		h := NewHostSyncer(rules, WithConntrack(NewFakeConntrack()))
		for _, hr := range worldsOf(before, w, func(w world) HostRules { return w.host }) {
			if err := h.Sync(context.Background(), hr); err != nil {
				t.Fatal(err)
			}
		}
		return lastPayload(rules), nil
	}},
	{"task", func(t *testing.T, before *world, w world) (string, map[string]string) {
		rules := NewFakeRules()
		s := NewTaskSyncer(rules)
		for _, tr := range worldsOf(before, w, func(w world) TaskRules { return w.task }) {
			if err := s.Sync(context.Background(), tr); err != nil {
				t.Fatal(err)
			}
		}
		return lastPayload(rules), nil
	}},
}

func worldsOf[T any](before *world, w world, get func(world) T) []T {
	if before == nil {
		return []T{get(w)}
	}
	return []T{get(*before), get(w)}
}

// TestGolden checks the whole payload each syncer writes for each
// scenario: a first sync (from an empty namespace), or for "removed" the
// incremental payload after the "two" state. The "_buckets" files are the
// same with bucket chains for any shared chain of more than one entry:
// "two" in buckets, and "removed" going back out of them.
func TestGolden(t *testing.T) {
	for _, sc := range scenarios {
		for _, tg := range goldenTargets {
			name := sc.name + "_" + tg.name
			t.Run(name, func(t *testing.T) {
				payload, extra := tg.run(t, sc.before, sc.world)
				testutil.Golden(t, goldenPath(name), payload)
				for suffix, text := range extra {
					testutil.Golden(t, goldenPath(name+"."+suffix), text)
				}
			})
			if sc.name != "two" && sc.name != "removed" || tg.name == "task" {
				continue
			}
			t.Run(name+"_buckets", func(t *testing.T) {
				withBucketThreshold(t, 1)
				payload, _ := tg.run(t, sc.before, sc.world)
				testutil.Golden(t, goldenPath(name+"_buckets"), payload)
			})
		}
	}
}

// TestRenderMatchesFirstSync checks that the exported renderers write what
// a syncer's first sync writes into an empty namespace.
func TestRenderMatchesFirstSync(t *testing.T) {
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		dp, rules, _, _ := newFakePlane(t, mode)
		mustSync(t, dp, worldTwo.ingress)
		var b bytes.Buffer
		if err := RenderSandbox(&b, mode, worldTwo.ingress); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(lastPayload(rules), b.String()); diff != "" {
			t.Errorf("%s: RenderSandbox differs from the first sync (-sync +render):\n%s", mode, diff)
		}
	}
	var b bytes.Buffer
	if err := RenderHost(&b, worldTwo.host); err != nil {
		t.Fatal(err)
	}
	rules := NewFakeRules()
	if err := NewHostSyncer(rules, WithConntrack(NewFakeConntrack())).Sync(context.Background(), worldTwo.host); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lastPayload(rules), b.String()); diff != "" {
		t.Errorf("RenderHost differs from the first sync (-sync +render):\n%s", diff)
	}
	if err := RenderSandbox(&b, ModeAuto, worldOne.ingress); err == nil {
		t.Error("RenderSandbox(ModeAuto) = nil, want an error")
	}
}
