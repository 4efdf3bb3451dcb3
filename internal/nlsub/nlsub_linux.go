//go:build linux

package nlsub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open makes, in the calling thread's network namespace, a non-blocking
// netlink socket of proto joined to groups (a bind mask). os.NewFile
// hands the descriptor to the runtime's poller, so a Close ends a
// pending Read.
//
// The socket leaves the process's ID free as a port. The kernel gives a
// process's first socket of a protocol in a namespace its ID as port,
// and names that port in the notifications of the changes the socket
// asks for; a listener holding it would push the process's short-lived
// request sockets (a netlink handle per call) onto random ports, and
// its own changes could no longer be told from anyone else's. So a
// placeholder holds the ID while the listener binds.
func Open(proto int, groups uint32) (*os.File, error) {
	if hold, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err == nil {
		_ = unix.Bind(hold, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		defer unix.Close(hold)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("netlink socket %d: %w", proto, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("netlink bind %d groups %#x: %w", proto, groups, err)
	}
	// A burst (a namespace's rules rebuilt) must not overflow before
	// the reader runs; if it still does, ENOBUFS says so.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	return os.NewFile(uintptr(fd), fmt.Sprintf("netlink-%d", proto)), nil
}

// nftables' generation message and the attribute naming its process
// (linux/netfilter/nf_tables.h), behind nfnetlink's 4-byte header.
const (
	nftMsgNewGen   = 15
	nftaGenProcPID = 2
	nfgenmsgLen    = 4
)

// CommitPID reads m as the new generation (NFT_MSG_NEWGEN) that ends
// every nftables commit: gen says whether it is one, pid is the process
// that committed (NFTA_GEN_PROC_PID, as the initial PID namespace
// numbers it; 0 when the message does not say). A malformed attribute is
// an error.
func CommitPID(m syscall.NetlinkMessage) (pid int, gen bool, err error) {
	if m.Header.Type != NFTablesSubsys<<8|nftMsgNewGen || len(m.Data) < nfgenmsgLen {
		return 0, false, nil
	}
	attrs := m.Data[nfgenmsgLen:]
	for len(attrs) >= unix.SizeofNlAttr {
		l := int(binary.NativeEndian.Uint16(attrs))
		typ := binary.NativeEndian.Uint16(attrs[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < unix.SizeofNlAttr || l > len(attrs) {
			return 0, true, errors.New("nftables generation: bad attribute")
		}
		if typ == nftaGenProcPID && l == unix.SizeofNlAttr+4 {
			pid = int(binary.BigEndian.Uint32(attrs[unix.SizeofNlAttr:]))
		}
		attrs = attrs[min(len(attrs), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return pid, true, nil
}
