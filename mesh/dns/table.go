package dns

import (
	"net/netip"
	"strings"
)

// Endpoint is one task's attachment to one network, as the gossiped
// endpoint table describes it. The agent turns every entry it sees into
// one Endpoint and builds a [Table] from all of them.
type Endpoint struct {
	// NetworkID identifies the network; a [Querier] lists these.
	NetworkID string
	// Network is the network's name. It qualifies names (www.ovnet) and
	// ends PTR answers (www.1.<taskid>.ovnet).
	Network string
	// Ingress marks the ingress network. Swarm gives it no records, and
	// neither does [NewTable]: such endpoints are dropped.
	Ingress bool
	// Service is the service's name; empty for a task of no service.
	Service string
	// TaskName is the task's name, www.1.<taskid>. It answers for the task
	// IP, and is the PTR answer for that IP. Empty: the first TaskAlias
	// names the PTR answer instead (Docker does this for an anonymous
	// container with --net-alias, as the tutorial's "hello.prod" shows).
	TaskName string
	// IP is the task's address on the network.
	IP netip.Addr
	// VIP is the service's virtual IP on the network. Invalid (the zero
	// Addr) for an --endpoint-mode dnsrr service: its name then answers
	// with every task IP.
	VIP netip.Addr
	// Aliases are the service's aliases on this network. Each answers like
	// the service name, and tasks.<alias> like tasks.<service>.
	Aliases []string
	// TaskAliases are this task's own aliases on this network (--net-alias
	// of meshctl run). Several tasks may share one: it then answers with
	// all their IPs.
	TaskAliases []string
}

// Querier is the task a resolver answers: what it may see.
type Querier struct {
	// Networks are the IDs of the networks the task is attached to, in
	// attach order. A name is looked up on each in turn and the first
	// network that has it answers. Empty: nothing is answered locally and
	// every query is forwarded.
	Networks []string
}

// Table is an immutable snapshot of every record, indexed per network.
// Build it with [NewTable] and install it with [Server.SetTable]; it is
// never changed afterwards, so any number of goroutines may read it.
type Table struct {
	nets map[string]*netRecords // by network ID
}

// netRecords holds one network's names and reverse names.
type netRecords struct {
	name  string                  // network name as given, for PTR answers
	lower string                  // lowercased name, to match qualified names
	names map[string][]netip.Addr // lowercased name → addresses, each once
	ptr   map[netip.Addr]string   // address → name without the network
}

// NewTable indexes eps. Names are case-insensitive; addresses under one
// name keep the order of eps and appear once. When two endpoints claim
// the PTR answer of one address, the first wins. eps is not retained.
func NewTable(eps []Endpoint) *Table {
	t := &Table{nets: map[string]*netRecords{}}
	for i := range eps {
		e := &eps[i]
		if e.Ingress || !e.IP.IsValid() {
			continue
		}
		n := t.nets[e.NetworkID]
		if n == nil {
			n = &netRecords{name: e.Network, lower: strings.ToLower(e.Network),
				names: map[string][]netip.Addr{}, ptr: map[netip.Addr]string{}}
			t.nets[e.NetworkID] = n
		}
		n.addEndpoint(e)
	}
	return t
}

// addEndpoint adds the records of one endpoint, as Swarm's service
// binding does: tasks.<svc> and tasks.<alias> hold task IPs; <svc> and
// each alias hold the VIP, or the task IPs without one; the task name and
// task aliases hold the task IP.
func (n *netRecords) addEndpoint(e *Endpoint) {
	ip, vip := e.IP.Unmap(), e.VIP.Unmap()
	svcAddr := vip
	if !vip.IsValid() {
		svcAddr = ip
	}
	for _, svc := range append([]string{e.Service}, e.Aliases...) {
		if svc != "" { // no service: no service records
			n.add(svc, svcAddr)
			n.add("tasks."+svc, ip)
		}
	}
	if e.Service != "" && vip.IsValid() {
		n.setPTR(vip, e.Service)
	}
	if e.TaskName != "" {
		n.add(e.TaskName, ip)
		n.setPTR(ip, e.TaskName)
	}
	for _, a := range e.TaskAliases {
		if a != "" {
			n.add(a, ip)
		}
	}
	if e.TaskName == "" && len(e.TaskAliases) > 0 && e.TaskAliases[0] != "" {
		n.setPTR(ip, e.TaskAliases[0])
	}
}

func (n *netRecords) add(name string, a netip.Addr) {
	key := canonical(name)
	for _, have := range n.names[key] {
		if have == a {
			return
		}
	}
	n.names[key] = append(n.names[key], a)
}

func (n *netRecords) setPTR(a netip.Addr, name string) {
	if _, ok := n.ptr[a]; !ok {
		n.ptr[a] = strings.TrimSuffix(name, ".")
	}
}

// canonical is the lookup form of a name: lowercased, no trailing dot.
func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// lookup returns the addresses of name for q, following Swarm: the whole
// name is tried on each attached network in order, then, for a.b.c, "a.b"
// on a network named "c", then "a" on one named "b.c". Found reports
// whether the name exists, even when it has no address of the wanted
// family (the caller filters families).
func (t *Table) lookup(q *Querier, name string) (addrs []netip.Addr, found bool) {
	if t == nil {
		return nil, false
	}
	name = canonical(name)
	host, network := name, ""
	for {
		for _, id := range q.Networks {
			n := t.nets[id]
			if n == nil || (network != "" && n.lower != network) {
				continue
			}
			if a, ok := n.names[host]; ok {
				return a, true
			}
		}
		i := strings.LastIndexByte(host, '.')
		if i <= 0 {
			return nil, false
		}
		host, network = name[:i], name[i+1:]
	}
}

// reverse returns the PTR answer for a, <name>.<network>, from the first
// attached network that knows a.
func (t *Table) reverse(q *Querier, a netip.Addr) (string, bool) {
	if t == nil {
		return "", false
	}
	for _, id := range q.Networks {
		n := t.nets[id]
		if n == nil {
			continue
		}
		if name, ok := n.ptr[a]; ok {
			return name + "." + n.name, true
		}
	}
	return "", false
}

// Merge is one table holding the networks of every table given, for a
// resolver that sees networks of two owners (a swarm task connected to a
// bridge network: the agent's overlays and the container engine's
// bridges). Network IDs are unique across owners; were one in two tables,
// the first table's records of it are kept. Nil tables are skipped.
func Merge(tables ...*Table) *Table {
	out := &Table{nets: map[string]*netRecords{}}
	for _, t := range tables {
		if t == nil {
			continue
		}
		for id, n := range t.nets {
			if _, ok := out.nets[id]; !ok {
				out.nets[id] = n // records are never changed once built
			}
		}
	}
	return out
}
