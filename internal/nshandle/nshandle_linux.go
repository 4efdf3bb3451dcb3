// Package nshandle opens netlink handles inside namespace files. It is
// apart from nsfile so that code which only creates and enters namespaces
// (the lab, meshctl) does not link netlink.
package nshandle

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Open returns a netlink handle working in the namespace at path ("" =
// the caller's own), with sockets of the netlink families given (netlink's
// default ones when none). The caller closes it.
//
// A request of a family the handle has no socket for is sent by netlink
// from the calling thread's namespace, not path's: a reader of sock_diag
// (unix.NETLINK_INET_DIAG) must name that family here.
func Open(path string, families ...int) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle(families...)
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h, families...)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return nh, nil
}
