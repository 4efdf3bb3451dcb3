package capture

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"golang.org/x/net/bpf"
)

// ErrNoInterface is the error of Open for an interface that is not in
// the namespace.
var ErrNoInterface = errors.New("capture: no such interface")

// ErrNotSupported is the error of Open where there are no packet
// sockets (not Linux).
var ErrNotSupported = errors.New("capture: packet sockets need Linux")

// Packet is one packet a [Source] read.
type Packet struct {
	Time   time.Time // the kernel's receive time
	Length int       // on the wire; Data may be shorter
	Data   []byte    // at most the snapshot length; the caller's to keep
}

// Stats are a source's counts since it was opened: the packets its
// filter passed to the socket, and those dropped for want of room.
type Stats struct {
	Received, Dropped uint64
}

// Source is an open packet socket on one interface.
type Source interface {
	// Read waits for the next packet. After Close it returns an error.
	Read() (Packet, error)
	// Stats are the socket's counts; call it once, before Close.
	Stats() (Stats, error)
	Close() error
}

// Opener opens packet sockets: [Kernel], or a fake in tests.
type Opener interface {
	// Open opens a socket on iface in the namespace file nsPath (""
	// for the caller's own) that keeps snapLen bytes of each packet and
	// passes only what filter accepts (empty: everything). An absent
	// interface is an [ErrNoInterface].
	Open(nsPath, iface string, snapLen int, filter []bpf.RawInstruction) (Source, error)
}

// Limits end a capture; zero fields do not.
type Limits struct {
	Count    int           // packets over all sources
	Duration time.Duration // from the start of Run
}

// Why a capture ended, as [Run] says it: the API's words.
const (
	EndCount    = api.CaptureEndCount
	EndDuration = api.CaptureEndDuration
	EndCanceled = api.CaptureEndCanceled // the caller went away
)

// Run reads every source at once and passes each packet to emit, with
// the index of its source, until lim or ctx ends the capture or emit or a
// source fails. emit is called from Run's goroutine alone. Run closes the
// sources and returns why it ended (an End constant, or the error) and
// each source's counts, in order.
func Run(ctx context.Context, srcs []Source, lim Limits, emit func(hop int, p Packet) error) (string, []Stats) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var expired <-chan time.Time
	if lim.Duration > 0 {
		t := time.NewTimer(lim.Duration)
		defer t.Stop()
		expired = t.C
	}
	ch := make(chan read)
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() { defer wg.Done(); readAll(ctx, i, src, ch) }()
	}
	reason := ""
	for n := 0; reason == ""; {
		select {
		case <-ctx.Done():
			reason = EndCanceled
		case <-expired:
			reason = EndDuration
		case r := <-ch:
			switch {
			case r.err != nil:
				reason = fmt.Sprintf("hop %d: %v", r.hop, r.err)
			case emit(r.hop, r.p) != nil:
				reason = EndCanceled // the caller cannot take more
			default:
				if n++; lim.Count > 0 && n >= lim.Count {
					reason = EndCount
				}
			}
		}
	}
	stats := make([]Stats, len(srcs))
	for i, src := range srcs {
		stats[i], _ = src.Stats() // counts that cannot be read stay zero
	}
	cancel()
	for _, src := range srcs {
		_ = src.Close() // unblocks Read; nothing is left to lose
	}
	wg.Wait()
	return reason, stats
}

// read is one Read of source hop.
type read struct {
	hop int
	p   Packet
	err error
}

// readAll sends src's packets to ch until a read fails (that error is
// sent too) or ctx ends.
func readAll(ctx context.Context, hop int, src Source, ch chan<- read) {
	for {
		p, err := src.Read()
		select {
		case ch <- read{hop, p, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}
