//go:build linux

package kwatch

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/meshd/meshd/internal/nsfile"
	"golang.org/x/sys/unix"
)

var errClosed = errors.New("kwatch: watcher closed")

// subscription is one namespace's two sockets and their readers.
type subscription struct {
	files []*os.File
	wg    sync.WaitGroup
}

// subscribe opens the sockets inside ns, so they stay bound to it, and
// starts one reader per socket.
func subscribe(ns string, notify func(string, Kind)) (*subscription, error) {
	s := &subscription{}
	err := nsfile.Do(ns, func() error {
		for _, sock := range []struct {
			proto  int
			groups uint32
		}{{unix.NETLINK_ROUTE, routeGroups}, {unix.NETLINK_NETFILTER, nftGroups}} { // in Kind order
			f, err := open(sock.proto, sock.groups)
			if err != nil {
				return err
			}
			s.files = append(s.files, f)
		}
		return nil
	})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("kwatch: watch netns %q: %w", ns, err)
	}
	filters := []func([]byte) bool{routeChanged, nftChanged}
	for i, f := range s.files {
		s.wg.Add(1)
		go s.read(f, filters[i], func() { notify(ns, Kind(i)) })
	}
	return s, nil
}

// open makes a non-blocking netlink socket joined to groups. os.NewFile
// hands a non-blocking descriptor to the runtime's poller.
func open(proto int, groups uint32) (*os.File, error) {
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

// read calls report whenever a datagram passes changed, or notifications
// were lost, until the file is closed.
func (s *subscription) read(f *os.File, changed func([]byte) bool, report func()) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			report()
		case err != nil:
			return // closed
		case n > 0 && changed(buf[:n]):
			report()
		}
	}
}

func (s *subscription) close() {
	for _, f := range s.files {
		_ = f.Close()
	}
	s.wg.Wait()
}
