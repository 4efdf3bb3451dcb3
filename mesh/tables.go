package mesh

import (
	"encoding/json"

	"github.com/meshd/meshd/mesh/api"
)

// The gossip tables, as the design notes name them. The manager owns the
// first four (the desired state); each node owns its entries in the rest.
const (
	tableNetworks    = "networks"
	tableServices    = "services"
	tableTasks       = "tasks"
	tableTaskStatus  = "task_status"
	tableOverlayPeer = "overlay_peer_table" // per network: (IP, MAC, VTEP) of each endpoint
	tableEndpoints   = "endpoint_table"     // per network: each running task's service, VIP, IP, ports, aliases
)

// endpointRecord is the value of an endpoint_table entry: what load
// balancers and resolvers on every node need to know of a running task.
type endpointRecord struct {
	Name      string           `json:"Name"` // www.1.<taskid>
	Service   string           `json:"Service"`
	ServiceID string           `json:"ServiceID"`
	VIP       string           `json:"VIP,omitempty"` // the service's VIP on this network
	IP        string           `json:"IP"`            // the task's address on this network
	Ports     []api.PortConfig `json:"Ports,omitempty"`
	Aliases   []string         `json:"Aliases,omitempty"`
	// Draining: the task is leaving; load balancers give it weight 0 and
	// resolvers no longer name it.
	Draining bool `json:"Draining,omitempty"`
}

// publisher remembers what the manager last wrote to each table, so a
// publish writes only what changed.
type publisher struct {
	last map[string]map[string][]byte // table → key → value
}

func newPublisher() *publisher { return &publisher{last: map[string]map[string][]byte{}} }

// publishObjects mirrors the manager's state into the tables.
func (d *Daemon) publishObjects(p *publisher) {
	st := d.store.Snapshot()
	publishTable(d, p, tableNodes, st.Nodes)
	publishTable(d, p, tableNetworks, st.Networks)
	publishTable(d, p, tableServices, st.Services)
	publishTable(d, p, tableTasks, st.Tasks)
}

// publishTable writes changed objects and deletes removed ones.
func publishTable[T any](d *Daemon, p *publisher, table string, objs map[string]T) {
	last := p.last[table]
	if last == nil {
		last = map[string][]byte{}
		p.last[table] = last
	}
	for id, o := range objs {
		b, err := json.Marshal(o)
		if err != nil || string(last[id]) == string(b) {
			continue
		}
		if err := d.db.Put(table, "", id, b); err != nil {
			d.log.Error("publish", "table", table, "key", id, "err", err)
			continue
		}
		last[id] = b
	}
	for id := range last {
		if _, ok := objs[id]; ok {
			continue
		}
		if err := d.db.Delete(table, "", id); err != nil {
			d.log.Error("unpublish", "table", table, "key", id, "err", err)
			continue
		}
		delete(last, id)
	}
}

// readTable decodes a manager table as this node sees it.
func readTable[T any](d *Daemon, table string) map[string]T {
	out := map[string]T{}
	for _, e := range d.db.List(table, "") {
		var o T
		if json.Unmarshal(e.Value, &o) == nil {
			out[e.Key] = o
		}
	}
	return out
}

// objects is the desired state as this node knows it: the store on the
// manager, the manager's tables elsewhere.
func (d *Daemon) objects() State {
	if d.isManager() {
		return d.store.Snapshot()
	}
	st := State{Nodes: readTable[api.Node](d, tableNodes), Networks: readTable[api.Network](d, tableNetworks),
		Services: readTable[api.Service](d, tableServices), Tasks: readTable[api.Task](d, tableTasks)}
	return st
}

// taskStatuses returns every node's reports, by task ID.
func (d *Daemon) taskStatuses() map[string]api.TaskStatus {
	return readTable[api.TaskStatus](d, tableTaskStatus)
}
