// Package nlsub opens netlink sockets joined to multicast groups, for
// the readers that follow the kernel's announcements: kwatch's drift
// watch, and lb's wait for an iptables-restore's commits.
package nlsub

// nfnetlink's nftables subsystem and its multicast group
// (linux/netfilter/nfnetlink.h).
const (
	NFTablesSubsys = 10
	NFTablesGroup  = 7
)
