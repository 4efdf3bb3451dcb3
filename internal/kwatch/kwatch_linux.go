//go:build linux

package kwatch

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/meshd/meshd/internal/nlsub"
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
func subscribe(ns string, notify func(string, Kind), ours func(int) bool) (*subscription, error) {
	s := &subscription{}
	err := nsfile.Do(ns, func() error {
		for _, sock := range []struct {
			proto  int
			groups uint32
		}{{unix.NETLINK_ROUTE, routeGroups}, {unix.NETLINK_NETFILTER, nftGroups}} { // in Kind order
			f, err := nlsub.Open(sock.proto, sock.groups)
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
	nft := &nftFilter{ours: ours}
	filters := []func([]byte) bool{routeFilter{self: uint32(os.Getpid())}.changed, nft.changed}
	for i, f := range s.files {
		s.wg.Add(1)
		go s.read(f, filters[i], func() { notify(ns, Kind(i)) })
	}
	return s, nil
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
