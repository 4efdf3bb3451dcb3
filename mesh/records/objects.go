package records

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/api"
)

// Objects is the desired state: what the manager owns and publishes.
type Objects struct {
	Nodes    map[string]api.Node    `json:"Nodes"` // by node ID; Status is not stored
	Networks map[string]api.Network `json:"Networks"`
	Services map[string]api.Service `json:"Services"`
	Tasks    map[string]api.Task    `json:"Tasks"` // Status is stored only once a task is shut down
}

// Init makes every map non-nil.
func (o *Objects) Init() {
	if o.Nodes == nil {
		o.Nodes = map[string]api.Node{}
	}
	if o.Networks == nil {
		o.Networks = map[string]api.Network{}
	}
	if o.Services == nil {
		o.Services = map[string]api.Service{}
	}
	if o.Tasks == nil {
		o.Tasks = map[string]api.Task{}
	}
}

// ReadObjects decodes the manager's tables as this node sees them.
func ReadObjects(db DB) Objects {
	return Objects{Nodes: ReadNodes(db), Networks: readTable[api.Network](db, TableNetworks),
		Services: readTable[api.Service](db, TableServices), Tasks: readTable[api.Task](db, TableTasks)}
}

// ReadNodes decodes the manager's node records alone, for node ls.
func ReadNodes(db DB) map[string]api.Node { return readTable[api.Node](db, TableNodes) }

func readTable[T any](db DB, table string) map[string]T {
	out := map[string]T{}
	for _, e := range db.List(table, "") {
		var o T
		if json.Unmarshal(e.Value, &o) == nil {
			out[e.Key] = o
		}
	}
	return out
}

// Publisher mirrors the leader's objects into the tables and certifies
// them with a head (see [Desired]). It remembers what it last wrote, so a
// publish writes only what changed.
type Publisher struct {
	last  map[string]map[string][]byte // table → key → value
	swept bool                         // the tables held nothing this publisher did not write
	head  Head                         // the last head written; zero before any
	// written is the version whose objects are all in last, written
	// without error (the sweep included); zero before any.
	written uint64
}

// NewPublisher returns a publisher that has written nothing yet: a new
// leader, or a manager that restarted.
func NewPublisher() *Publisher { return &Publisher{last: map[string]map[string][]byte{}} }

// Publish writes the objects that changed and deletes the removed ones,
// then writes the head when anything changed or the one in the tables is
// missing, another node's, or not the one it would write. version is the
// manager state's version, which never goes back.
//
// A new publisher first deletes every entry of the four tables that o
// does not hold, whoever owns it: a former leader's leftovers would
// otherwise stay, and since a gossip delete is a tombstone owned by the
// deleter with a later clock, it wins over the former owner's copy. It
// also rewrites every object, so the whole state is this node's and does
// not vanish with a former leader.
//
// It goes on past a failed write, which the next publish retries, and
// returns the first error with its table and key. The head is then not
// written: it would certify tables that do not hold o.
//
// A version names one state: o is the same whenever version is. The
// leader publishes every second, mostly the version it wrote last; that
// publish only checks the head, rather than encode every object to find
// nothing changed (2.5-2.8 ms at 1000 services, BenchmarkPublish).
func (p *Publisher) Publish(db DB, o Objects, version uint64, trust string) error {
	if version != 0 && version == p.written {
		return p.publishHead(db, version, trust, false)
	}
	nodes, err1 := encodeTable(TableNodes, o.Nodes)
	nets, err2 := encodeTable(TableNetworks, o.Networks)
	svcs, err3 := encodeTable(TableServices, o.Services)
	tasks, err4 := encodeTable(TableTasks, o.Tasks)
	if err := firstErr(err1, err2, err3, err4); err != nil {
		return err
	}
	want := map[string]map[string][]byte{TableNodes: nodes, TableNetworks: nets, TableServices: svcs, TableTasks: tasks}
	var errs []error
	changed := false
	if !p.swept {
		c, err := sweepStale(db, want)
		changed = changed || c
		errs = append(errs, err)
		p.swept = err == nil
	}
	for _, table := range desiredTables {
		c, err := p.publishTable(db, table, want[table])
		changed = changed || c
		errs = append(errs, err)
	}
	if err := firstErr(errs...); err != nil {
		return err
	}
	p.written = version
	return p.publishHead(db, version, trust, changed)
}

// MaxRecordSize is the largest object a table entry carries, encoded: the
// gossip store's limit on a value.
const MaxRecordSize = gossip.MaxValueSize

// CheckSize refuses, with a 400, an object that once encoded would not fit
// a table entry: the manager's last check before it accepts a write, so
// that nothing is replicated that could not be published. kind and name
// say what it is in the error ("service", "www").
func CheckSize(kind, name string, o any) error {
	b, err := encode(o)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", kind, name, err)
	}
	if len(b) > MaxRecordSize {
		return api.Invalid("%s %s is %d bytes encoded, over the %d a table entry carries", kind, api.Clip(name), len(b), MaxRecordSize)
	}
	return nil
}

// encode is how every object is written into its table.
func encode(o any) ([]byte, error) { return json.Marshal(o) }

func encodeTable[T any](table string, objs map[string]T) (map[string][]byte, error) {
	out := make(map[string][]byte, len(objs))
	for id, o := range objs {
		b, err := encode(o)
		if err != nil {
			return nil, tableErr("encode", table, id, err)
		}
		out[id] = b
	}
	return out, nil
}

// sweepStale deletes the entries of the four tables that want does not
// hold. It reports whether it deleted any.
func sweepStale(db DB, want map[string]map[string][]byte) (bool, error) {
	var errs []error
	changed := false
	for _, table := range desiredTables {
		for _, e := range db.List(table, "") {
			if _, ok := want[table][e.Key]; ok {
				continue
			}
			if err := db.Delete(table, "", e.Key); err != nil {
				errs = append(errs, tableErr("unpublish", table, e.Key, err))
				continue
			}
			changed = true
		}
	}
	return changed, firstErr(errs...)
}

func (p *Publisher) publishTable(db DB, table string, want map[string][]byte) (bool, error) {
	last := p.last[table]
	if last == nil {
		last = map[string][]byte{}
		p.last[table] = last
	}
	var errs []error
	changed := false
	for id, b := range want {
		if old, ok := last[id]; ok && string(old) == string(b) {
			continue
		}
		if err := db.Put(table, "", id, b); err != nil {
			errs = append(errs, tableErr("publish", table, id, err))
			continue
		}
		last[id], changed = b, true
	}
	for id := range last {
		if _, ok := want[id]; ok {
			continue
		}
		if err := db.Delete(table, "", id); err != nil {
			errs = append(errs, tableErr("unpublish", table, id, err))
			continue
		}
		delete(last, id)
		changed = true
	}
	return changed, firstErr(errs...)
}

// publishHead certifies what the tables now hold from this publisher.
func (p *Publisher) publishHead(db DB, version uint64, trust string, changed bool) error {
	h := p.head
	if changed || h.Digest == "" {
		d := newDigester()
		for _, table := range desiredTables {
			for _, key := range slices.Sorted(maps.Keys(p.last[table])) {
				d.add(table, key, p.last[table][key])
			}
		}
		h.Digest, h.Entries = d.sum(), d.n
	}
	h.Leader, h.Version, h.Trust = db.LocalName(), version, trust
	if !changed {
		if e, ok := db.Get(TableCluster, "", HeadKey); ok && e.Owner == h.Leader {
			if cur, err := decodeHead(e.Value); err == nil && cur == h {
				p.head = h
				return nil
			}
		}
	}
	b, err := encodeHead(h)
	if err != nil {
		return err
	}
	if err := db.Put(TableCluster, "", HeadKey, b); err != nil {
		return tableErr("publish", TableCluster, HeadKey, err)
	}
	p.head = h
	return nil
}

// TaskStatuses returns every node's task reports, by task ID.
func TaskStatuses(db DB) map[string]api.TaskStatus {
	return readTable[api.TaskStatus](db, TableTaskStatus)
}

// TaskStatus returns one task's report, if its node made one that decodes.
func TaskStatus(db DB, taskID string) (api.TaskStatus, bool) {
	var s api.TaskStatus
	e, ok := db.Get(TableTaskStatus, "", taskID)
	if !ok || json.Unmarshal(e.Value, &s) != nil {
		return api.TaskStatus{}, false
	}
	return s, true
}

// PutTaskStatus reports a task's state, stamped now.
func PutTaskStatus(db DB, taskID string, s api.TaskStatus, now time.Time) error {
	s.Timestamp = now.UTC()
	b, err := json.Marshal(s)
	if err != nil {
		return tableErr("encode", TableTaskStatus, taskID, err)
	}
	return db.Put(TableTaskStatus, "", taskID, b)
}

// DeleteTaskStatus forgets a task's report; absent is fine.
func DeleteTaskStatus(db DB, taskID string) error {
	return db.Delete(TableTaskStatus, "", taskID)
}

// HostPortTaken says whether a host port of nodeID is published by the
// cluster: by a service (ingress publishes on every node; host mode is
// counted everywhere too, wherever its tasks go) or by one of nodeID's
// containers on a swarm network.
func (o Objects) HostPortTaken(nodeID, proto string, port uint16) bool {
	for _, svc := range o.Services {
		for _, p := range svc.Endpoint.Ports {
			if p.Protocol == proto && p.PublishedPort == port {
				return true
			}
		}
	}
	for _, t := range o.Tasks {
		if t.Standalone == nil || t.NodeID != nodeID {
			continue
		}
		for _, p := range t.Standalone.Ports {
			if p.Proto == proto && p.HostPort == port {
				return true
			}
		}
	}
	return false
}
