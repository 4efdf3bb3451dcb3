// Package kwatch tells which network namespaces the kernel changed in a
// way that may undo what meshd built, so that the agent checks those
// namespaces at once instead of reading every one of them on a timer.
//
// In each watched namespace it holds two netlink sockets: rtnetlink
// (links, IPv4 addresses and routes, neighbours) and nfnetlink's nftables
// group, which iptables-nft, Debian's default iptables, writes through.
// It reports removals (a link, address, route, neighbour or FDB entry,
// rule, chain or table deleted) and link changes (down, MTU, master),
// saying whether they touched the network stack or the rules, which cost
// differently to check. Additions are what meshd itself makes, so they
// are not reported and a repair does not wake the check that made it.
// Nor are rule removals meshd commits itself (a service removed): each
// nftables commit ends with a new generation naming the process that
// made it, and a removal is reported only once that generation shows a
// process the caller does not claim (lb's iptables-restore and nft
// children). Nor are addresses this process removes itself (a service's
// VIP), nor the routes the kernel removes with them: rtnetlink names the
// port of the socket that asked for a change, and a process's request
// sockets get its ID as port, which the watch's own sockets leave free
// (nlsub.Open). A route the kernel removes names no port; it follows an
// address or link change, reported on its own unless it was ours. A
// socket that overflowed (ENOBUFS) lost notifications: its namespace is
// reported.
//
// The sockets are non-blocking and read through the Go runtime's poller:
// a hundred namespaces cost no thread and no CPU while nothing changes.
// The kernel sends nothing for IPVS tables or for iptables-legacy rules;
// those still need a periodic check, which can then be rare.
package kwatch
