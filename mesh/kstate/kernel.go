package kstate

import (
	"context"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/overlay"
)

// kernel is the real [Kernel]: overlay's for links, neighbours and
// forwarding entries, lb's for rules, IPVS and the flowtable, and netlink
// here for the rest (kernel_linux.go).
type kernel struct {
	overlay.Kernel
	netlinkReads
}

// NewKernel returns the real kernel reads, over ov (overlay.NewKernel()
// when nil).
func NewKernel(ov overlay.Kernel) Kernel {
	if ov == nil {
		ov = overlay.NewKernel()
	}
	return kernel{Kernel: ov}
}

func (kernel) IPTables(ctx context.Context, ns string) ([]byte, error) {
	return lb.IPTables{NetNS: ns}.SaveCounters(ctx)
}

func (kernel) IPVS(ns string) ([]lb.IPVSService, error) { return lb.ReadIPVS(ns) }

func (kernel) NFT(ctx context.Context, ns string) (string, error) {
	return lb.Nft{NetNS: ns}.List(ctx)
}

func (kernel) SocketOwners(want map[uint32]bool, limit int) (map[uint32]Proc, bool, error) {
	return procOwners("/proc", want, limit)
}
