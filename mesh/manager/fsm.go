package manager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
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

// encodedState is a state's JSON split into its top-level fields, with
// the maps of the keyed fields split as a diff needs them. The leader
// keeps the one of the state it last wrote: the next write starts from
// that state and need not split it again.
type encodedState struct {
	raw    []byte
	fields map[string]json.RawMessage
	keyed  map[string]map[string]json.RawMessage
}

// splitState splits an encoded state into its top-level fields.
func splitState(b []byte) (*encodedState, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("split state: %w", err)
	}
	return &encodedState{raw: b, fields: f, keyed: map[string]map[string]json.RawMessage{}}, nil
}

// keyedMap is the keyed field's map, split once.
func (e *encodedState) keyedMap(name string) (map[string]json.RawMessage, error) {
	if m, ok := e.keyed[name]; ok {
		return m, nil
	}
	var m map[string]json.RawMessage
	if raw := e.fields[name]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("split %s: %w", name, err)
		}
	}
	e.keyed[name] = m
	return m, nil
}

// diffJSON returns the command that turns the state a, at version base,
// into b. A field that b leaves out (omitempty, and empty) is cleared.
func diffJSON(base uint64, a, b *encodedState) (command, error) {
	cmd := command{Base: base, Set: map[string]json.RawMessage{}, Put: map[string]map[string]json.RawMessage{},
		Del: map[string][]string{}}
	names := slices.Collect(maps.Keys(b.fields))
	for name := range a.fields {
		if _, ok := b.fields[name]; !ok {
			names = append(names, name)
		}
	}
	for _, name := range names {
		av, bv := a.fields[name], b.fields[name]
		if name == "Version" || bytes.Equal(av, bv) {
			continue
		}
		if !slices.Contains(keyedFields, name) {
			if bv == nil {
				bv = json.RawMessage("null")
			}
			cmd.Set[name] = bv
			continue
		}
		am, err := a.keyedMap(name)
		if err != nil {
			return command{}, err
		}
		bm, err := b.keyedMap(name)
		if err != nil {
			return command{}, err
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

// apply returns the state the command makes of cur. Only what changed is
// decoded: the new state shares the rest with cur, which is safe because
// an installed state is never changed (see [fsm]).
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
		next = cur
		if err := next.set(c.Set); err != nil {
			return State{}, err
		}
		var err error
		if next.Nodes, err = patch(next.Nodes, c.Put["Nodes"], c.Del["Nodes"]); err != nil {
			return State{}, fmt.Errorf("apply Nodes: %w", err)
		}
		if next.Networks, err = patch(next.Networks, c.Put["Networks"], c.Del["Networks"]); err != nil {
			return State{}, fmt.Errorf("apply Networks: %w", err)
		}
		if next.Services, err = patch(next.Services, c.Put["Services"], c.Del["Services"]); err != nil {
			return State{}, fmt.Errorf("apply Services: %w", err)
		}
		if next.Tasks, err = patch(next.Tasks, c.Put["Tasks"], c.Del["Tasks"]); err != nil {
			return State{}, fmt.Errorf("apply Tasks: %w", err)
		}
		if next.Trusted, err = patch(next.Trusted, c.Put["Trusted"], c.Del["Trusted"]); err != nil {
			return State{}, fmt.Errorf("apply Trusted: %w", err)
		}
	}
	next.init()
	next.Version = cur.Version + 1
	return next, nil
}

// stateFields are the State's top-level fields by JSON name, with their
// index for reflect (an embedded struct's fields are promoted, as JSON
// promotes them).
var stateFields = func() map[string][]int {
	out := map[string][]int{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[State]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && !f.Anonymous && name != "" && name != "-" {
			out[name] = f.Index
		}
	}
	return out
}()

// set replaces the top-level fields named in fields, whole. Each is
// zeroed before it is decoded, so that a map or slice that s shares with
// another state is replaced rather than written into.
func (s *State) set(fields map[string]json.RawMessage) error {
	if len(fields) == 0 {
		return nil
	}
	v := reflect.ValueOf(s).Elem()
	for name := range fields {
		if slices.Contains(keyedFields, name) {
			return fmt.Errorf("apply: %s is set whole", name)
		}
		if idx, ok := stateFields[name]; ok {
			v.FieldByIndex(idx).SetZero()
		}
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// patch returns m with the entries of put decoded in and those of del
// removed: a new map when anything changes, m itself otherwise.
func patch[T any](m map[string]T, put map[string]json.RawMessage, del []string) (map[string]T, error) {
	if len(put) == 0 && len(del) == 0 {
		return m, nil
	}
	out := make(map[string]T, len(m)+len(put))
	maps.Copy(out, m)
	for k, raw := range put {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = v
	}
	for _, k := range del {
		delete(out, k)
	}
	return out, nil
}

// fsm is the raft state machine: the State every manager replays from the
// log. Its snapshots are the state file. An applied state is never
// changed: each command or restore installs a new one, which shares with
// the one before the objects and maps the command left alone, so readers
// may share it (Store.Read) and must not write to it.
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
