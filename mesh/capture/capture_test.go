package capture

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// runAsync runs Run on srcs in the background; the result comes on the
// returned channel.
func runAsync(ctx context.Context, srcs []Source, lim Limits, emit func(int, Packet) error) <-chan result {
	done := make(chan result, 1)
	go func() {
		reason, stats := Run(ctx, srcs, lim, emit)
		done <- result{reason, stats}
	}()
	return done
}

type result struct {
	reason string
	stats  []Stats
}

func TestRunEnds(t *testing.T) {
	pkt := func(b byte) Packet { return Packet{Time: time.Unix(int64(b), 0), Length: 1, Data: []byte{b}} }
	tests := []struct {
		name string
		lim  Limits
		// drive feeds the sources; emitted gets a value for each packet
		// emitted, so that an end comes only after the packets before it.
		drive func(cancel context.CancelFunc, a, b *FakeSource, emitted <-chan int)
		want  string
		// The sources of the packets emitted, sorted: two sources'
		// packets may come in either order (the merge sorts by time).
		hops []int
	}{
		{name: "count over all hops", lim: Limits{Count: 3}, want: EndCount, hops: []int{0, 0, 1},
			drive: func(_ context.CancelFunc, a, b *FakeSource, _ <-chan int) {
				a.C <- pkt(1)
				b.C <- pkt(2)
				a.C <- pkt(3)
			}},
		// Long enough for the packet to be emitted on a loaded machine.
		{name: "duration", lim: Limits{Duration: 500 * time.Millisecond}, want: EndDuration, hops: []int{1},
			drive: func(_ context.CancelFunc, a, b *FakeSource, _ <-chan int) { b.C <- pkt(1) }},
		{name: "the caller goes", want: EndCanceled, hops: []int{0},
			drive: func(cancel context.CancelFunc, a, b *FakeSource, emitted <-chan int) {
				a.C <- pkt(1)
				<-emitted
				cancel()
			}},
		{name: "a socket fails", lim: Limits{Count: 10}, want: "hop 1: link gone", hops: []int{0},
			drive: func(_ context.CancelFunc, a, b *FakeSource, emitted <-chan int) {
				a.C <- pkt(1)
				<-emitted
				b.Fail(errors.New("link gone"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, b := NewFakeSource(), NewFakeSource()
			a.Counts, b.Counts = Stats{Received: 7}, Stats{Received: 9, Dropped: 2}
			var hops []int
			emitted := make(chan int, 16)
			done := runAsync(ctx, []Source{a, b}, tt.lim, func(hop int, _ Packet) error {
				hops = append(hops, hop)
				emitted <- hop
				return nil
			})
			tt.drive(cancel, a, b, emitted)
			res := <-done
			slices.Sort(hops)
			if res.reason != tt.want {
				t.Errorf("ended with %q, want %q", res.reason, tt.want)
			}
			if diff := cmp.Diff(tt.hops, hops); diff != "" {
				t.Errorf("packets emitted from hops (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]Stats{{Received: 7}, {Received: 9, Dropped: 2}}, res.stats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if !a.Closed() || !b.Closed() {
				t.Errorf("sources closed: %v, %v; want both", a.Closed(), b.Closed())
			}
		})
	}
}

// TestRunStopsWhenEmitFails: a client that cannot take more ends the
// capture as its going away does.
func TestRunStopsWhenEmitFails(t *testing.T) {
	a := NewFakeSource()
	done := runAsync(context.Background(), []Source{a}, Limits{}, func(int, Packet) error { return errors.New("broken pipe") })
	a.C <- Packet{Data: []byte{1}}
	if res := <-done; !strings.Contains(res.reason, EndCanceled) {
		t.Errorf("ended with %q, want %q", res.reason, EndCanceled)
	}
}
