// Package dns is the embedded DNS server every task queries at
// 127.0.0.11: service names, tasks.<service>, task names and aliases of
// the networks the task is attached to, answered from the gossiped
// endpoint table; every other name forwarded to the node's upstream
// servers.
//
// # Why sockets per task, opened in the task's namespace
//
// 127.0.0.11 is a loopback address, and loopback is per network
// namespace: a socket in the node's namespace cannot receive what a task
// sends to its own 127.0.0.11. So, as Swarm does, the node agent enters
// each task's namespace, opens one UDP and one TCP socket on 127.0.0.11
// at random ports, and adds the rules that make them answer on port 53:
//
//	nat OUTPUT      -d 127.0.0.11 -p udp --dport 53 -j DNAT --to-destination 127.0.0.11:<udp port>
//	nat POSTROUTING -s 127.0.0.11 -p udp --sport <udp port> -j SNAT --to-source :53
//
// and the same for TCP. Port 53 itself stays free for a task's own DNS
// server, and the answers come back from :53 as the client expects. The
// agent then hands both sockets to [Server.Attach]. A socket keeps the
// namespace it was made in, so the goroutines serving it run anywhere in
// the meshd process: one process answers every task without a thread
// per namespace.
//
// Forwarded queries are the opposite: they must leave from the node's
// namespace, where the upstream servers of the node's resolv.conf are
// reachable and a task on an --internal network has no route. The
// default [ExchangeFunc] dials from the calling goroutine, whose thread
// is in the node's namespace (the agent locks and restores any thread it
// moves). Upstreams on 127.0.0.x, such as systemd-resolved's 127.0.0.53,
// are logged: they answer only because forwarding runs in the node's
// namespace, and only if meshd runs in the namespace that has them.
//
// # Scoping, as Swarm does it
//
// A task sees the records of the networks it is attached to and no
// others, in attach order: the first network that has a name answers,
// so a task on dev and prod asking "es" gets dev's es, and asks "es.prod"
// for prod's. Names: <service> (its VIP, or every task IP for dnsrr),
// tasks.<service> (every task IP), each service alias like the service,
// the task name www.1.<taskid>, task aliases (shared aliases give several
// records: DNS round robin), all also as <name>.<network>. Several
// records come shuffled per answer, so clients that take the first
// spread. PTR of a task IP is <taskname>.<network>, as the tutorial's
// "hello.prod" and Swarm's "www.1.<taskid>.ovnet" show; PTR of a VIP is
// <service>.<network> (Swarm has none: its VIPs fall through upstream).
// The ingress network has no records. A name the task cannot see is
// forwarded like any unknown name, so it usually gets the upstream's
// NXDOMAIN, as in Swarm; single-label names are forwarded too.
//
// # Concurrency and cost
//
// One [Server] per node holds one [Table] and one forwarder; a
// [Resolver] per task holds its sockets and [Querier]. Every Resolver runs
// one goroutine reading its UDP socket in batches of datagrams (recvmmsg,
// sendmmsg) and one accepting TCP, plus one per TCP connection and per
// forwarded question in flight. On Linux the batches, a flight's
// answers, and its query to the upstream and the reply are raw system
// calls that cannot block (udpio_linux.go says why and what it saved);
// the runtime's poller still does the waiting.
// Local answers are built on the reading goroutine with no lock: the
// Table is an immutable snapshot behind an atomic pointer, rebuilt by the
// agent whenever the endpoint table changes and swapped whole with
// [Server.SetTable], so a query sees one consistent table. A lookup is a
// map access per attached network and answering costs no more with more
// services; a rebuild costs O(endpoints), done per change, not per query.
//
// Forwarded queries wait on flights, at most MaxInFlight per task
// (REFUSED past it), so a task flooding unknown names cannot starve the
// local answers of others, nor its own. Identical questions in flight at
// once, from any task of the node, share one exchange with the upstream,
// as in dnsmasq. A waiting query is an entry in its flight's list, not a
// goroutine, and the flight's answers to one task leave in one sendmmsg:
// with a goroutine per waiting query, each woken to write its own answer,
// the worst answer of a bench-dns run with one unknown name in five came
// after 91-115 ms, against 9-12 ms for dnsmasq in the same task.
//
// Queries to an upstream share a few connected UDP sockets on random
// ports, as dnsmasq's do, each retired after 128 queries for a new one on
// a new port: a socket per query would cost its socket, connect, poller
// registration and close every time (see upstream.go). A socket whose
// send the node's own netfilter refuses is retired at once, and the
// query goes out on another.
//
// Inside this package "dns" is github.com/miekg/dns, which parses and
// packs messages and talks to upstreams; the serving loops are ours, so
// that the handler is a plain function of bytes (fuzzed), a socket is
// read by several goroutines, and a forward does not hold a reader.
package dns
