package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateVersion is bumped when lab.json changes incompatibly; Load refuses
// other versions rather than guess, and Down does not need the file at all.
// Version 2: daemons start outside any swarm and Up forms it through the
// API; a version 1 lab's daemons were started with --join and a token.
const stateVersion = 2

// state is lab.json: what Up built, so that later commands (often other
// processes) find namespaces, daemons and logs without searching.
type state struct {
	Version   int    `json:"version"`
	Prefix    string `json:"prefix"`
	NodeCount int    `json:"node_count"`
	// Managers is how many nodes Up made managers of the swarm it formed,
	// 0 for none (lab up --no-swarm): lab up on a lab that is up compares
	// it with what it is asked for.
	Managers   int      `json:"managers"`
	Namespaces []string `json:"namespaces"` // every namespace Up created, underlay last
	Nodes      []Node   `json:"nodes"`      // node1…nodeN, then client
}

// writeState replaces dir/lab.json crash-safely: a reader sees the old file or
// the new one, never a torn one (temp file, fsync, rename, fsync of dir).
func writeState(dir string, st state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab state: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+stateFile+"-*")
	if err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, stateFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write lab state %s: %w", tmp, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return nil
}

// readState reads dir/lab.json. A missing file is [ErrNotUp].
func readState(dir string) (state, error) {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, fmt.Errorf("%w (no %s)", ErrNotUp, path)
	}
	if err != nil {
		return state{}, fmt.Errorf("read lab state: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return state{}, fmt.Errorf("parse lab state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return state{}, fmt.Errorf("lab state %s: version %d, want %d", path, st.Version, stateVersion)
	}
	if err := st.check(); err != nil {
		return state{}, fmt.Errorf("lab state %s: %w", path, err)
	}
	return st, nil
}

// check rejects a state that does not describe a lab, so that no caller
// indexes past Nodes or trusts a namespace name another lab owns.
func (st state) check() error {
	if err := validPrefix(st.Prefix); err != nil {
		return err
	}
	if st.NodeCount < 1 || st.NodeCount > MaxNodes || len(st.Nodes) != st.NodeCount+1 {
		return fmt.Errorf("%d nodes recorded for node_count %d", len(st.Nodes), st.NodeCount)
	}
	if st.Managers < 0 || st.Managers > st.NodeCount {
		return fmt.Errorf("%d managers recorded for node_count %d", st.Managers, st.NodeCount)
	}
	re := labNetnsRE(st.Prefix)
	for _, ns := range st.Namespaces {
		if !re.MatchString(ns) {
			return fmt.Errorf("namespace %q is not this lab's", ns)
		}
	}
	for i, n := range st.Nodes {
		want := clientName
		if i < st.NodeCount {
			want = nodeName(i + 1)
		}
		if n.Name != want || n.Netns != st.Prefix+want {
			return fmt.Errorf("node %d is %q in %q, want %q", i, n.Name, n.Netns, want)
		}
	}
	return nil
}
