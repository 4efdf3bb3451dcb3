// Package capture reads packets at a node's hops for meshctl capture: a
// packet socket (AF_PACKET) on one interface in one namespace per hop, all
// read at once until a count, a duration or the caller's end.
//
// The socket is opened on a thread that entered the hop's namespace
// (internal/nsfile.Do) and keeps working from any thread afterwards: a
// socket belongs to the namespace it was made in, so the task needs no
// tcpdump and nothing runs inside it. Sockets are read with gopacket's
// pcapgo.EthernetHandle, which takes the kernel's receive time of each
// packet (SO_TIMESTAMPNS), so that packets from several hops, and several
// nodes of one machine, merge in the order they crossed the hops.
//
// The filter is a classic BPF program, already compiled (meshctl compiles
// tcpdump's expressions with tcpdump -ddd, that is libpcap, where it runs:
// meshd stays a static binary with no libpcap in it), and attached with
// SO_ATTACH_FILTER, whose checker refuses an unsafe program. A packet
// socket starts receiving when it is bound, before the filter is
// attached: the packets stamped before the filter was attached are run
// through the same program in user space (golang.org/x/net/bpf), as
// libpcap drains its socket, so none that the filter refuses gets out.
package capture
