//go:build !linux

package kstate

import (
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/overlay"
)

// netlinkReads stands in off Linux: every read fails.
type netlinkReads struct{}

func (netlinkReads) Routes(string) ([]api.KernelRoute, error) { return nil, overlay.ErrNotSupported }

func (netlinkReads) NetNSIDs(string, []string) (map[int]string, error) {
	return nil, overlay.ErrNotSupported
}

func (netlinkReads) Sockets(string) ([]api.KernelSocket, error) { return nil, overlay.ErrNotSupported }
