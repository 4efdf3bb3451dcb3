package lab

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStateRoundTrip(t *testing.T) {
	root := t.TempDir()
	dir, err := labDir(root, "tq-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := newLab(Options{Prefix: "tq-", Nodes: 3, Managers: 2, MeshdPath: "/bin/meshd", ExtraArgs: []string{"-v"}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	l.nodes[1].PID, l.nodes[1].Start = 4242, 99
	if err := l.save(); err != nil {
		t.Fatal(err)
	}
	got, err := Load(root, "tq-")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.Managers() != 2 || got.Size() != 3 || got.Dir() != dir || got.Prefix() != "tq-" {
		t.Errorf("got lab %d/%d/%q/%q, want 2/3/%q/tq-", got.Managers(), got.Size(), got.Dir(), got.Prefix(), dir)
	}
	if diff := cmp.Diff(l.nodes, got.nodes, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("nodes mismatch (-want +got):\n%s", diff)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != stateFile {
		t.Errorf("got files %v in %s, want only %s (no temp file left)", ents, dir, stateFile)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" means no file
		err     string
	}{
		{name: "no lab", err: "no lab is up"},
		{name: "damaged", content: `{"version": 2, "nodes": [`, err: "parse lab state"},
		{name: "future version", content: `{"version": 9}`, err: "version 9, want 2"},
		// A lab whose daemons were started with --join and a token.
		{name: "version 1", content: `{"version": 1, "token": "SWMTKN-1-x"}`, err: "version 1, want 2"},
		{name: "foreign namespace", content: `{"version": 2, "prefix": "tq-", "node_count": 1,
			"namespaces": ["node1"], "nodes": [{"name":"node1","netns":"tq-node1"},{"name":"client","netns":"tq-client"}]}`,
			err: `namespace "node1" is not this lab's`},
		{name: "short node list", content: `{"version": 2, "prefix": "tq-", "node_count": 2, "nodes": []}`,
			err: "0 nodes recorded"},
		{name: "more managers than nodes", content: `{"version": 2, "prefix": "tq-", "node_count": 1, "managers": 2,
			"nodes": [{"name":"node1","netns":"tq-node1"},{"name":"client","netns":"tq-client"}]}`,
			err: "2 managers recorded for node_count 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.content != "" {
				dir := filepath.Join(root, "tq-")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(root, "tq-")
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got error %v, want one containing %q", err, tt.err)
			}
			if tt.content == "" && !errors.Is(err, ErrNotUp) {
				t.Errorf("got error %v, want ErrNotUp", err)
			}
		})
	}
}
