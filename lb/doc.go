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
//	│                 established: flowtable fastpath, eth1 ⇄ eth0 (inet meshd)   │
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
// chooses where a new connection goes, so the other packets skip them,
// and a packet of an established connection costs the same at 1 service
// as at 1000. The host's FORWARD accepts in the same spirit: one rule each
// way for what our DNATs sent into mesh_gwbridge, found by conntrack,
// rather than two rules a port. A new connection meets one lookup, not a
// walk, once a sandbox is large (see Bucket chains below).
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
// # Early demux off
//
// Before routing, the kernel looks up the socket of every TCP and UDP
// packet that arrives, to skip routing for it. A sandbox forwards or
// balances and holds no socket, so the lookup always failed, once per
// packet; the planes set net.ipv4.tcp_early_demux and udp_early_demux to
// 0 there, beside Swarm's sysctls.
//
// VXLAN's outer packets are tracked by conntrack in the host, on both
// nodes, though nothing NATs them. A raw-table NOTRACK for them was
// measured twice and not kept: the raw chains then run for every packet
// the host receives, sends or forwards, the host-mode path's included,
// and requests paid for it. By hand, in a 2-node lab, wrk through node2
// ran at 0.800 and 0.803 of direct with the rules and at 0.828 and 0.833
// without them (five rounds each, by turns), while one iperf3 stream
// over the overlay ran at 0.918 and 0.929 of the underlay with them and
// at 0.884 and 0.828 without.
//
// What the outer packets cost is space in the table. VXLAN picks the
// outer source port from each inner flow, so the connections that cross
// leave an unreplied entry per outer source port (28,232 of them) and
// direction on each node, for 30 s. Right after 35,000 short
// connections through node2 in a 2-node lab, they were 40,341 of the
// 53,683 entries in all of node1's namespaces and 40,345 of the 66,999
// in node2's; the connections' own entries (DNAT, SNAT, the task's) stay
// 120 s. nf_conntrack_max is one figure for the machine, but each
// network namespace counts its own entries against it: 262,144 where
// this was measured, 8,192 on a stock Debian kernel in a 1 GB VM, 65,536
// in 2 GB.
//
// A table at its limit makes room by evicting an entry that has seen no
// reply, as the outer flows' have not, rather than refusing the packet
// that needs one. In the test VM's kernel with 1 GB, 40 s of short
// connections through node2 of a 2-node lab (wrk -H 'Connection: close',
// 5,606 answered) filled both nodes' own tables to 8,192: the kernel
// evicted 8,892 entries to make room, dropped 4 packets ("nf_conntrack:
// table full"), and wrk counted no error. With the NOTRACK rules added
// by hand, 5,744 connections left 5,026 entries on node2 (the published
// port's DNATs) and 17 on node1, and nothing was evicted or dropped.
//
// # The conntrack table's size
//
// What a full table cannot evict is the connections' own entries: each
// short connection holds one in the entry node's namespace, one in the
// sandbox and one in the task's for 120 s after its end, and the kernel
// frees those only as they expire. In the same VM, three runs of 40 s
// back to back through node2, the kernel's 8,192 answered 6,702, then
// 3,869 (6 wrk timeouts), then 670 requests (8 timeouts): node2's own
// namespace dropped 1,348 packets ("table full" 190 times in dmesg) and
// evicted 22,078 entries. With the limit and the buckets at 131,072, as
// meshd sets them, set by hand before the same three runs: 6,598, 5,817
// and 5,761 answered, no timeout, nothing dropped or evicted; node2's
// namespace peaked at 22,853 entries, the sandbox at 10,486, the task's
// at 10,596.
//
// meshd therefore does what kube-proxy does: it keeps nf_conntrack_max
// at least 32,768 per CPU and 131,072 (--conntrack-max; 0 leaves the
// kernel's). It gives the table as many hash buckets, the kernel's own
// ratio (8,192 and 8,192 in that VM, 262,144 and 262,144 where meshd is
// developed), rather than kube-proxy's one for every four entries: each
// entry hangs in two chains, and kernels since 5.15 refuse to insert
// into a chain grown too long. Buckets go first (conntrack_size.go). It
// raises, never lowers: at the agent's first pass after the host's rules
// (whose NAT loads conntrack), then at each resync tick, and logs each
// raise: msg="conntrack table raised" from=... to=.... Only the initial
// network namespace may write these sysctls; a lab's nodes, in
// namespaces of their own, find them read-only, leave the host's table
// as it is and say so once.
//
// # The neighbour table
//
// Every sandbox learns, by ARP, a neighbour for each task it balances
// to, and each task one for each sandbox that sends to it: a node's
// count grows with the cluster's tasks. The kernel's neighbour table is
// one for the machine, every namespace's entries counted together
// against its hard limit, gc_thresh3, 1024 by default. Past it, a new
// neighbour is refused unless one unused for 5 s can be evicted, and the
// packet that needed it is dropped ("neighbour: arp_cache: neighbor
// table overflow!" in the kernel's log).
//
// In a 3-node lab (one kernel) with 100 published services of 2 tasks
// and node1 drained, 300 connections at once from the client, one to
// each port on each node (curl --parallel), answered all 300 one time
// and 203 the next, by turns, six rounds in a row: the 97 others were
// SYNs the sandboxes sent on, nearly all to tasks on node3, unanswered
// for 3 s, as the sandboxes' rotation sent each round to the other task. The table held 1,430 entries, the
// kernel logged 40 overflows, and nothing else dropped (no conntrack
// drops, no listen drops). With the limits raised by hand, the same
// rounds answered 300 of 300 six times, the table holding 1,624 entries.
//
// meshd therefore keeps gc_thresh3 at least 65536 (DefaultNeighbourMax),
// and gc_thresh2 and gc_thresh1 at least half and an eighth of it, the
// kernel's ratio (GrowNeighbours), as it keeps the conntrack table:
// raised, never lowered, and logged (msg="neighbour table raised"), at
// its first pass and each resync tick. An entry takes 336 bytes of
// kernel memory while it exists (entry_size in "ip -s ntable show name
// arp_cache"), 22 MB for a full table; the limits reserve nothing. Only the
// initial network namespace shows these sysctls: a lab's nodes cannot
// raise them, and say so once; meshctl lab up raises them for them.
// TestManagerRestartManyServices asks every backend through every node
// three times in a row, 600 connections at once each time: at the
// kernel's limits its second round lost 98 of 300 URLs.
//
// # Flow offload (iptables plane)
//
// Each sandbox of the iptables plane also holds an nftables table of its
// own, "inet meshd" (flowtable.go): a flowtable over the sandbox's
// interfaces (eth0, and eth1 in ingress_sbox) and, in a forward-hook
// chain, one rule that hands it the connections the sandbox's DNAT
// balanced ("ct status dnat ... flow add @fastpath"). The kernel adds a
// connection once it is established; from then on its packets are taken
// at the ingress of eth0 or eth1, NATed from the conntrack entry and sent
// out of the other interface, without the sandbox's routing lookup,
// conntrack lookup or netfilter hooks. Every new connection still meets
// every rule, and a FIN or RST sends its connection back to them.
//
// What it keeps and changes of what a user sees: tcpdump on eth0 and eth1
// shows every packet; "nft list table inet meshd" shows the table; the
// sandbox's conntrack table marks the connections carried "[OFFLOAD]"
// (cat /proc/net/nf_conntrack); the sandbox's iptables counters count the
// first packets of each connection, as its mark chains already did.
// Where the kernel has no flowtables (CONFIG_NF_FLOW_TABLE unset, as on
// the machines this is developed on) or nft is missing, the first write
// fails, a check of a table without devices ("nft -c") tells why, and
// the plane goes on without one (DataPlane.FlowOffload says which, and
// meshd logs it once per sandbox: msg="flow offload" state=...); meshd
// --flow-offload=false leaves every sandbox without one.
//
// The table is reconciled like the rules: nft's listing is compared with
// the one taken after the last write, and a table where none is wanted
// is looked for, every DefaultFullResyncPeriod or on Recheck; what
// differs is written again. The dry run (Check, meshctl check) compares
// the same way, line by line ("flowtable missing chain balanced: ct
// status dnat ..."); a plane that did not write the table compares it
// with the script, which nft lists line for line.
//
// Only the iptables plane: IPVS's NAT is not conntrack's, so a flowtable
// would carry IPVS's replies without their source rewritten (tried: every
// connection through the mesh failed). Nor the node's own namespace: a
// flowtable there carried the host-mode path as much as the mesh's, and
// would take established packets past mesh_gwbridge (which tcpdump
// there would no longer see) and past a user's own FORWARD rules.
//
// BenchmarkFlowtablePacket (make bench-flow-vm) times round trips on an
// established connection through an ingress sandbox with its flowtable
// and through one without, in the test VM's stock kernel (under
// emulation): 1.29-1.37 times as many with it, in three runs. Requests of
// nginx under wrk through a 2-node lab there, with the ingress
// sandboxes' tables and without them by turns, differed by less than the
// runs' spread (the
// mesh's cost over direct, 19-25 µs via node1 and 77-87 via node2 of
// some 250 µs a request, moved either way between two runs), so no
// benchmark of that is kept.
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
// # Bucket chains, and the lookup that replaces the mark walk
//
// Two costs grow with a shared chain's entries. A new connection is
// matched against every rule of every chain it enters (MARK does not end
// the walk): two MARK rules and one MESH-SERVICES rule a service, some
// 30 µs more per connection at 1000 services than at 1 here
// (BenchmarkNewConnection, below). And iptables-nft finds the rule of a "-D
// CHAIN RULE" by fetching and comparing every rule of CHAIN, so removing
// a service from a chain of 2000 took about 40 ms, against 10 ms for
// appending one (five runs each, by hand).
//
// A shared chain is therefore split once it holds more than 64 entries
// (buckets.go), by what its entries match:
//
//   - The mark chains (mangle MESH-PREROUTING, MESH-INPUT, MESH-OUTPUT)
//     give their entries to ipsets with the skbinfo extension: the VIPs
//     to MESH-PREROUTING-VIP (hash:ip), the published ports to
//     MESH-PREROUTING-TCP and -UDP (bitmap:port), each member holding its
//     service's mark and name. The chain then holds one rule per set,
//     "-p tcp -j SET --map-set MESH-PREROUTING-TCP dst --map-mark": a hash
//     or an array lookup sets the mark, at 1000 services as at 65.
//     "ipset list MESH-PREROUTING-TCP" shows "8888 comment "www" skbmark
//     0x100" where "iptables -t mangle -nvL" showed "tcp dpt:8888 MARK set
//     0x100", and the tracer (meshctl trace) names the member that matched.
//   - nat MESH-SERVICES and filter MESH-REJECT, whose entries match a mark,
//     split into MESH-SERVICES-0 … -F by the mark's low four bits, entered
//     by "-m mark --mark 0x3/0xf -j MESH-SERVICES-3": a new connection is
//     matched against 16 rules and one bucket, a sixteenth of the services.
//   - The host's nat MESH-INGRESS, one DNAT per published port, splits into
//     16 buckets by a hash of the rule, all of them walked: a port has no
//     bits a match can pick cheaply, and a DNAT cannot come from a set.
//     Swarm's DOCKER-INGRESS walks the same way.
//
// A bucket, chain or set, exists while it has entries, and the parent's
// rule that enters it with it; a full resync sweeps leftovers, as they
// belong to their parent's owner. Chains of at most 64 entries keep them,
// as they read in the tutorials ("iptables -t mangle -nvL" in
// ingress_sbox shows "tcp dpt:8888 MARK set 0x100" under MESH-PREROUTING
// itself). A chain that crosses 64 is rewritten whole, with its buckets,
// in the same payload: one larger payload at the crossing, not one per
// change.
//
// Why ipsets rather than nftables maps, which would also hold the DNATs:
// the rest of the mesh is iptables, as Swarm's is and as the tutorials
// read it, and iptables-nft cannot share a table with native nftables
// rules; an ipset is a kernel object iptables matches against, listed by
// a Debian tool beside iptables and ipvsadm, and both data planes use the
// same marks. Sets travel in payloads and saved text as a pseudo-table
// "*ipset" (sets.go), so the syncer diffs, lays out, checks and repairs
// them as chains; IPTables applies that table over netlink, before the
// iptables tables (a SET rule needs its set), and destroys sets after
// them. Changing a member costs microseconds, where an ipset process
// would add a couple of milliseconds to every sync that touches one. A
// full resync (meshd's start, drift) mends a set that is there member by
// member rather than flushing it, which would leave new connections
// unmarked meanwhile; and the periodic check compares a set's members
// whole, so a member changed by hand is seen and put back.
//
// BenchmarkNewConnection (make bench-rules) times a connection (connect,
// one round trip, reset) through an ingress sandbox of 1 service and one
// of 1000, with the lookup and with every entry kept in its chain;
// BenchmarkEstablishedPacket a round trip on an open connection. Both run
// on each data plane; make bench-rules-vm runs the IPVS ones in the test
// VM, whose stock kernel has IPVS. There, on the IPVS plane, round trips
// at 1000 services ran at 0.99-1.07 of their rate at 1 (0.44-0.45 with
// every packet walking the marks), new connections at 1.01-1.09.
// BenchmarkAddService times adding one service to a sandbox that already
// has 1, 100 and 1000 (iptables plane, iptables 1.8.9 nf_tables, a 2-vCPU
// VM), and removing it, through the sandbox's kept iptables-restore.
//
// # When a change is in
//
// iptables-nft's commit takes effect when the kernel takes its batch,
// but nf_tables frees what a commit deleted only after an RCU grace
// period, and the release of any nftables netlink socket meanwhile waits
// for that freeing: the process's own at its exit, and those it opens
// and closes between two tables of one payload. A removal therefore ran
// for one or two grace periods (12-27 ms on a 6.18 kernel at HZ=250),
// against 2 ms for an addition, its rules long gone from the packet
// path. Apply listens to nftables' announcements in the namespace and
// returns once the iptables-restore child has committed every table of
// the payload (restore_linux.go), leaving the child to exit on its own;
// the daemon waits for such children before it exits (WaitBackground).
// That left a removal that touches two tables (mangle's marks and nat's
// chain, under 65 services) one grace period long: a fresh process
// reads nat's "-m mark" only after committing mangle, and checks the
// mark extension's revision over a socket it opens and closes, which
// waits. A data plane therefore keeps one iptables-restore running per
// sandbox and writes each payload to its stdin (kept_linux.go): after
// its first payloads every extension is loaded and it closes no socket
// at all. In BenchmarkAddService a removal took 0.4-0.7 ms at 1 and 100
// services and 1.1-1.6 ms at 1000, an addition 0.4-0.9 ms and 1.6-2.9
// ms. A change made within a grace period of a removal still waits for
// the rest of it when it adds a rule with an xtables match or target
// (nft_compat waits for pending destructors first), and a payload that
// destroys sets goes to a process of its own and waits for its exit, as
// the deleted rules hold their sets until they are freed.
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
