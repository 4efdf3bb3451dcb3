//go:build !linux

package capture

import "golang.org/x/net/bpf"

// Kernel opens real packet sockets, on Linux.
type Kernel struct{}

// Open fails with ErrNotSupported.
func (Kernel) Open(string, string, int, []bpf.RawInstruction) (Source, error) {
	return nil, ErrNotSupported
}
