//go:build !linux

package lb

import "errors"

// ErrNotSupported is returned off Linux, where there is no IPVS.
var ErrNotSupported = errors.New("lb: IPVS needs Linux")

type kernelIPVS struct{ IPVS }

func newKernelIPVS(string) (*kernelIPVS, error) { return nil, ErrNotSupported }

func (*kernelIPVS) Close() error { return nil }
