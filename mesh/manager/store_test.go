package manager

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

func TestStorePersistsAndSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(func(st *State) error {
		st.ClusterID = "c1"
		st.Nodes["n1"] = api.Node{ID: "n1", Hostname: "node1"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(s.Snapshot(), again.Snapshot()) {
		t.Errorf("reopened state differs")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state mode %v, want 0600 (it holds the token)", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".state.json.tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestStoreFailedUpdateChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, _ := OpenStore(path)
	_, _ = s.Update(func(st *State) error { st.Nodes["n1"] = api.Node{ID: "n1"}; return nil })
	before := s.Snapshot()
	_, err := s.Update(func(st *State) error {
		st.Nodes["n2"] = api.Node{ID: "n2"}
		delete(st.Nodes, "n1")
		return errors.New("refused")
	})
	if err == nil {
		t.Fatal("update error swallowed")
	}
	if !sameJSON(before, s.Snapshot()) {
		t.Errorf("failed update changed memory")
	}
	if _, ok := s.Snapshot().Nodes["n1"]; !ok {
		t.Errorf("failed update lost n1")
	}
	again, _ := OpenStore(path)
	if !sameJSON(before, again.Snapshot()) {
		t.Errorf("failed update changed the file")
	}
}

func TestOpenStoreRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(path); err == nil {
		t.Error("OpenStore on garbage = nil error, want one")
	}
}

func TestStoreUnchangedUpdateWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, _ := OpenStore(path)
	if changed, err := s.Update(func(st *State) error { st.ClusterID = "c1"; return nil }); !changed || err != nil {
		t.Fatalf("first update: changed %v, err %v; want true, nil", changed, err)
	}
	fi, _ := os.Stat(path)
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	changed, err := s.Update(func(st *State) error { st.ClusterID = "c1"; return nil })
	if changed || err != nil {
		t.Errorf("same-value update: changed %v, err %v; want false, nil", changed, err)
	}
	if after, _ := os.Stat(path); !after.ModTime().Equal(fi.ModTime()) || after.Mode().Perm() != 0o400 {
		t.Error("same-value update rewrote the file")
	}
}
