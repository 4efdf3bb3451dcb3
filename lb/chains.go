package lb

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Every chain the mesh writes, by namespace. A chain exists only while it
// has rules, and is jumped to from built-in chains only while it exists,
// so a namespace with nothing to balance holds nothing of ours.
const (
	// --- ingress_sbox and lb_<net>: both data planes ---

	// chainMarkPre (mangle, from PREROUTING) marks published ports: the
	// mark must be set before routing, and for the iptables plane before
	// nat PREROUTING, where the DNAT happens. The iptables plane marks VIPs
	// here too for the same reason.
	chainMarkPre = "MESH-PREROUTING"
	// chainMarkIn (mangle, from INPUT) marks VIPs for IPVS, as Swarm does:
	// IPVS takes packets at LOCAL_IN, and the VIP is a local address.
	chainMarkIn = "MESH-INPUT"
	// chainMarkOut (mangle, from OUTPUT) marks VIPs for connections the
	// sandbox opens itself (iptables plane; nsenter … curl VIP).
	chainMarkOut = "MESH-OUTPUT"
	// chainSNAT (nat, from POSTROUTING) rewrites the source of balanced
	// connections to the sandbox's own address on the network, so replies
	// come back through the sandbox: "-m ipvs --ipvs" for IPVS, conntrack
	// state DNAT for the iptables plane.
	chainSNAT = "MESH-SNAT"

	// --- ingress_sbox and lb_<net>: iptables data plane only ---

	// chainServices (nat, from PREROUTING and OUTPUT) holds one jump per
	// service, by mark, to the service's chain (kube-proxy's KUBE-SERVICES).
	chainServices = "MESH-SERVICES"
	// svcChainPrefix + hash(key) (nat) is one service's DNAT rotation; it
	// is rewritten whole when its backends change, and only then.
	svcChainPrefix = "MESH-SVC-"
	// chainReject (filter, from INPUT and OUTPUT) refuses new connections
	// to a service without a live backend, which would otherwise reach the
	// sandbox itself. IPVS does this on its own (ICMP port unreachable).
	chainReject = "MESH-REJECT"

	// --- the node's own namespace ---

	// chainIngress (nat, from PREROUTING and OUTPUT for --dst-type LOCAL)
	// DNATs published ports to the ingress sandbox and mode=host ports to
	// their task; (filter, from FORWARD) it accepts that traffic both ways.
	chainIngress = "MESH-INGRESS"
	// chainIngressSNAT (nat, from POSTROUTING) masquerades connections the
	// node opens itself into mesh_gwbridge, so "curl localhost:8888" has
	// a source the sandbox can answer (the caller sets route_localnet).
	chainIngressSNAT = "MESH-INGRESS-SNAT"
	// chainEgress (nat, from POSTROUTING) masquerades what tasks send out
	// through mesh_gwbridge (Swarm's "-s 172.18.0.0/16 ! -o docker_gwbridge
	// -j MASQUERADE").
	chainEgress = "MESH-POSTROUTING"

	// --- the node's own namespace: local bridge networks ---
	// (Docker's single-host networks; see bridge.go.) A second syncer, not
	// the agent's HostSyncer, owns these, so their names share nothing
	// with the host chains above.

	// chainBridgeForward (filter, from FORWARD) is fixed and ordered:
	// isolation first, then the accepts, as Docker's FORWARD runs
	// DOCKER-ISOLATION-STAGE-1 before its per-bridge accepts. A single
	// jump from FORWARD keeps that order whatever else inserts there or
	// which jump a resync restores.
	chainBridgeForward = "MESH-BRIDGE-FORWARD"
	// chainIsolation1 (filter) sends what leaves a bridge for another
	// interface to chainIsolation2, which drops it if that interface is
	// another bridge network (Docker's DOCKER-ISOLATION-STAGE-1/2);
	// --internal networks drop what crosses their subnet's edge here.
	chainIsolation1 = "MESH-ISOLATION-STAGE-1"
	chainIsolation2 = "MESH-ISOLATION-STAGE-2"
	// chainBridgeAccept (filter) holds the per-bridge accepts of Docker's
	// FORWARD chain: replies into the bridge, the bridge's way out, traffic
	// within the bridge, and the jump to chainBridge for published ports.
	chainBridgeAccept = "MESH-BRIDGE-ACCEPT"
	// chainBridge is Docker's DOCKER chain: (nat, from PREROUTING and
	// OUTPUT for --dst-type LOCAL) one DNAT per published port; (filter,
	// from chainBridgeAccept) the accept for it.
	chainBridge = "MESH-BRIDGE"
	// chainBridgePost (nat, from POSTROUTING) masquerades what containers
	// send out and what the node itself sends to a published port.
	chainBridgePost = "MESH-BRIDGE-POSTROUTING"

	// --- task sandboxes ---

	// chainRedirect (nat, from PREROUTING) sends the published port to the
	// target port where they differ.
	chainRedirect = "MESH-REDIRECT"
	// chainDNSOut (nat, from OUTPUT for 127.0.0.11) DNATs queries to
	// 127.0.0.11:53 to the resolver's sockets; chainDNSPost (nat, from
	// POSTROUTING) sets port 53 back on answers (Docker's DOCKER_OUTPUT and
	// DOCKER_POSTROUTING).
	chainDNSOut  = "MESH-DNS-OUTPUT"
	chainDNSPost = "MESH-DNS-POSTROUTING"
	// embeddedDNS is the resolver's address in every task.
	embeddedDNS = "127.0.0.11"
)

// maxChainName is iptables' limit on chain names (XT_EXTENSION_MAXNAMELEN
// less the NUL).
const maxChainName = 28

// hookJumps are the jumps from built-in chains to each top chain; they are
// rendered exactly as iptables-save prints them, so that a full resync can
// recognise them.
var hookJumps = map[chainKey][]jump{
	{"mangle", chainMarkPre}:  {{"mangle", "PREROUTING", newOnly + chainMarkPre}},
	{"mangle", chainMarkIn}:   {{"mangle", "INPUT", newOnly + chainMarkIn}},
	{"mangle", chainMarkOut}:  {{"mangle", "OUTPUT", newOnly + chainMarkOut}},
	{"nat", chainSNAT}:        {{"nat", "POSTROUTING", "-j " + chainSNAT}},
	{"nat", chainServices}:    {{"nat", "PREROUTING", "-j " + chainServices}, {"nat", "OUTPUT", "-j " + chainServices}},
	{"filter", chainReject}:   {{"filter", "INPUT", "-j " + chainReject}, {"filter", "OUTPUT", "-j " + chainReject}},
	{"nat", chainIngress}:     {{"nat", "PREROUTING", localOnly + chainIngress}, {"nat", "OUTPUT", localOnly + chainIngress}},
	{"filter", chainIngress}:  {{"filter", "FORWARD", "-j " + chainIngress}},
	{"nat", chainIngressSNAT}: {{"nat", "POSTROUTING", "-j " + chainIngressSNAT}},
	{"nat", chainRedirect}:    {{"nat", "PREROUTING", "-j " + chainRedirect}},
	{"nat", chainEgress}:      {{"nat", "POSTROUTING", "-j " + chainEgress}},
	{"nat", chainDNSOut}:      {{"nat", "OUTPUT", "-d " + embeddedDNS + "/32 -j " + chainDNSOut}},
	{"nat", chainDNSPost}:     {{"nat", "POSTROUTING", "-d " + embeddedDNS + "/32 -j " + chainDNSPost}},
	// chainBridgeForward is an own (ordered) chain, which has no jumps of
	// its own: its jump hangs on chainBridgeAccept, which has an entry
	// (the bridge's own traffic) exactly while there is a network, as
	// chainBridgeForward does.
	{"filter", chainBridgeAccept}: {{"filter", "FORWARD", "-j " + chainBridgeForward}},
	{"nat", chainBridge}:          {{"nat", "PREROUTING", localOnly + chainBridge}, {"nat", "OUTPUT", localOnly + chainBridge}},
	{"nat", chainBridgePost}:      {{"nat", "POSTROUTING", "-j " + chainBridgePost}},
}

const localOnly = "-m addrtype --dst-type LOCAL -j "

// newOnly keeps the packets of established connections out of the mark
// chains: a mark decides only where a new connection goes (IPVS looks an
// established one up by its addresses; the iptables plane's DNAT is
// conntrack's), so they would walk the chain, two rules a service, for
// nothing. This keeps the cost of a packet the same at 1 service and at
// 1000; the MARK rules' counters count connections, not packets.
const newOnly = "-m conntrack ! --ctstate RELATED,ESTABLISHED -j "

// owner says which chains one kind of syncer owns: those it may create,
// and remove when it finds them unwanted (leftovers of an earlier run).
type owner struct {
	fixed    map[chainKey]bool
	prefixes []chainKey // chain is a name prefix
}

func (o owner) owns(k chainKey) bool {
	if o.fixed[k] {
		return true
	}
	if p, ok := bucketParent(k); ok && o.fixed[p] {
		return true // a bucket of one of ours (buckets.go)
	}
	for _, p := range o.prefixes {
		if p.table == k.table && strings.HasPrefix(k.chain, p.chain) {
			return true
		}
	}
	return false
}

var (
	sandboxOwner = owner{fixed: map[chainKey]bool{
		{"mangle", chainMarkPre}: true, {"mangle", chainMarkIn}: true, {"mangle", chainMarkOut}: true,
		{"nat", chainSNAT}: true, {"nat", chainServices}: true, {"filter", chainReject}: true,
	}, prefixes: []chainKey{{"nat", svcChainPrefix}}}
	hostOwner = owner{fixed: map[chainKey]bool{
		{"nat", chainIngress}: true, {"filter", chainIngress}: true, {"nat", chainIngressSNAT}: true,
		{"nat", chainEgress}: true,
	}}
	bridgeOwner = owner{fixed: map[chainKey]bool{
		{"filter", chainBridgeForward}: true, {"filter", chainIsolation1}: true, {"filter", chainIsolation2}: true,
		{"filter", chainBridgeAccept}: true, {"filter", chainBridge}: true,
		{"nat", chainBridge}: true, {"nat", chainBridgePost}: true,
	}}
	taskOwner = owner{fixed: map[chainKey]bool{
		{"nat", chainRedirect}: true, {"nat", chainDNSOut}: true, {"nat", chainDNSPost}: true,
	}}
)

// svcChain names a service's chain: the prefix and 8 base32 characters of
// the SHA-256 of its key (40 bits; the sandbox refuses a collision). The
// name may change between versions: a full resync removes chains of ours
// it does not want.
func svcChain(key string) string {
	sum := sha256.Sum256([]byte(key))
	return svcChainPrefix + base32.StdEncoding.EncodeToString(sum[:])[:8]
}

// comment makes s safe as an unquoted "-m comment --comment" argument, so
// rules read back from iptables-save match what was written.
func comment(s string) string {
	if s == "" {
		return "-"
	}
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_./:@", c) >= 0
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
