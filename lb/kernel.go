package lb

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
)

// IPVS is the part of the kernel's IPVS table the mesh uses: fwmark
// services with destinations, in one network namespace. Errors wrap the
// kernel's errno: syscall.ESRCH for a missing service, syscall.ENOENT for
// a missing destination. A failed call changes nothing.
type IPVS interface {
	// Services lists the fwmark services ("ipvsadm -Ln"), sorted by mark.
	Services() ([]VirtualService, error)
	// Destinations lists a service's real servers, sorted by address.
	Destinations(VirtualService) ([]Destination, error)
	// EnsureService is "ipvsadm -A -f MARK -s SCHED", or -E when the
	// service exists with another scheduler.
	EnsureService(VirtualService) error
	// RemoveService is "ipvsadm -D -f MARK"; absent is fine.
	RemoveService(VirtualService) error
	// EnsureDestination is "ipvsadm -a -f MARK -r ADDR:PORT -m -w WEIGHT",
	// or -e when it exists with another weight. The service must exist.
	EnsureDestination(VirtualService, Destination) error
	// RemoveDestination is "ipvsadm -d -f MARK -r ADDR:PORT"; absent is fine.
	RemoveDestination(VirtualService, Destination) error
}

// timeoutSetter is an IPVS table whose connection timeouts can be set:
// "ipvsadm --set TCP TCPFIN UDP", zero leaving one as it is. The kernel's
// and the fake implement it.
type timeoutSetter interface {
	SetTimeouts(Timeouts) error
}

// VirtualService is an IPVS fwmark service (IPv4).
type VirtualService struct {
	FWMark    uint32
	Scheduler string // "rr"
}

// Destination is a real server of a service, always forwarded by
// masquerading (NAT). Port 0 keeps the client's destination port.
type Destination struct {
	Addr   netip.Addr
	Port   uint16
	Weight int
	// ActiveConn and InActConn are read back from the kernel; they are
	// ignored when programming.
	ActiveConn, InActConn int
}

// IPVSService is a fwmark service with its real servers, as [ReadIPVS]
// reads them.
type IPVSService struct {
	VirtualService
	Destinations []Destination
}

// ErrNoIPVS is [ReadIPVS]'s answer on a kernel without IPVS.
var ErrNoIPVS = errors.New("lb: this kernel has no IPVS")

// ipvsProcFile exists in every namespace once ip_vs is loaded.
const ipvsProcFile = "/proc/net/ip_vs"

// ReadIPVS lists the fwmark services of the IPVS table in the namespace at
// nsPath ("" = the caller's) with their destinations, as "ipvsadm -Ln"
// does. It never loads ip_vs: on a kernel where it is not loaded it
// returns ErrNoIPVS.
func ReadIPVS(nsPath string) ([]IPVSService, error) {
	if _, err := os.Stat(ipvsProcFile); err != nil {
		return nil, ErrNoIPVS
	}
	k, err := newKernelIPVS(nsPath)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	svcs, err := k.Services()
	if err != nil {
		return nil, err
	}
	out := make([]IPVSService, 0, len(svcs))
	for _, s := range svcs {
		dests, err := k.Destinations(s)
		if err != nil {
			return nil, err
		}
		out = append(out, IPVSService{VirtualService: s, Destinations: dests})
	}
	return out, nil
}

// defaultScheduler is Swarm's: plain round robin.
const defaultScheduler = "rr"

// schedulers are those the kernel ships (ip_vs_*.ko).
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

func (v VirtualService) check() error {
	if v.FWMark == 0 {
		return fmt.Errorf("ipvs service: fwmark 0: %w", syscall.EINVAL)
	}
	if !slices.Contains(schedulers, v.Scheduler) {
		return fmt.Errorf("ipvs service FWM %d: scheduler %q: %w", v.FWMark, v.Scheduler, syscall.ENOENT)
	}
	return nil
}

func (d Destination) check(v VirtualService) error {
	if !d.Addr.Is4() || d.Weight < 0 {
		return fmt.Errorf("ipvs FWM %d: destination %v weight %d: %w", v.FWMark, d.Addr, d.Weight, syscall.EINVAL)
	}
	return nil
}

// dumpIPVS writes what v holds exactly as "ipvsadm -Ln" prints it,
// including ipvsadm's column padding.
func dumpIPVS(w io.Writer, v IPVS) error {
	svcs, err := v.Services()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("IP Virtual Server version 1.2.1 (size=4096)\n")
	b.WriteString("Prot LocalAddress:Port Scheduler Flags\n")
	b.WriteString("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	slices.SortFunc(svcs, func(a, b VirtualService) int { return cmp.Compare(a.FWMark, b.FWMark) })
	for _, s := range svcs {
		fmt.Fprintf(&b, "FWM  %d %s\n", s.FWMark, s.Scheduler)
		dests, err := v.Destinations(s)
		if err != nil {
			return err
		}
		slices.SortFunc(dests, compareDest)
		for _, d := range dests {
			fmt.Fprintf(&b, "  -> %-28s %-7s %-6d %-10d %-10d\n",
				netip.AddrPortFrom(d.Addr, d.Port), "Masq", d.Weight, d.ActiveConn, d.InActConn)
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func compareDest(a, b Destination) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}
