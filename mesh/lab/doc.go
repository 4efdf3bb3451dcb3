// Package lab builds a whole meshd cluster on one machine, as "meshctl lab
// up --nodes N" does, and removes it again ("meshctl lab down").
//
// # Layout
//
// A lab with prefix P (empty for the default lab) is made of named network
// namespaces, visible to "ip netns list":
//
//	Plab-underlay    br0 (up), no address, no route, no br_netfilter: the "wire", 192.168.33.0/24
//	  ├─ Pnode1 ──── Pnode1: lo, eth0 192.168.33.10/24   meshd --node-name node1 …   swarm init
//	  ├─ Pnode2 ──── Pnode2: lo, eth0 192.168.33.11/24   meshd --node-name node2 …   swarm join 192.168.33.10:2377
//	  └─ Pclient ─── Pclient: lo, eth0 192.168.33.1/24   the tutorials' workstation
//
// and a directory <Root>/<P or "default"> holding lab.json and one run dir
// per node (meshd's --run-dir, its meshd.sock and meshd.log).
//
// # Why it is built this way
//
// Hermetic. The tutorials' addresses must never reach the machine's own
// network, so nothing is created in the host network namespace: each veth
// is created by "ip -n <underlay> link add" inside the underlay namespace
// with its eth0 end placed directly in the node's namespace. No namespace
// gets a default route and IPv6 is off in all of them. [Lab.CheckHermetic] proves
// it for a lab, and the tests compare the host's links and routes before and
// after.
//
// iproute2, not netlink. The underlay is built and checked by running "ip
// -n NS …" (iproute2 is a declared dependency), and namespace files come
// from internal/nsfile, so meshctl, which imports this package, links no
// netlink library and builds on any OS. The commands are listed by a pure
// function, which the unit tests read without root.
//
// The swarm through the API. Every meshd starts as on a machine just
// installed, outside any swarm; [FormSwarm] then sends swarm init to node1
// and swarm join to the others through their sockets, what "meshctl swarm
// init" and "meshctl swarm join" send. So the lab exercises the path a
// user takes, nothing of the swarm is on a command line, and a daemon
// stopped and started again with the same argv comes back into its swarm
// from its run dir. "meshctl lab up --no-swarm" (Options.Managers 0) stops
// before, for the tutorials that form the swarm by hand.
//
// Daemons in the host mount namespace. meshd bind-mounts the namespaces it
// makes (ingress_sbox, 1-<netid>, lb_<netid>) under its run dir. Started
// with "ip netns exec", which unshares a mount namespace, those mounts would
// be invisible from outside; so the daemon is started with "nsenter --net",
// which enters only the network namespace, in a session of its own so that
// it outlives "meshctl lab up".
//
// Tutorials verbatim. The tutorials say "nsenter
// --net=/var/run/meshd/netns/ingress_sbox …". [Lab.ExecCmd] runs a command in
// a private mount namespace where the node's run dir is mounted on
// /var/run/meshd, so that works unchanged on any lab node.
//
// Named like iproute2's. Namespaces are bind mounts in /run/netns, which Up
// makes a shared mount point as "ip netns add" does, so "ip netns exec node1
// …" works and a namespace deleted there is gone from every mount namespace.
//
// Down needs no state. lab.json (written crash-safely) makes later commands
// fast, but a lab whose "up" crashed or whose state was lost must still come
// down: [Down] finds namespaces by name, processes by their --run-dir or
// their network namespace, and mounts in /proc/self/mountinfo. It refuses to
// delete a directory that still has something mounted below it.
//
// Identity of processes. A PID is stored with its start time from
// /proc/<pid>/stat, so a daemon that died and whose PID was reused is never
// signalled by mistake.
//
// Prefixes. Every name of a lab carries its prefix (at most 8 characters, so
// that "<P>node50" fits a 15-byte link name) and every search is anchored on
// it, so tests run their own labs beside a user's.
package lab
