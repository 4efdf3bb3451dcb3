package records

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/meshd/meshd/mesh/api"
)

// Endpoint is an endpoint_table entry: what load balancers and resolvers
// on every node need to know of a running task on one network.
type Endpoint struct {
	Name      string // www.1.<taskid>
	Service   string
	ServiceID string
	VIP       netip.Addr // the service's VIP on this network; invalid in dnsrr mode
	IP        netip.Addr // the task's address on this network
	Ports     []api.PortConfig
	Aliases   []string
	// Draining: the task is leaving; load balancers give it weight 0 and
	// resolvers no longer name it.
	Draining bool
}

// endpointWire is the JSON on the wire; its field names MUST NOT change.
type endpointWire struct {
	Name      string           `json:"Name"`
	Service   string           `json:"Service"`
	ServiceID string           `json:"ServiceID"`
	VIP       string           `json:"VIP,omitempty"`
	IP        string           `json:"IP"`
	Ports     []api.PortConfig `json:"Ports,omitempty"`
	Aliases   []string         `json:"Aliases,omitempty"`
	Draining  bool             `json:"Draining,omitempty"`
}

// EndpointEntry is an endpoint with where it was found.
type EndpointEntry struct {
	Network string // the entry's scope: the network ID
	TaskID  string // the entry's key
	Owner   string // the node that runs the task
	Endpoint
}

func encodeEndpoint(e Endpoint) ([]byte, error) {
	w := endpointWire{Name: e.Name, Service: e.Service, ServiceID: e.ServiceID, IP: e.IP.String(),
		Ports: e.Ports, Aliases: e.Aliases, Draining: e.Draining}
	if e.VIP.IsValid() {
		w.VIP = e.VIP.String()
	}
	return json.Marshal(w)
}

func decodeEndpoint(b []byte) (Endpoint, error) {
	var w endpointWire
	if err := json.Unmarshal(b, &w); err != nil {
		return Endpoint{}, err
	}
	ip, err := netip.ParseAddr(w.IP)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint IP %q: %w", w.IP, err)
	}
	e := Endpoint{Name: w.Name, Service: w.Service, ServiceID: w.ServiceID, IP: ip, Ports: w.Ports,
		Aliases: w.Aliases, Draining: w.Draining}
	if w.VIP != "" {
		if e.VIP, err = netip.ParseAddr(w.VIP); err != nil {
			return Endpoint{}, fmt.Errorf("endpoint VIP %q: %w", w.VIP, err)
		}
	}
	return e, nil
}

// PutEndpoint announces a task's endpoint on a network.
func PutEndpoint(db DB, netID, taskID string, e Endpoint) error {
	b, err := encodeEndpoint(e)
	if err != nil {
		return fmt.Errorf("encode endpoint %s: %w", e.Name, err)
	}
	return db.Put(TableEndpoints, netID, taskID, b)
}

// DeleteEndpoint withdraws a task's endpoint on a network; absent is fine.
func DeleteEndpoint(db DB, netID, taskID string) error {
	return db.Delete(TableEndpoints, netID, taskID)
}

// HasEndpoint says whether a task's endpoint on a network is announced.
func HasEndpoint(db DB, netID, taskID string) bool {
	_, ok := db.Get(TableEndpoints, netID, taskID)
	return ok
}

// Endpoints lists the endpoints of a network, or of every network with
// AllNetworks. Entries that do not decode are left out.
func Endpoints(db DB, netID string) []EndpointEntry {
	var out []EndpointEntry
	for _, e := range db.List(TableEndpoints, netID) {
		ep, err := decodeEndpoint(e.Value)
		if err != nil {
			continue
		}
		out = append(out, EndpointEntry{Network: e.Scope, TaskID: e.Key, Owner: e.Owner, Endpoint: ep})
	}
	return out
}
