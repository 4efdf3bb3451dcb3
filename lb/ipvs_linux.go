//go:build linux

package lb

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"syscall"

	"github.com/moby/ipvs"
)

// kernelIPVS is the real IPVS over moby/ipvs: one generic netlink socket
// opened inside the sandbox's namespace (ipvs.New(path)).
type kernelIPVS struct {
	h *ipvs.Handle
}

var _ IPVS = (*kernelIPVS)(nil)

// newKernelIPVS opens IPVS in the namespace at nsPath ("" = the caller's).
func newKernelIPVS(nsPath string) (*kernelIPVS, error) {
	h, err := ipvs.New(nsPath)
	if err != nil {
		return nil, fmt.Errorf("ipvs in %q: %w", nsPath, err)
	}
	return &kernelIPVS{h: h}, nil
}

func (k *kernelIPVS) Close() error {
	k.h.Close()
	return nil
}

func toService(v VirtualService) *ipvs.Service {
	return &ipvs.Service{FWMark: v.FWMark, AddressFamily: syscall.AF_INET, SchedName: v.Scheduler}
}

func toDestination(d Destination) *ipvs.Destination {
	return &ipvs.Destination{Address: d.Addr.AsSlice(), Port: d.Port, Weight: d.Weight,
		AddressFamily: syscall.AF_INET, ConnectionFlags: ipvs.ConnFwdMasq}
}

func (k *kernelIPVS) Services() ([]VirtualService, error) {
	svcs, err := k.h.GetServices()
	if err != nil {
		return nil, fmt.Errorf("ipvs list services: %w", err)
	}
	var out []VirtualService
	for _, s := range svcs {
		if s.FWMark != 0 && s.AddressFamily == syscall.AF_INET {
			out = append(out, VirtualService{FWMark: s.FWMark, Scheduler: s.SchedName})
		}
	}
	slices.SortFunc(out, func(a, b VirtualService) int { return cmp.Compare(a.FWMark, b.FWMark) })
	return out, nil
}

func (k *kernelIPVS) Destinations(v VirtualService) ([]Destination, error) {
	ds, err := k.h.GetDestinations(toService(v))
	if err != nil {
		return nil, fmt.Errorf("ipvs FWM %d: list destinations: %w", v.FWMark, err)
	}
	out := make([]Destination, 0, len(ds))
	for _, d := range ds {
		a, ok := netip.AddrFromSlice(d.Address)
		if !ok {
			continue
		}
		out = append(out, Destination{Addr: a.Unmap(), Port: d.Port, Weight: d.Weight,
			ActiveConn: d.ActiveConnections, InActConn: d.InactiveConnections})
	}
	slices.SortFunc(out, compareDest)
	return out, nil
}

func (k *kernelIPVS) EnsureService(v VirtualService) error {
	if err := v.check(); err != nil {
		return err
	}
	err := k.h.NewService(toService(v))
	if errors.Is(err, syscall.EEXIST) {
		err = k.h.UpdateService(toService(v))
	}
	if err != nil {
		return fmt.Errorf("ipvs FWM %d: set service %s: %w", v.FWMark, v.Scheduler, err)
	}
	return nil
}

func (k *kernelIPVS) RemoveService(v VirtualService) error {
	err := k.h.DelService(toService(v))
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("ipvs FWM %d: del service: %w", v.FWMark, err)
	}
	return nil
}

// faultNoDestinations breaks the kernel backend on purpose, to prove the
// VM suite can fail: with MESHD_FAULT_IPVS_NO_DESTINATIONS=1 it silently
// adds no destination. Nothing but that check sets it.
var faultNoDestinations = os.Getenv("MESHD_FAULT_IPVS_NO_DESTINATIONS") == "1"

func (k *kernelIPVS) EnsureDestination(v VirtualService, d Destination) error {
	if err := d.check(v); err != nil {
		return err
	}
	if faultNoDestinations {
		return nil
	}
	err := k.h.NewDestination(toService(v), toDestination(d))
	if errors.Is(err, syscall.EEXIST) {
		err = k.h.UpdateDestination(toService(v), toDestination(d))
	}
	if err != nil {
		return fmt.Errorf("ipvs FWM %d: set destination %s weight %d: %w", v.FWMark, d.Addr, d.Weight, err)
	}
	return nil
}

func (k *kernelIPVS) RemoveDestination(v VirtualService, d Destination) error {
	err := k.h.DelDestination(toService(v), toDestination(d))
	if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("ipvs FWM %d: del destination %s: %w", v.FWMark, d.Addr, err)
	}
	return nil
}

// SetTimeouts is "ipvsadm --set TCP TCPFIN UDP"; zero leaves one alone.
func (k *kernelIPVS) SetTimeouts(t Timeouts) error {
	err := k.h.SetConfig(&ipvs.Config{TimeoutTCP: t.TCP, TimeoutTCPFin: t.TCPFin, TimeoutUDP: t.UDP})
	if err != nil {
		return fmt.Errorf("ipvs set timeouts %v %v %v: %w", t.TCP, t.TCPFin, t.UDP, err)
	}
	return nil
}
