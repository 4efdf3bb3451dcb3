// Package lb owns the load-balancing side of the mesh: the data plane that
// spreads a service's traffic over its tasks (IPVS where the kernel has it,
// an iptables plane with the same fwmarks where it does not), the ingress
// sandbox, the per-network LB sandboxes, the host chains and the task
// redirects.
//
// # The packet path
//
// A connection to a published port, and the netfilter hooks it meets
// (chains in capitals are ours; see chains.go for why each exists):
//
//	client 203.0.113.7 ──► node 192.168.0.10:8888                (any node)
//	┌ host namespace ─────────────────────────────────────────────────────────────┐
//	│ nat PREROUTING  -m addrtype --dst-type LOCAL ─► MESH-INGRESS                │
//	│                 -p tcp --dport 8888 DNAT 172.18.0.2:8888                    │
//	│ filter FORWARD ─► MESH-INGRESS  -o mesh_gwbridge ctstate DNAT ACCEPT (+ -i) │
//	│ (curl localhost:8888: nat OUTPUT ─► MESH-INGRESS, then                      │
//	│  nat POSTROUTING ─► MESH-INGRESS-SNAT  -o mesh_gwbridge MASQUERADE)         │
//	└──────────────────────────────── mesh_gwbridge ──────────────────────────────┘
//	┌ ingress_sbox ───────────────────────────────────────────────────────────────┐
//	│ mangle PREROUTING ─► MESH-PREROUTING  --dport 8888 MARK 0x100  (new conns.) │
//	│ IPVS plane:     mangle INPUT ─► MESH-INPUT  -d VIP MARK 0x100 (Swarm's)     │
//	│                 LOCAL_IN: IPVS FWM 256 rr Masq ─► 10.255.0.5 (port kept)    │
//	│ iptables plane: mangle PREROUTING/OUTPUT ─► -d VIP MARK 0x100               │
//	│                 nat PREROUTING/OUTPUT ─► MESH-SERVICES --mark 0x100         │
//	│                 ─► MESH-SVC-T3B7FZFQ  nth 2: DNAT 10.255.0.5 | DNAT .6      │
//	│                 filter INPUT/OUTPUT ─► MESH-REJECT (marked, not DNATed)     │
//	│ nat POSTROUTING ─► MESH-SNAT  -d 10.255.0.0/16 -m ipvs --ipvs          ┐    │
//	│                               (iptables: -m conntrack --ctstate DNAT)  ┘    │
//	│                               SNAT --to-source 10.255.0.2                   │
//	└──────────────────────────────── eth0 ─► overlay (br0, vxlan0) ──────────────┘
//	┌ task sandbox (10.255.0.5, maybe on another node) ───────────────────────────┐
//	│ nat PREROUTING ─► MESH-REDIRECT  -d 10.255.0.5 --dport 8888 REDIRECT 80     │
//	└─────────────────────────────────────────────────────────────────────────────┘
//
// A task reaching a VIP (10.0.0.2 on ovnet) takes the same sandbox path in
// lb_<net>, without published ports: mark by VIP, IPVS or DNAT, SNAT to
// the LB sandbox's address. mode=host ports skip the sandboxes: the host
// DNATs straight to the task's gateway-bridge address and target port,
// without SNAT, so the task sees the client's address.
//
// # Where the marks go
//
// IPVS takes packets at LOCAL_IN, so for IPVS the VIP mark can wait for
// mangle INPUT, as in Swarm (and what the tutorials show). The iptables
// plane DNATs in nat PREROUTING, which runs before routing and before
// INPUT, so its marks must be set in mangle PREROUTING; mangle OUTPUT
// marks the VIP for connections the sandbox opens itself. Published ports
// are marked in mangle PREROUTING by both. Only the address is DNATed, as
// an IPVS fwmark service with port 0 does, so the task receives the
// published port and its sandbox redirects it to the target port.
//
// Only the packets that open a connection enter the mark chains (the
// jumps say "-m conntrack ! --ctstate RELATED,ESTABLISHED"): a mark only
// chooses where a new connection goes, so the other packets skip the
// walk of two rules a service, and a packet costs the same at 1 service
// as at 1000. The host's FORWARD accepts in the same spirit: one rule each
// way for what our DNATs sent into mesh_gwbridge, found by conntrack,
// rather than two rules a port. A new connection still walks the marks:
// an ipset (hash:ip,port with skbinfo) would make that one lookup too,
// at the price of a second kind of kernel object to keep in sync and of
// "iptables -t mangle -nvL" no longer showing which port gets which mark.
//
// The rotation is "-m statistic --mode nth --every n-i --packet 0" on rule
// i of n, the last rule unconditional: each rule counts only the new
// connections that reach it, so connections go a, b, c, a, b, c exactly
// like IPVS rr (checked in real namespaces by TestKernelRoundRobin).
// Backends of weight 0 (draining) leave the rotation; their connections
// live on in conntrack. A service with no live backend gets a REJECT for
// its mark in filter INPUT/OUTPUT rather than reaching the sandbox itself;
// IPVS answers ICMP port unreachable on its own.
//
// # Why per-service chains, and how a change is applied
//
// Rules are data: renderers turn the model into units (one per service,
// plus the sandbox-wide SNAT, or all host rules), each made of entries in
// shared chains (MESH-PREROUTING, MESH-SERVICES, …) and chains of its own
// (MESH-SVC-<hash>, the rotation). A syncer per namespace remembers what it
// applied and writes the difference as one iptables-restore --noflush:
// shared chains get -A and -D of single entries and are never redeclared
// (a declaration flushes), a service's own chain is declared and rewritten
// whole when its backends change, and a shared chain appears with its
// jumps from built-in chains on its first entry and goes on its last, so
// a namespace with nothing to balance holds nothing of ours. Per-service
// chains keep a change to one service from touching the others' rules or
// resetting their rotation counters, and keep the packet cost one jump
// per service instead of one rule per backend per service.
//
// The renderer hands back the very same unit for an unchanged service, so
// a sync costs a comparison per service plus the work for what changed.
// The first sync, any sync after a failure (iptables-nft commits table by
// table, so a failed payload may be half applied) and a periodic check
// (DefaultFullResyncPeriod) that finds drift are full: the syncer reads iptables-save,
// declares and refills every chain of ours, removes chains of ours it does
// not want (leftovers of a crashed run), and makes the jumps from built-in
// chains exactly the wanted ones. That repairs rules lost to a firewall
// reload or a hand edit, which Swarm never does.
//
// # Bucket chains
//
// iptables-nft finds the rule of a "-D CHAIN RULE" by fetching and
// comparing every rule of CHAIN (its cache is per chain), so a deletion
// costs with the size of its chain: one iptables-restore deleting a rule
// from a chain of 2000 took about 40 ms, from a chain of 2 beside it, or
// appending one, about 10 ms (five runs each, by hand). The
// shared chains that grow with the number of services (mangle
// MESH-PREROUTING, MESH-INPUT and MESH-OUTPUT, nat MESH-SERVICES, filter
// MESH-REJECT, and the host's nat MESH-INGRESS, one DNAT per published
// port) are therefore split once they hold more than 64 entries: the
// entries go into 16 bucket chains, MESH-PREROUTING-0 … MESH-PREROUTING-F,
// chosen by a hash of the rule, and MESH-PREROUTING holds one jump to each
// bucket in use. A bucket exists while it has entries, its jump with it,
// like any chain of ours; a full resync sweeps buckets left over, as they
// belong to their parent's owner. At 1000 services a bucket of
// MESH-PREROUTING holds about 125 rules. Sixteen is a
// compromise: a new connection walks one jump more per bucket in use, and
// each bucket's deletions grow again past some hundreds of rules (some
// thousands of services). Chains of at most 64 entries keep them, as they read in the
// tutorials ("iptables -t mangle -nvL" shows the MARK lines under
// MESH-PREROUTING itself; split, under MESH-PREROUTING-3 and its
// siblings). A chain that crosses 64 is rewritten whole, with its buckets,
// in the same payload: one larger payload at the crossing, not one per
// change.
//
// BenchmarkAddService (make bench-rules) times adding one service to a
// sandbox that already has 1, 100 and 1000 (iptables plane, iptables
// 1.8.9 nf_tables, a 2-vCPU VM), and removing it. Medians of 3: adding
// 7.0, 7.7 and 10.4 ms, removing 6.9, 7.5 and 10.7 ms; most of it is
// starting iptables-restore. At 1000, three runs before the buckets
// beside three after: removing 35 to 38 ms before, 10.7 to 11.9 after;
// adding 11.3 to 12.4 and 10.4 to 10.9 ms.
//
// # Stale UDP conntrack entries
//
// The nat table sees only the first packet of a connection, and a UDP
// client that keeps one source port keeps its conntrack entry for ever
// (every packet refreshes it). After the rules and IPVS change, a sync
// therefore deletes, in the sandbox, the UDP entries replied by a backend
// that left a service (a draining one has not), and, when a service gets
// its first live backend, the entries to it that nothing NATed (its VIP
// in an LB sandbox, its published UDP ports in the ingress sandbox); the
// host syncer does the latter for a UDP port it starts forwarding. This
// is kube-proxy's conntrack cleanup, with one narrowing: the second kind
// is deleted un-NATed only, so that NATed entries survive: those of
// draining backends, and at an agent restart, when every service is new,
// those of live ones. Deletions that fail stay owed and are retried by the
// next sync. LB sandboxes have no ports, so every VIP service counts as
// one that may carry UDP there. See conntrack.go.
//
// # Checked three ways
//
// testdata/*.golden hold whole payloads for each scenario and namespace
// (go test ./lb -update rewrites them); the packet tracer in
// tracer_test.go follows connections through the rules left in FakeRules
// and the FakeIPVS tables of a whole node; and the kernel tests apply the
// same steps to real namespaces and compare iptables-save with the model.
package lb
