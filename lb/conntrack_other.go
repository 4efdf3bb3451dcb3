//go:build !linux

package lb

import "errors"

// KernelConntrack is the kernel's conntrack table in the namespace whose
// file is NetNS; off Linux there is none.
type KernelConntrack struct{ NetNS string }

var errNoConntrack = errors.New("lb: conntrack needs Linux")

// DeleteUDP fails off Linux.
func (KernelConntrack) DeleteUDP([]ConntrackFilter) (int, error) { return 0, errNoConntrack }
