// Package gossip is meshd's replicated table store: a small NetworkDB built
// on hashicorp/memberlist. Every node holds a [DB]; the node agents watch it
// and the manager publishes into it.
//
// # Model
//
// An [Entry] maps (table, scope, key) to a value. Scope is "" for
// cluster-wide entries or a network ID for per-network ones. Each entry is
// owned by the node that last wrote it and carries that write's Lamport time.
// Versions are ordered by Lamport time, a tie broken by owner name, and the
// newest wins everywhere (last writer wins). Every Lamport time received
// advances the local clock, so a write always beats what its writer has seen.
//
// Unlike NetworkDB, which sends a network's entries only to the nodes in
// that network, every node here gets every scope. meshd clusters are small
// and meant to be taken apart; one flat replica per node is easier to
// inspect and to reason about. Scope remains a dimension of [DB.List], of
// the entries [DB.Watch] delivers, and of [DB.DeleteScope] (a node leaving a
// network).
//
// # How versions travel
//
//   - Gossip. A write goes into memberlist's TransmitLimitedQueue, named by
//     its key so that a newer write of the same entry replaces a queued older
//     one. memberlist piggybacks the queue on its UDP packets to GossipNodes
//     random members every GossipInterval; a node that accepts a gossiped
//     version queues it in turn, so it spreads epidemically in O(log n)
//     rounds. Versions too big for a packet go over TCP to each member.
//   - Anti-entropy. memberlist's push/pull exchanges the full state with one
//     random member every PushPullInterval, and on Join, so a late joiner has
//     everything when Join returns and anything gossip lost heals. A reader
//     that knows what it lacks and who has it asks that member at once
//     ([DB.SyncWith]).
//   - Announcements. When node X sees node Y join, X sends Y its own entries
//     over TCP and Y answers with its own. This is how entries come back
//     after their owner was declared dead and returned (partition healed,
//     restart): everyone dropped them, so only the owner can restore them.
//     The answer matters: Y may announce to X before X has seen Y join, and
//     X refuses entries of owners it does not consider alive.
//
// Messages are one type byte followed by JSON. JSON is slower than msgpack
// but readable in a packet capture, which suits a teaching tool; decoding
// validates everything and never panics (see fuzz_test.go).
//
// Anyone who can reach the gossip port can make memberlist log an error per
// packet (one no key decrypts, say). Warnings and errors are therefore
// logged at most once a minute per source address and message, the next
// line counting the ones left out (internal/ratelog).
//
// # Deletes and departures
//
// A delete leaves a tombstone so that an older copy still travelling cannot
// resurrect the entry; tombstones are reaped after TombstoneTTL. When a node
// dies or leaves (memberlist NotifyLeave), every other node drops all its
// entries at once, without tombstones, and watchers get Delete events: the
// endpoints of a dead node must stop receiving traffic. Entries of a node
// that is not alive in the local view are refused, so a stale copy arriving
// late cannot bring them back; only the owner's own announcements can.
//
// # The owner is the authority
//
// When a node receives a version of an entry it owns that differs from its
// own copy (or it has none, because it restarted and lost its state), it
// re-stamps its own copy past the received time, or writes a tombstone, and
// gossips that. A node that restarts with a fresh clock thus converges the
// cluster to what it holds now, whatever its previous life wrote. It should
// re-write its entries before it joins, so that they overwrite their old
// versions instead of being deleted and re-created.
//
// # Membership
//
// memberlist gossips to a dead member, and remembers it, for
// GossipToTheDeadTime: 2 s here, where memberlist's 30 s counted the dead
// among the targets that use up an update's retransmissions, and live
// nodes missed updates. After that, as in NetworkDB, every node tries one
// member it saw die every ReconnectInterval (a push/pull to its address)
// for ReconnectTimeout. This is how the two sides of a healed partition
// find each other, whatever its length, and how a node declared dead while
// it was only slow learns it and comes back.
//
// memberlist v0.7.0 reports joins, departures and metadata changes but not
// suspicion, nor whether a departure was a failure or a leave. [DB.Leave]
// therefore first tells every member over TCP that it is leaving, and
// [DB.Members] reports [StateLeft] for such nodes, [StateDead] for the rest.
//
// # Tuning
//
// [DefaultConfig] gossips every 40 ms to 10 nodes with RetransmitMult 5.
// BenchmarkConvergence measures the time from a Put on one node to the entry
// showing in a Watch on every other node, on loopback, and the UDP packets
// and bytes each node sends.
//
// Gossip's capacity is a number of packets. Every node that accepts an
// update sends it RetransmitMult * ceil(log10(n+1)) times (10 at 10 to 99
// nodes), about 6 updates of 200 bytes fit a 1.4 KB packet, and a node sends
// at most GossipNodes packets per GossipInterval, so the cluster carries
// about 6 * GossipNodes / GossipInterval / 10 updates per second, whatever
// its size. The former values, 4 nodes every 50 ms, carried about 48: a
// burst of 100 puts per second (a service created with hundreds of
// replicas) queued up, and p99 at 30 nodes was 0.7 and 1.8 s in two runs.
// 10 every 40 ms carry about 150. With GossipNodes equal to the retransmit
// limit, a node sends an update to 10 distinct members in the round after it
// got it, where 4 targets a round spread the same sends over three rounds.
// p99 at 30 nodes is 72 to 77 ms at 100 puts per second and 69 to 81 ms at
// 20, in three runs of `go test -run '^$' -bench 'Convergence/nodes=30$'
// -benchtime 1x -count 3 ./gossip/` on an idle 2-core machine, where the
// 30 nodes share the two cores; runs beside other work are slower.
//
// The cost is packets while updates flow, never at rest: an idle node sends
// only memberlist's probes and their acks, 4 packets (0.2 kB) a second at 30
// nodes. Under load a node sends what its queue holds, at most GossipNodes
// per GossipInterval (250 packets a second): 243 to 249 a second (113 kB/s)
// at 100 puts per second, 178 to 181 (38 kB/s) at 20. A LAN carries that
// easily; it is the price of an update being everywhere in a tenth of a
// second rather than in a second.
//
// Failure detection is twice as eager as memberlist's LAN values (probe
// every 500 ms, 250 ms timeout, suspicion multiplier 2, see DefaultConfig)
// and unchanged by the gossip tuning, which does not touch probes: a killed
// node is dead everywhere in about 2 s at 3 nodes, where memberlist's values
// take 6 to 8 s.
package gossip
