package lb

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FakeIPVS is an in-memory IPVS table that behaves like the kernel's: it
// refuses a destination on a missing service, a zero fwmark, an unknown
// scheduler; a refused call changes nothing. Safe for concurrent use.
type FakeIPVS struct {
	mu       sync.Mutex // guards the fields below
	services map[uint32]*fakeService
	calls    int
	timeouts Timeouts
}

type fakeService struct {
	sched string
	dests map[netip.AddrPort]Destination
}

var _ IPVS = (*FakeIPVS)(nil)

// NewFakeIPVS returns an empty table.
func NewFakeIPVS() *FakeIPVS { return &FakeIPVS{services: map[uint32]*fakeService{}} }

// Services lists the services, sorted by mark.
func (f *FakeIPVS) Services() ([]VirtualService, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []VirtualService
	for _, m := range slices.Sorted(maps.Keys(f.services)) {
		out = append(out, VirtualService{FWMark: m, Scheduler: f.services[m].sched})
	}
	return out, nil
}

// Destinations lists a service's destinations, sorted by address.
func (f *FakeIPVS) Destinations(v VirtualService) ([]Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[v.FWMark]
	if s == nil {
		return nil, fmt.Errorf("ipvs FWM %d: %w", v.FWMark, syscall.ESRCH)
	}
	keys := slices.SortedFunc(maps.Keys(s.dests), netip.AddrPort.Compare)
	out := make([]Destination, len(keys))
	for i, k := range keys {
		out[i] = s.dests[k]
	}
	return out, nil
}

// EnsureService adds the service or changes its scheduler.
func (f *FakeIPVS) EnsureService(v VirtualService) error {
	if err := v.check(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if s := f.services[v.FWMark]; s != nil {
		s.sched = v.Scheduler
		return nil
	}
	f.services[v.FWMark] = &fakeService{sched: v.Scheduler, dests: map[netip.AddrPort]Destination{}}
	return nil
}

// RemoveService deletes the service and its destinations; absent is fine.
func (f *FakeIPVS) RemoveService(v VirtualService) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	delete(f.services, v.FWMark)
	return nil
}

// EnsureDestination adds the destination or changes its weight. The
// service must exist.
func (f *FakeIPVS) EnsureDestination(v VirtualService, d Destination) error {
	if err := d.check(v); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	s := f.services[v.FWMark]
	if s == nil {
		return fmt.Errorf("ipvs FWM %d: add destination %s: %w", v.FWMark, d.Addr, syscall.ESRCH)
	}
	k := netip.AddrPortFrom(d.Addr, d.Port)
	d.ActiveConn, d.InActConn = s.dests[k].ActiveConn, s.dests[k].InActConn
	s.dests[k] = d
	return nil
}

// RemoveDestination deletes the destination; absent is fine.
func (f *FakeIPVS) RemoveDestination(v VirtualService, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if s := f.services[v.FWMark]; s != nil {
		delete(s.dests, netip.AddrPortFrom(d.Addr, d.Port))
	}
	return nil
}

// SetTimeouts sets the connection timeouts; a zero field is left alone.
func (f *FakeIPVS) SetTimeouts(t Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range []struct{ to, from *time.Duration }{{&f.timeouts.TCP, &t.TCP}, {&f.timeouts.TCPFin, &t.TCPFin}, {&f.timeouts.UDP, &t.UDP}} {
		if *p.from != 0 {
			*p.to = *p.from
		}
	}
	return nil
}

// Timeouts returns the timeouts set so far (zero: never set).
func (f *FakeIPVS) Timeouts() Timeouts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts
}

// Calls counts the changing calls made so far (Ensure*, Remove*), so tests
// can check that a sync with nothing to do does nothing.
func (f *FakeIPVS) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Dump prints the table as "ipvsadm -Ln" does.
func (f *FakeIPVS) Dump() string {
	var b strings.Builder
	_ = dumpIPVS(&b, f)
	return b.String()
}

// lookup returns the destinations of the service with mark, and whether
// there is one (for the packet tracer).
func (f *FakeIPVS) lookup(mark uint32) ([]Destination, bool) {
	d, err := f.Destinations(VirtualService{FWMark: mark})
	return d, err == nil
}
