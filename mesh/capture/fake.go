package capture

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/net/bpf"
)

// FakeOpener opens [FakeSource]s on the interfaces it was given, by
// namespace path and interface ("" path: the caller's own namespace).
// Safe for concurrent use.
type FakeOpener struct {
	mu      sync.Mutex // guards the fields below
	Sources map[[2]string]*FakeSource
	// Opened records each Open's arguments, in order.
	Opened []FakeOpen
}

// FakeOpen is one call of [FakeOpener.Open].
type FakeOpen struct {
	Path, Interface string
	SnapLen         int
	Filter          []bpf.RawInstruction
}

var _ Opener = (*FakeOpener)(nil)

// Open returns the source set for (nsPath, iface), once.
func (f *FakeOpener) Open(nsPath, iface string, snapLen int, filter []bpf.RawInstruction) (Source, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.Sources[[2]string{nsPath, iface}]
	if !ok {
		return nil, fmt.Errorf("open packet socket on %s: %w: %s", iface, ErrNoInterface, iface)
	}
	f.Opened = append(f.Opened, FakeOpen{nsPath, iface, snapLen, filter})
	return src, nil
}

// FakeSource hands out the packets sent on its channel; Close ends its
// reads. Make it with [NewFakeSource].
type FakeSource struct {
	C        chan Packet // what Read returns
	Counts   Stats       // what Stats returns
	fail     chan error
	done     chan struct{}
	closeOne sync.Once
}

// NewFakeSource returns a source with an unbuffered channel.
func NewFakeSource() *FakeSource {
	return &FakeSource{C: make(chan Packet), fail: make(chan error, 1), done: make(chan struct{})}
}

// Read returns the next packet sent on C, or an error once closed.
func (s *FakeSource) Read() (Packet, error) {
	select {
	case p := <-s.C:
		return p, nil
	case err := <-s.fail:
		return Packet{}, err
	case <-s.done:
		return Packet{}, errors.New("fake source closed")
	}
}

// Fail makes a Read return err, as a socket whose interface went away.
func (s *FakeSource) Fail(err error) { s.fail <- err }

// Stats returns Counts.
func (s *FakeSource) Stats() (Stats, error) { return s.Counts, nil }

// Close ends the reads; it may be called more than once.
func (s *FakeSource) Close() error {
	s.closeOne.Do(func() { close(s.done) })
	return nil
}

// Closed reports whether Close was called.
func (s *FakeSource) Closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}
