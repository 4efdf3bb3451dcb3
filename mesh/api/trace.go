package api

import (
	"context"
	"net/http"
)

// TraceRequest asks a node to trace a new connection (POST /v1/trace)
// through the kernel snapshots given: the nodes' own, as the caller
// gathered them (meshctl, in a lab, from every node's socket). Without
// snapshots the answering node traces through its own alone.
type TraceRequest struct {
	// From is where the connection starts: "client" (Src is then its
	// address), a node's name (its own namespace) or a task's name
	// (www.1).
	From string `json:"From"`
	Src  string `json:"Src,omitempty"`
	// To is ADDRESS:PORT[/udp].
	To        string           `json:"To"`
	Snapshots []KernelSnapshot `json:"Snapshots,omitempty"`
}

// CheckSizes bounds the request's short fields; the snapshots are held
// to the body's cap.
func (r TraceRequest) CheckSizes() error {
	return checkLens(sizeCheck{"trace source", r.From, MaxRefLen}, sizeCheck{"trace source address", r.Src, MaxRefLen},
		sizeCheck{"trace destination", r.To, MaxHostPortLen})
}

// Trace is the path of a new connection, hop by hop.
type Trace struct {
	From  string     `json:"From"`
	Src   string     `json:"Src"`
	To    string     `json:"To"`
	Proto string     `json:"Proto"`
	Hops  []TraceHop `json:"Hops"`
	// Backend is where the next connection ends (the backend a rotation
	// or IPVS picks, after any REDIRECT); Backends are all a balancer
	// could pick.
	Backend  string   `json:"Backend,omitempty"`
	Backends []string `json:"Backends,omitempty"`
	// Reached says the connection is delivered to a local socket; else
	// Stopped says at which hop and why.
	Reached bool   `json:"Reached"`
	Stopped string `json:"Stopped,omitempty"`
}

// Trace hop kinds.
const (
	HopArrive  = "in"        // the packet enters a namespace by an interface
	HopRule    = "rule"      // an iptables rule matched
	HopIPVS    = "ipvs"      // an IPVS service took the connection
	HopSet     = "ipset"     // the ipset member a SET rule took the mark from
	HopFlow    = "flowtable" // the namespace's flowtable carries the DNATed connection once established
	HopLink    = "link"      // a veth, a bridge port
	HopVXLAN   = "vxlan"     // encapsulated to another node's VTEP
	HopDeliver = "deliver"   // delivered to a socket of the namespace
	HopLeave   = "leave"     // left the nodes traced
	HopStop    = "stop"      // cannot go on: Detail says why
)

// TraceHop is one hop of a trace.
type TraceHop struct {
	Node  string `json:"Node"`
	Netns string `json:"Netns"`
	Kind  string `json:"Kind"`
	// Table and Rule are a rule hop's, Rule as iptables -S prints it
	// ("-A MESH-INGRESS -p tcp … -j DNAT --to-destination …"), with its
	// packet and byte counters at the time of the snapshot.
	Table   string `json:"Table,omitempty"`
	Rule    string `json:"Rule,omitempty"`
	Packets uint64 `json:"Packets"`
	Bytes   uint64 `json:"Bytes"`
	// Detail says what happened in words: the interfaces, the VNI and
	// VTEP, the backend picked, why it stops.
	Detail string `json:"Detail,omitempty"`
	// Packet is the packet after the hop: "SRC > DST:PORT".
	Packet string `json:"Packet"`
	// Command shows the hop's state on the machine.
	Command string `json:"Command,omitempty"`
	// Moved is set by meshctl trace --probe on a rule hop whose packet
	// counter a real connection moved.
	Moved bool `json:"Moved,omitempty"`
}

// Trace asks the answering node to trace req.
func (c *Client) Trace(ctx context.Context, req TraceRequest) (Trace, error) {
	var out Trace
	err := c.do(ctx, http.MethodPost, "/v1/trace", req, &out)
	return out, err
}
