package api

import (
	"context"
	"net/http"
)

// Check is one node's answer to meshctl check (GET /v1/check): its
// desired state against its kernel, and a digest of each of its gossip
// tables, which are alike on every node once gossip has converged.
type Check struct {
	Node string `json:"Node"` // the node's name, as node ls shows it
	// Diffs are the differences between what the node's agent would
	// program and what its kernel holds, by namespace; none when the node
	// is in step.
	Diffs []CheckDiff `json:"Diffs"`
	// Tables are the digests of the node's gossip tables, by table name.
	Tables []TableDigest `json:"Tables"`
	// RepairPaused says that the test hook paused the agent's repairs
	// (see [Client.PauseRepair]): what differs stays so.
	RepairPaused bool `json:"RepairPaused,omitempty"`
}

// Kinds of [CheckDiff].
const (
	DiffNetns   = "netns"   // a namespace file under <run-dir>/netns
	DiffLink    = "link"    // an interface of a namespace
	DiffFDB     = "fdb"     // a forwarding entry on vxlan0
	DiffNeigh   = "neigh"   // a neighbour entry on vxlan0
	DiffVIP     = "vip"     // a service VIP on a sandbox's eth0
	DiffChain   = "chain"   // one of meshd's iptables chains
	DiffRule    = "rule"    // an iptables rule in one, or a jump to one
	DiffIPVS    = "ipvs"    // an IPVS fwmark service
	DiffBackend = "backend" // a destination of an IPVS service
	// DiffFlowTable is a sandbox's nftables table of meshd's, "table inet
	// meshd", or a line of it as "nft list table inet meshd" prints it
	// ("chain balanced: ct status dnat …"): its flowtable.
	DiffFlowTable = "flowtable"
	// DiffError is something the check could not read; it counts as a
	// difference, since it cannot say the node is in step.
	DiffError = "error"
)

// CheckDiff is one difference between a node's desired state and its
// kernel. The text form, one a line, is
// "NODE  NETNS  KIND STATE  OBJECT  (WHERE)".
type CheckDiff struct {
	// Netns is the namespace's name under <run-dir>/netns ("1-<netid>",
	// "ingress_sbox", "lb_<netid>", a task's short ID), or "host" for
	// the node's own.
	Netns string `json:"Netns"`
	Kind  string `json:"Kind"`  // one of the Diff kinds
	State string `json:"State"` // "missing", "extra" or "differs"; "failed" for DiffError
	// Object names what differs as the tools that show it print it:
	// "02:42:0a:ff:00:05 dst 192.168.33.11" (bridge fdb), "10.255.0.5
	// lladdr 02:42:0a:ff:00:05" (ip neigh), "10.0.0.2/32" (a VIP), a rule as
	// iptables -S prints it, "FWM 256 -> 10.255.0.5 weight 1" (ipvsadm);
	// what is wanted, or for "extra" what the kernel holds.
	Object string `json:"Object"`
	// Where is the device ("vxlan0", "eth0"), the iptables table, "ipvs",
	// or the namespace's path for a namespace.
	Where string `json:"Where,omitempty"`
	// Have is, for "differs", what the kernel holds instead.
	Have string `json:"Have,omitempty"`
}

// TableDigest is one gossip table as a node holds it: its live entries
// and a hash of them (see gossip.TableDigest).
type TableDigest struct {
	Table   string `json:"Table"`
	Entries int    `json:"Entries"`
	Digest  string `json:"Digest"`
}

// RepairPause is the body of POST /v1/debug/repair.
type RepairPause struct {
	Paused bool `json:"Paused"`
}

// Check compares the answering node's desired state with its kernel.
func (c *Client) Check(ctx context.Context) (Check, error) {
	var out Check
	err := c.do(ctx, http.MethodGet, "/v1/check", nil, &out)
	return out, err
}

// PauseRepair pauses (or resumes) the answering node's agent: while
// paused it programs nothing, so a change made by hand to what it built
// stays for a test to see (meshctl check, trace). It is a test hook: the
// node refuses it unless meshd runs with --test-hooks.
func (c *Client) PauseRepair(ctx context.Context, paused bool) error {
	return c.do(ctx, http.MethodPost, "/v1/debug/repair", RepairPause{Paused: paused}, nil)
}
