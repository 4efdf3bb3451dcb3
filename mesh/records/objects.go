package records

import (
	"encoding/json"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// Objects is the desired state: what the manager owns and publishes.
type Objects struct {
	Nodes    map[string]api.Node    `json:"Nodes"` // by node ID; Status is not stored
	Networks map[string]api.Network `json:"Networks"`
	Services map[string]api.Service `json:"Services"`
	Tasks    map[string]api.Task    `json:"Tasks"` // Status is not stored
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

// Publisher mirrors the manager's objects into the tables. It remembers
// what it last wrote, so a publish writes only what changed.
type Publisher struct {
	last map[string]map[string][]byte // table → key → value
}

// NewPublisher returns a publisher that has written nothing yet.
func NewPublisher() *Publisher { return &Publisher{last: map[string]map[string][]byte{}} }

// Publish writes changed objects and deletes removed ones. It goes on past
// a failed write, which the next publish retries, and returns the first
// error with its table and key.
func (p *Publisher) Publish(db DB, o Objects) error {
	return firstErr(publish(p, db, TableNodes, o.Nodes), publish(p, db, TableNetworks, o.Networks),
		publish(p, db, TableServices, o.Services), publish(p, db, TableTasks, o.Tasks))
}

func publish[T any](p *Publisher, db DB, table string, objs map[string]T) error {
	last := p.last[table]
	if last == nil {
		last = map[string][]byte{}
		p.last[table] = last
	}
	var errs []error
	for id, o := range objs {
		b, err := json.Marshal(o)
		if err != nil || string(last[id]) == string(b) {
			continue
		}
		if err := db.Put(table, "", id, b); err != nil {
			errs = append(errs, tableErr("publish", table, id, err))
			continue
		}
		last[id] = b
	}
	for id := range last {
		if _, ok := objs[id]; ok {
			continue
		}
		if err := db.Delete(table, "", id); err != nil {
			errs = append(errs, tableErr("unpublish", table, id, err))
			continue
		}
		delete(last, id)
	}
	return firstErr(errs...)
}

// TaskStatuses returns every node's task reports, by task ID.
func TaskStatuses(db DB) map[string]api.TaskStatus {
	return readTable[api.TaskStatus](db, TableTaskStatus)
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
