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
// the caller's own). The caller closes it.
func Open(path string) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle()
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return nh, nil
}
