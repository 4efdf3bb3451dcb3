package records

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/internal/atomicfile"
)

// The desired state must outlive its publisher. Gossip drops every entry
// of a node that dies or restarts, and a leader that republishes is seen
// in pieces, so the tables alone cannot tell a removed task from one not
// gossiped yet. The leader therefore writes the four tables first, then a
// head (TableCluster/HeadKey) certifying them: its node ID, the state's
// version, and the digest and count of the entries. A reader adopts the
// tables only when they hash to the head's digest, and otherwise keeps
// serving the last state it verified ([Desired]), which it persists so a
// restarted node serves it too, manager or not.

// desiredTables are the tables a head certifies, in the order they are
// hashed.
var desiredTables = []string{TableNetworks, TableNodes, TableServices, TableTasks}

// Head certifies the desired state the tables hold.
type Head struct {
	Leader  string // the publishing manager's node ID
	Version uint64 // the version of the manager state published; never goes back
	Digest  string // hex SHA-256 of the four tables' entries (see digester)
	Entries int    // how many entries the four tables hold
	// Trust names the roots and gossip keys a node must hold (see
	// manager.State.Trust): a node holding another renews its certificate.
	Trust string
}

// headWire is the JSON on the wire and in the persisted file; its field
// names MUST NOT change.
type headWire struct {
	Leader  string `json:"Leader"`
	Version uint64 `json:"Version"`
	Digest  string `json:"Digest"`
	Entries int    `json:"Entries"`
	Trust   string `json:"Trust,omitempty"`
}

func encodeHead(h Head) ([]byte, error) {
	b, err := json.Marshal(headWire(h))
	if err != nil {
		return nil, tableErr("encode", TableCluster, HeadKey, err)
	}
	return b, nil
}

// decodeHead reads a head and checks it could certify anything: a head
// that fails is treated as no head.
func decodeHead(b []byte) (Head, error) {
	var w headWire
	if err := json.Unmarshal(b, &w); err != nil {
		return Head{}, fmt.Errorf("decode head: %w", err)
	}
	h := Head(w)
	if err := h.validate(); err != nil {
		return Head{}, err
	}
	return h, nil
}

func (h Head) validate() error {
	switch {
	case h.Leader == "":
		return errors.New("head names no leader")
	case h.Entries < 0:
		return fmt.Errorf("head counts %d entries", h.Entries)
	}
	// Lower-case hex only, as digester writes it: the digest is compared
	// as a string.
	if b, err := hex.DecodeString(h.Digest); err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != h.Digest {
		return fmt.Errorf("head digest %q: want %d lower-case hex digits", h.Digest, 2*sha256.Size)
	}
	return nil
}

// digester hashes the entries of the four tables, fed in table then key
// order. Every field is length-prefixed, so two different sets of entries
// never feed the hash the same bytes.
type digester struct {
	h   hash.Hash
	buf []byte // an entry's prefixes, table and key, fed to h in one write
	n   int
}

func newDigester() *digester { return &digester{h: sha256.New()} }

// add feeds an entry with two writes and no copy of its value: at 1000
// services a look hashes some 700 kB.
func (d *digester) add(table, key string, value []byte) {
	b := binary.BigEndian.AppendUint64(d.buf[:0], uint64(len(table)))
	b = append(b, table...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(value)))
	d.h.Write(b)
	d.h.Write(value)
	d.buf = b
	d.n++
}

func (d *digester) sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// listDesired returns the four tables' cluster-scope entries, in
// desiredTables order, and how many there are.
func listDesired(db DB) ([][]gossip.Entry, int) {
	out, n := make([][]gossip.Entry, len(desiredTables)), 0
	for i, table := range desiredTables {
		out[i] = db.List(table, "")
		n += len(out[i])
	}
	return out, n
}

// digestEntries hashes the tables' entries, which DB.List sorts by key.
func digestEntries(tables [][]gossip.Entry) string {
	d := newDigester()
	for _, es := range tables {
		for _, e := range es {
			d.add(e.Table, e.Key, e.Value)
		}
	}
	return d.sum()
}

// entryKey names a table entry.
type entryKey struct{ table, key string }

// decodeObjects decodes the entries; one that does not decode fails the
// whole state, which a digest that matched makes a publisher's bug. An
// entry whose value is the one prev was decoded from (prevRaw) keeps
// prev's object, so that a change costs what changed rather than a decode
// of every object (at 1000 services that showed in every reconcile). It
// returns the values the objects were decoded from, for the next call.
func decodeObjects(tables [][]gossip.Entry, prev Objects, prevRaw map[entryKey][]byte) (Objects, map[entryKey][]byte, error) {
	var o Objects
	o.Init()
	raw := make(map[entryKey][]byte, len(prevRaw))
	for _, es := range tables {
		for _, e := range es {
			k := entryKey{e.Table, e.Key}
			old, same := prevRaw[k]
			same = same && bytes.Equal(old, e.Value)
			var err error
			switch e.Table {
			case TableNodes:
				err = decodeInto(o.Nodes, prev.Nodes, e, same)
			case TableNetworks:
				err = decodeInto(o.Networks, prev.Networks, e, same)
			case TableServices:
				err = decodeInto(o.Services, prev.Services, e, same)
			case TableTasks:
				err = decodeInto(o.Tasks, prev.Tasks, e, same)
			}
			if err != nil {
				return Objects{}, nil, err
			}
			if same {
				raw[k] = old
			} else {
				raw[k] = bytes.Clone(e.Value)
			}
		}
	}
	return o, raw, nil
}

// decodeInto puts e's object in m: prev's when same says e holds what it
// was decoded from, else decoded from e.
func decodeInto[T any](m, prev map[string]T, e gossip.Entry, same bool) error {
	if v, ok := prev[e.Key]; ok && same {
		m[e.Key] = v
		return nil
	}
	var v T
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return tableErr("decode", e.Table, e.Key, err)
	}
	m[e.Key] = v
	return nil
}

// maxDesiredFile bounds the persisted state read back: far above any
// cluster's (a few hundred entries of at most gossip.MaxValueSize), low
// enough that a stray huge file is refused rather than read.
const maxDesiredFile = 64 << 20

// desiredFile is the persisted state: what was served and the head it was
// verified against.
type desiredFile struct {
	Head    headWire `json:"Head"`
	Objects Objects  `json:"Objects"`
}

// Desired is the desired state this node serves: the tables' while they
// hold exactly what their head certifies, else the last state verified,
// so that a manager that dies, restarts or hands over to another leader
// never makes the node drop what is still desired. It persists what it
// serves, so a restarted node serves it before any manager is back. Its
// methods are safe for concurrent use.
type Desired struct {
	db   DB
	path string

	mu      sync.Mutex          // guards the fields below
	objs    Objects             // the state served
	raw     map[entryKey][]byte // the table values objs was decoded from; none when it was read from the file
	head    Head                // the head objs was verified against; zero before any
	fresh   bool                // the tables matched a head at the last look
	partial bool                // they held a head not older than objs, but not all its entries
	stale   string              // why they did not match, when not fresh
	dirty   bool                // objs or head differ from the file
	errPer  error               // the last failure to persist, until one succeeds
	// looked are the tables' generations at the last look (nil before
	// any): while they stay, so do the tables, and so would what the look
	// found (stale, partial).
	looked []uint64
}

// NewDesired returns a tracker serving the state persisted at path (mode
// 0600); a missing file is an empty state. A file that cannot be read or
// decoded, or is too large, is an error naming it.
func NewDesired(db DB, path string) (*Desired, error) {
	d := &Desired{db: db, path: path, stale: "not looked at the tables yet"}
	f, found, err := readDesiredFile(path)
	if err != nil {
		return nil, err
	}
	if found {
		d.objs, d.head = f.Objects, Head(f.Head)
	}
	d.objs.Init()
	return d, nil
}

func readDesiredFile(path string) (desiredFile, bool, error) {
	var f desiredFile
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("desired state: %w", err)
	}
	defer fh.Close()
	// The size is checked before reading, and the read is bounded too in
	// case the file grows meanwhile.
	if fi, err := fh.Stat(); err == nil && fi.Size() > maxDesiredFile {
		return f, false, fmt.Errorf("desired state: %s is %d bytes, limit %d", path, fi.Size(), maxDesiredFile)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxDesiredFile+1))
	if err != nil {
		return f, false, fmt.Errorf("desired state: read %s: %w", path, err)
	}
	if len(data) > maxDesiredFile {
		return f, false, fmt.Errorf("desired state: %s is over %d bytes", path, maxDesiredFile)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, false, fmt.Errorf("desired state: decode %s: %w", path, err)
	}
	if err := Head(f.Head).validate(); err != nil {
		return f, false, fmt.Errorf("desired state: %s: %w", path, err)
	}
	return f, true, nil
}

// Current looks at the tables and returns the state to serve. When the
// head is there, is not older than the state served, and the four tables
// hash to its digest, their entries are decoded (only when the digest
// changed), adopted and persisted. Otherwise (no head: its publisher died
// or restarted; a partial view while a leader republishes; an older head)
// the state served stays as it is. The maps returned are shared: callers
// must not modify them.
func (d *Desired) Current() Objects {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stale = d.refresh()
	d.fresh = d.stale == ""
	if d.dirty {
		// A failed write is retried at the next look; the state is served
		// from memory meanwhile.
		if err := d.save(); err != nil {
			d.errPer = fmt.Errorf("save desired state: %w", err)
		} else {
			d.dirty, d.errPer = false, nil
		}
	}
	return d.objs
}

// save writes the state served to d.path.
func (d *Desired) save() error {
	data, err := encodeDesiredFile(d.head, d.objs, d.raw)
	if err != nil {
		return fmt.Errorf("encode %s: %w", d.path, err)
	}
	return atomicfile.Write(d.path, data, 0o600)
}

// encodeDesiredFile returns the file's JSON for objs and h. Where raw
// holds the table value each object was decoded from, the objects are
// copied from them rather than encoded again, as encoding the whole
// state at 1000 services cost a third of a change's adoption
// (BenchmarkDesiredChange). Each value decoded into its object, so it is
// valid JSON and reads back as that object; a publisher of this release
// encodes objects with json.Marshal, so the file is then the very bytes
// encoding the state would give. A state read from the file has no
// values, and is encoded.
func encodeDesiredFile(h Head, objs Objects, raw map[entryKey][]byte) ([]byte, error) {
	if b, ok := copyDesiredFile(h, objs, raw); ok {
		return b, nil
	}
	return json.Marshal(desiredFile{Head: headWire(h), Objects: objs})
}

// copyDesiredFile assembles the file from raw; false when raw lacks a
// value for one of the objects (all of them, for a state read from the
// file).
func copyDesiredFile(h Head, objs Objects, raw map[entryKey][]byte) ([]byte, bool) {
	head, err := json.Marshal(headWire(h))
	if err != nil {
		return nil, false
	}
	var b bytes.Buffer
	b.Grow(64 * len(raw))
	b.WriteString(`{"Head":`)
	b.Write(head)
	b.WriteString(`,"Objects":{`)
	ok := copyTable(&b, `"Nodes":`, TableNodes, objs.Nodes, raw) &&
		copyTable(&b, `,"Networks":`, TableNetworks, objs.Networks, raw) &&
		copyTable(&b, `,"Services":`, TableServices, objs.Services, raw) &&
		copyTable(&b, `,"Tasks":`, TableTasks, objs.Tasks, raw)
	b.WriteString("}}")
	return b.Bytes(), ok
}

// copyTable writes field and then m (made, as Objects.Init makes it) as
// a JSON object of table's values in raw, keys sorted as json.Marshal
// sorts them; false when a value is missing.
func copyTable[T any](b *bytes.Buffer, field, table string, m map[string]T, raw map[entryKey][]byte) bool {
	b.WriteString(field)
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		v, ok := raw[entryKey{table, k}]
		if !ok {
			return false
		}
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(k) // a string always encodes
		b.Write(key)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return true
}

// refresh adopts the tables' state when their head certifies it, and
// otherwise says why not (and sets partial).
//
// Listing and hashing the tables costs about 1 ms at 1000 services
// (BenchmarkDesiredLook), and each reconcile, role check and bridge sync
// looks, so a look at tables whose generations have not moved gives the
// last answer: 0.2 µs.
func (d *Desired) refresh() (stale string) {
	gens := make([]uint64, 0, 1+len(desiredTables))
	gens = append(gens, d.db.Generation(TableCluster))
	for _, t := range desiredTables {
		gens = append(gens, d.db.Generation(t))
	}
	if slices.Equal(gens, d.looked) {
		return d.stale // partial stays as the last look left it
	}
	d.looked, d.partial = gens, false
	e, ok := d.db.Get(TableCluster, "", HeadKey)
	if !ok {
		return "no head in the tables"
	}
	h, err := decodeHead(e.Value)
	if err != nil {
		return err.Error()
	}
	if h.Version < d.head.Version {
		return fmt.Sprintf("the head of %s is at version %d, older than the state served (%d)", h.Leader, h.Version, d.head.Version)
	}
	// An entry ahead of its head (a service added or removed, the head
	// not gossiped yet) shows in the count: no need to sort and hash.
	tables, n := listDesired(d.db)
	if n != h.Entries {
		d.partial = true
		return fmt.Sprintf("the tables hold %d entries, the head of %s counts %d", n, h.Leader, h.Entries)
	}
	digest := digestEntries(tables)
	switch {
	case digest != h.Digest:
		d.partial = true
		return fmt.Sprintf("the tables do not match the digest of the head of %s", h.Leader)
	case digest == d.head.Digest:
		// The state served, maybe under a new leader or version: nothing
		// to decode. A version alone is not worth a write.
		if h.Leader != d.head.Leader {
			d.dirty = true
		}
		d.head = h
		return ""
	}
	objs, raw, err := decodeObjects(tables, d.objs, d.raw)
	if err != nil {
		return fmt.Sprintf("the state of %s at version %d: %v", h.Leader, h.Version, err)
	}
	d.objs, d.raw, d.head, d.dirty = objs, raw, h, true
	return ""
}

// Fresh says whether the tables matched their head at the last
// [Desired.Current]: false means no manager's state is visible and the
// node serves the last one it verified.
func (d *Desired) Fresh() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fresh
}

// DesiredInfo says where the desired state a node serves comes from, as
// of the last [Desired.Current].
type DesiredInfo struct {
	// Fresh: the tables hold exactly what their head certifies.
	Fresh bool
	// Partial: not fresh because the tables do not hold what their head
	// certifies yet, as while a leader's publish is being gossiped; a
	// state that lasts means entries are lost. Not fresh and not partial
	// means no head, or one that cannot be adopted.
	Partial bool
	// Leader and Version are the publisher and version of the state
	// served; Leader is empty before any state was verified.
	Leader  string
	Version uint64
	Entries int
	// Digest is the digest of the state served, as its head gave it: a
	// state that changes gets another.
	Digest string
	// Trust is the head's trust (see Head.Trust).
	Trust string
	// Stale says why the tables were not adopted, when not Fresh.
	Stale string
	// PersistErr is the last failure to save the state served, until a
	// save succeeds.
	PersistErr string
}

// Info returns where the state served comes from.
func (d *Desired) Info() DesiredInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := DesiredInfo{Fresh: d.fresh, Partial: d.partial, Leader: d.head.Leader, Version: d.head.Version, Entries: d.head.Entries,
		Digest: d.head.Digest, Trust: d.head.Trust}
	if !d.fresh {
		i.Stale = d.stale
	}
	if d.errPer != nil {
		i.PersistErr = d.errPer.Error()
	}
	return i
}

// Warning is the one line docker info-like output shows for a node not
// following a manager, or "" when it is.
func (i DesiredInfo) Warning() string {
	switch {
	case i.Fresh:
		return ""
	case i.Leader == "":
		return "manager unreachable: no desired state known yet"
	}
	return "manager unreachable: serving the last desired state"
}
