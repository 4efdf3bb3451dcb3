//go:build !linux

package overlay

import (
	"net"
	"net/netip"
)

// unsupportedKernel stands in for the real kernel off Linux, so that the
// package builds everywhere; every call fails with [ErrNotSupported].
type unsupportedKernel struct{}

func newKernel() Kernel { return unsupportedKernel{} }

func (unsupportedKernel) EnsureNS(string) error            { return ErrNotSupported }
func (unsupportedKernel) RemoveNS(string) error            { return ErrNotSupported }
func (unsupportedKernel) ListNS(string) ([]string, error)  { return nil, ErrNotSupported }
func (unsupportedKernel) EnsureBridge(BridgeSpec) error    { return ErrNotSupported }
func (unsupportedKernel) EnsureVXLAN(VXLANSpec) error      { return ErrNotSupported }
func (unsupportedKernel) EnsureVeth(VethSpec) error        { return ErrNotSupported }
func (unsupportedKernel) RemoveLink(string, string) error  { return ErrNotSupported }
func (unsupportedKernel) ListLinks(string) ([]Link, error) { return nil, ErrNotSupported }
func (unsupportedKernel) SetAddr(string, string, netip.Prefix) error {
	return ErrNotSupported
}
func (unsupportedKernel) DelAddr(string, string, netip.Prefix) error {
	return ErrNotSupported
}
func (unsupportedKernel) SetDefaultRoute(string, string, netip.Addr) error {
	return ErrNotSupported
}
func (unsupportedKernel) SetSysctl(string, string, string) error { return ErrNotSupported }
func (unsupportedKernel) SetARP(string, string, netip.Addr, net.HardwareAddr) error {
	return ErrNotSupported
}
func (unsupportedKernel) DelARP(string, string, netip.Addr) error { return ErrNotSupported }
func (unsupportedKernel) ListARP(string, string) ([]ARPEntry, error) {
	return nil, ErrNotSupported
}
func (unsupportedKernel) SetFDB(string, string, net.HardwareAddr, netip.Addr) error {
	return ErrNotSupported
}
func (unsupportedKernel) DelFDB(string, string, net.HardwareAddr, netip.Addr) error {
	return ErrNotSupported
}
func (unsupportedKernel) SetBridgeFDB(string, string, net.HardwareAddr) error {
	return ErrNotSupported
}
func (unsupportedKernel) DelBridgeFDB(string, string, net.HardwareAddr) error {
	return ErrNotSupported
}
func (unsupportedKernel) ListBridgeFDB(string, string) ([]net.HardwareAddr, error) {
	return nil, ErrNotSupported
}
func (unsupportedKernel) ListFDB(string, string) ([]FDBEntry, error) {
	return nil, ErrNotSupported
}

var _ Kernel = unsupportedKernel{}
