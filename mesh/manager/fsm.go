package manager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
)

// maxStateBytes bounds a snapshot or a replaced state read back: far above
// what a cluster of this size holds, low enough that a corrupt length
// cannot exhaust memory.
const maxStateBytes = 64 << 20

// keyedFields are the State fields that are maps of objects: a command
// carries only the keys that changed in them, not the whole map.
var keyedFields = []string{"Nodes", "Networks", "Services", "Tasks", "Trusted"}

// command is one raft log entry: the change a write made to the state,
// computed by the leader. Replaying the same commands in the same order
// gives every manager the same state, whatever clock or random source the
// leader used to compute them.
type command struct {
	// Base is the state Version the change was computed against; a command
	// whose base is not the current version is refused, so a change can
	// never land on a state it was not computed from.
	Base uint64 `json:"Base"`
	// Replace, when set, is a whole state (bootstrap and migration).
	Replace json.RawMessage `json:"Replace,omitempty"`
	// Set holds the other top-level fields that changed, whole.
	Set map[string]json.RawMessage `json:"Set,omitempty"`
	// Put and Del hold the keys that changed in the keyed fields.
	Put map[string]map[string]json.RawMessage `json:"Put,omitempty"`
	Del map[string][]string                   `json:"Del,omitempty"`
}

// errStaleBase is the answer to a command computed against another version.
var errStaleBase = errors.New("state changed while the write was computed")

// diffJSON returns the command that turns the state encoded in cur, at
// version base, into the one encoded in next.
func diffJSON(base uint64, cur, next []byte) (command, error) {
	a, err := split(cur)
	if err != nil {
		return command{}, err
	}
	b, err := split(next)
	if err != nil {
		return command{}, err
	}
	cmd := command{Base: base, Set: map[string]json.RawMessage{}, Put: map[string]map[string]json.RawMessage{},
		Del: map[string][]string{}}
	for name, nv := range b {
		if name == "Version" {
			continue
		}
		if !slices.Contains(keyedFields, name) {
			if !bytes.Equal(a[name], nv) {
				cmd.Set[name] = nv
			}
			continue
		}
		var am, bm map[string]json.RawMessage
		if err := json.Unmarshal(a[name], &am); err != nil && len(a[name]) > 0 {
			return command{}, fmt.Errorf("diff %s: %w", name, err)
		}
		if err := json.Unmarshal(nv, &bm); err != nil {
			return command{}, fmt.Errorf("diff %s: %w", name, err)
		}
		for k, v := range bm {
			if !bytes.Equal(am[k], v) {
				if cmd.Put[name] == nil {
					cmd.Put[name] = map[string]json.RawMessage{}
				}
				cmd.Put[name][k] = v
			}
		}
		for _, k := range slices.Sorted(maps.Keys(am)) {
			if _, ok := bm[k]; !ok {
				cmd.Del[name] = append(cmd.Del[name], k)
			}
		}
	}
	return cmd, nil
}

// empty says whether the command changes nothing.
func (c command) empty() bool {
	return len(c.Replace) == 0 && len(c.Set) == 0 && len(c.Put) == 0 && len(c.Del) == 0
}

// apply returns the state the command makes of cur.
func (c command) apply(cur State) (State, error) {
	if c.Base != cur.Version {
		return State{}, errStaleBase
	}
	var next State
	if len(c.Replace) > 0 {
		if err := json.Unmarshal(c.Replace, &next); err != nil {
			return State{}, fmt.Errorf("replace state: %w", err)
		}
	} else {
		f, err := fields(cur)
		if err != nil {
			return State{}, err
		}
		maps.Copy(f, c.Set)
		for _, name := range keyedFields {
			if len(c.Put[name]) == 0 && len(c.Del[name]) == 0 {
				continue
			}
			m := map[string]json.RawMessage{}
			if len(f[name]) > 0 {
				if err := json.Unmarshal(f[name], &m); err != nil {
					return State{}, fmt.Errorf("apply %s: %w", name, err)
				}
			}
			if m == nil {
				m = map[string]json.RawMessage{}
			}
			maps.Copy(m, c.Put[name])
			for _, k := range c.Del[name] {
				delete(m, k)
			}
			if f[name], err = json.Marshal(m); err != nil {
				return State{}, fmt.Errorf("apply %s: %w", name, err)
			}
		}
		b, err := json.Marshal(f)
		if err != nil {
			return State{}, fmt.Errorf("apply: %w", err)
		}
		if err := json.Unmarshal(b, &next); err != nil {
			return State{}, fmt.Errorf("apply: %w", err)
		}
	}
	next.init()
	next.Version = cur.Version + 1
	return next, nil
}

// fields splits a state into its top-level JSON fields.
func fields(s State) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return split(b)
}

// split splits an encoded state into its top-level JSON fields.
func split(b []byte) (map[string]json.RawMessage, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("split state: %w", err)
	}
	return f, nil
}

// fsm is the raft state machine: the State every manager replays from the
// log. Its snapshots are the state file. An applied state is never
// changed: each command or restore installs a new one, so readers may
// share it (Store.Read).
type fsm struct {
	mu sync.RWMutex
	st State
	// gen counts the states installed (commands applied, restores); enc
	// is st's JSON, made by encoded once for each, nil until then.
	gen uint64
	enc []byte
	// changed is signalled (without blocking) after every applied command
	// and restore, so the publisher runs at once.
	changed chan struct{}
}

func newFSM() *fsm {
	f := &fsm{changed: make(chan struct{}, 1)}
	f.st.init()
	return f
}

// state returns a deep copy of the current state.
func (f *fsm) state() State {
	_, enc, err := f.encoded()
	if err != nil {
		panic(fmt.Sprintf("manager: %v", err)) // a programming error, as in clone
	}
	return mustDecodeState(enc)
}

// encoded returns the current state, shared (see Store.Read), and its
// JSON, made once per state: a copy (state, Store.Update) is one decode,
// and the leader's sync, once a second and mostly finding nothing to
// change, compares encodings without encoding the current state again
// (at 1000 services: 18 ms a sync against 44 with a copy and a full
// diff, go test -bench IdleSync).
func (f *fsm) encoded() (State, []byte, error) {
	f.mu.RLock()
	st, gen, enc := f.st, f.gen, f.enc
	f.mu.RUnlock()
	if enc != nil {
		return st, enc, nil
	}
	enc, err := json.Marshal(st)
	if err != nil {
		return State{}, nil, fmt.Errorf("encode state: %w", err)
	}
	f.mu.Lock()
	if f.gen == gen {
		f.enc = enc
	}
	f.mu.Unlock()
	return st, enc, nil
}

// install makes st the current state; f.mu is held.
func (f *fsm) install(st State) {
	f.st, f.enc = st, nil
	f.gen++
}

// Apply applies one command. Its answer is nil or an error, which the
// leader's Update returns to the caller; a refused command changes nothing
// on any manager.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("decode command at index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	next, err := c.apply(f.st)
	if err == nil {
		f.install(next)
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.poke()
	return nil
}

func (f *fsm) poke() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Snapshot captures the state as JSON; raft writes it out later, off the
// apply path.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(f.st)
	if err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	return stateSnapshot(b), nil
}

// Restore replaces the state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxStateBytes+1))
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if len(b) > maxStateBytes {
		return fmt.Errorf("snapshot larger than %d bytes", maxStateBytes)
	}
	st, err := decodeState(b)
	if err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	f.mu.Lock()
	f.install(st)
	f.mu.Unlock()
	f.poke()
	return nil
}

type stateSnapshot []byte

func (s stateSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (stateSnapshot) Release() {}
