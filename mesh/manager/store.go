package manager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/meshd/meshd/internal/atomicfile"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/records"
)

// State is what the manager owns and persists: the cluster's identity, its
// objects and their allocations, so that one crash-safe file holds the
// whole desired state.
type State struct {
	ClusterID string `json:"ClusterID"`
	Token     string `json:"Token"`
	ManagerID string `json:"ManagerID"`
	records.Objects
	IPAM *ipam.Allocator `json:"IPAM"`
}

func (s *State) init() {
	s.Objects.Init()
	if s.IPAM == nil {
		a, err := ipam.New(ipam.DefaultConfig())
		if err != nil {
			panic(fmt.Sprintf("manager: default ipam config refused: %v", err)) // a programming error
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
		panic(fmt.Sprintf("manager: state does not survive its own JSON: %v", err)) // a programming error
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
	found, err := atomicfile.ReadJSON(path, &s.st)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	s.st.init()
	s.written = found
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
	if err := atomicfile.WriteJSON(s.path, next, 0o600); err != nil {
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
