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
// [DefaultConfig] gossips every 50 ms to 4 nodes with RetransmitMult 5.
// BenchmarkConvergence measures the time from a Put on one node to the entry
// showing in a Watch on every other node, on loopback: p99 is about 50 ms at
// 3 nodes, 100 ms at 10 and 160 ms at 30 at 20 puts per second, where
// memberlist's LAN values (200 ms, 3 nodes, 4) take 0.6 s at 10 nodes.
//
// Gossip has a capacity: each node sends GossipNodes packets of about 1.4 KB
// per GossipInterval, and every node that accepts an update sends it
// RetransmitMult * ceil(log10(n+1)) times. With updates of about 200 bytes
// that is about 50 updates per second for the whole cluster, whatever its
// size. A burst above that (a service created with hundreds of replicas)
// queues up and drains in seconds; p99 at 30 nodes under 100 puts per second
// is around 1 s. Failure detection is twice as eager as memberlist's LAN
// values (probe every 500 ms, 250 ms timeout, suspicion multiplier 2, see
// DefaultConfig): a killed node is dead everywhere in about 2 s at 3 nodes,
// where memberlist's values take 6 to 8 s.
package gossip
