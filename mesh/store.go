package mesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
)

// State is what the manager owns and persists: the cluster's identity and
// its objects. Later object kinds (networks, services, tasks) join Nodes
// here, so that one crash-safe file holds the whole desired state.
type State struct {
	ClusterID string                 `json:"ClusterID"`
	Token     string                 `json:"Token"`
	ManagerID string                 `json:"ManagerID"`
	Nodes     map[string]api.Node    `json:"Nodes"` // by node ID; Status is not stored
	Networks  map[string]api.Network `json:"Networks"`
	Services  map[string]api.Service `json:"Services"`
	Tasks     map[string]api.Task    `json:"Tasks"` // Status is not stored
	IPAM      *ipam.Allocator        `json:"IPAM"`
}

func (s *State) init() {
	if s.Nodes == nil {
		s.Nodes = map[string]api.Node{}
	}
	if s.Networks == nil {
		s.Networks = map[string]api.Network{}
	}
	if s.Services == nil {
		s.Services = map[string]api.Service{}
	}
	if s.Tasks == nil {
		s.Tasks = map[string]api.Task{}
	}
	if s.IPAM == nil {
		a, err := ipam.New(ipam.DefaultConfig())
		if err != nil {
			panic(fmt.Sprintf("mesh: default ipam config refused: %v", err)) // a programming error
		}
		s.IPAM = a
	}
}

// clone deep-copies the state through its JSON form: the state is small,
// and a copy that cannot forget a field is worth the cost.
func (s State) clone() State {
	var c State
	b, err := json.Marshal(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		panic(fmt.Sprintf("mesh: state does not survive its own JSON: %v", err)) // a programming error
	}
	c.init()
	return c
}

// Store keeps State in memory and in a file that is replaced atomically
// (write a temporary file, fsync, rename, fsync the directory), so a crash
// leaves either the old or the new state, never a torn one.
type Store struct {
	path string

	mu      sync.Mutex // guards the fields below
	st      State
	written bool // st is on disk
}

// OpenStore loads the state file at path; a missing file is an empty state.
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path}
	s.st.init()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &s.st); err != nil {
		return nil, fmt.Errorf("decode state %s: %w", path, err)
	}
	s.st.init()
	s.written = true
	return s, nil
}

// Snapshot returns a copy of the current state.
func (s *Store) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.clone()
}

// Update applies fn to a copy of the state and, when fn succeeds and
// changed something, persists the copy before making it current. A failed
// fn or write changes nothing. It reports whether the state changed.
func (s *Store) Update(fn func(*State) error) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	if err := fn(&next); err != nil {
		return false, err
	}
	if s.written && sameJSON(next, s.st) {
		return false, nil
	}
	if err := writeFileAtomic(s.path, next, 0o600); err != nil {
		return false, err
	}
	s.st, s.written = next, true
	return true, nil
}

func sameJSON(a, b State) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// writeFileAtomic writes v as JSON to path crash-safely.
func writeFileAtomic(path string, v any, mode os.FileMode) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// identity is what every node keeps about itself in its run dir, so that a
// restart comes back as the same node of the same cluster.
type identity struct {
	ID          string `json:"ID"`
	ClusterID   string `json:"ClusterID,omitempty"`
	Role        string `json:"Role,omitempty"`
	ManagerAddr string `json:"ManagerAddr,omitempty"` // host:port of the cluster API
	Token       string `json:"Token,omitempty"`
}

func loadIdentity(path string) (identity, error) {
	var id identity
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &id); err != nil {
		return id, fmt.Errorf("decode %s: %w", path, err)
	}
	return id, nil
}
