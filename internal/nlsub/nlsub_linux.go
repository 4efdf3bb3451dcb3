//go:build linux

package nlsub

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open makes, in the calling thread's network namespace, a non-blocking
// netlink socket of proto joined to groups (a bind mask). os.NewFile
// hands the descriptor to the runtime's poller, so a Close ends a
// pending Read.
func Open(proto int, groups uint32) (*os.File, error) {
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
