package gossip

import (
	"fmt"
	"io"
	"log"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// BenchmarkConvergence measures how long a Put on one node takes to show up
// in a Watch on every other node, with DefaultConfig's gossip and failure
// detection settings on 127.0.0.1. Each iteration writes putsPerOp entries
// from the nodes in turn, at a steady 20 per second and in a burst of 100 per
// second; p50-ms and p99-ms are over all of them (the slowest node counts).
// pkt/s/node and kB/s/node are the UDP packets and bytes each node sends on
// average (as written to the socket, with memberlist's probes),
// while idle (sub-benchmark idle, 3 s with no writes) and while the puts
// spread.
//
//	go test -run '^$' -bench Convergence ./gossip/
func BenchmarkConvergence(b *testing.B) {
	for _, n := range []int{3, 10, 30} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			tr := make([]memberlist.Transport, n)
			var sent udpCount
			for i := range tr {
				tr[i] = newCountingTransport(b, &sent)
			}
			dbs := newMockCluster(b, testLogger(b), tr, func(c *Config) {
				d := DefaultConfig() // c is LocalConfig: loopback, free ports
				c.GossipInterval, c.GossipNodes, c.RetransmitMult = d.GossipInterval, d.GossipNodes, d.RetransmitMult
				c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = d.ProbeInterval, d.ProbeTimeout, d.SuspicionMult
				c.PushPullInterval = d.PushPullInterval
			})
			a := watchArrivals(b, dbs)
			b.Run("idle", func(b *testing.B) {
				start := sent.snapshot()
				time.Sleep(3 * time.Second)
				b.ReportMetric(0, "ns/op")
				sent.report(b, start, n)
			})
			for _, rate := range []int{20, 100} {
				b.Run(fmt.Sprintf("puts-per-s=%d", rate), func(b *testing.B) {
					start := sent.snapshot()
					benchConvergence(b, dbs, a, time.Second/time.Duration(rate))
					sent.report(b, start, n)
				})
			}
		})
	}
}

const putsPerOp = 100

// udpCount counts the UDP packets and bytes a cluster's transports send,
// and the packets memberlist compressed (of unencrypted ones, which show
// memberlist's message type).
type udpCount struct{ packets, bytes, compressed atomic.Int64 }

// memberlist's message types of a compressed message and of one with a
// checksum (5 bytes, then the message), values of its wire protocol.
const (
	compressMsg = 9
	hasCRCMsg   = 12
)

type udpSnapshot struct {
	at             time.Time
	packets, bytes int64
}

func (c *udpCount) snapshot() udpSnapshot {
	return udpSnapshot{time.Now(), c.packets.Load(), c.bytes.Load()}
}

// report reports the packets and bytes per second each of n nodes sent on
// average since start.
func (c *udpCount) report(b *testing.B, start udpSnapshot, n int) {
	now := c.snapshot()
	perNode := now.at.Sub(start.at).Seconds() * float64(n)
	b.ReportMetric(float64(now.packets-start.packets)/perNode, "pkt/s/node")
	b.ReportMetric(float64(now.bytes-start.bytes)/perNode/1000, "kB/s/node")
}

// countingTransport is memberlist's UDP and TCP transport on 127.0.0.1,
// counting the packets it sends.
type countingTransport struct {
	*memberlist.NetTransport
	sent *udpCount
}

func newCountingTransport(b testing.TB, sent *udpCount) countingTransport {
	b.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, Logger: log.New(io.Discard, "", 0),
	})
	if err != nil {
		b.Fatalf("transport: %v", err)
	}
	return countingTransport{nt, sent}
}

func (t countingTransport) WriteTo(p []byte, addr string) (time.Time, error) {
	t.count(p)
	return t.NetTransport.WriteTo(p, addr)
}

func (t countingTransport) WriteToAddress(p []byte, a memberlist.Address) (time.Time, error) {
	t.count(p)
	return t.NetTransport.WriteToAddress(p, a)
}

func (t countingTransport) count(p []byte) {
	t.sent.packets.Add(1)
	t.sent.bytes.Add(int64(len(p)))
	if len(p) > 5 && p[0] == hasCRCMsg {
		p = p[5:]
	}
	if len(p) > 0 && p[0] == compressMsg {
		t.sent.compressed.Add(1)
	}
}

// arrivals records when each key reached the last node.
type arrivals struct {
	n       int        // nodes
	mu      sync.Mutex // guards the fields below
	writer  map[string]string
	put     map[string]time.Time // when each key was written
	last    map[string]time.Time // when it reached the last other node
	missing map[string]int       // other nodes yet to see it
	pending int                  // keys of this iteration not yet everywhere
	done    chan struct{}        // closed when pending reaches 0
}

func watchArrivals(b *testing.B, dbs []*DB) *arrivals {
	a := &arrivals{n: len(dbs), writer: map[string]string{}, put: map[string]time.Time{},
		last: map[string]time.Time{}, missing: map[string]int{}}
	for _, db := range dbs {
		go func() {
			for ev := range db.Watch(b.Context(), "bench") {
				a.seen(db.LocalName(), ev.Entry.Key, time.Now())
			}
		}()
	}
	return a
}

func (a *arrivals) seen(node, key string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.writer[key] == node || a.missing[key] == 0 {
		return
	}
	a.last[key] = at
	if a.missing[key]--; a.missing[key] == 0 {
		if a.pending--; a.pending == 0 {
			close(a.done)
		}
	}
}

func benchConvergence(b *testing.B, dbs []*DB, a *arrivals, every time.Duration) {
	var keys []string
	value := []byte(`{"ip":"10.0.0.5","mac":"02:42:0a:00:00:05","vtep":"192.168.33.11"}`)
	b.ResetTimer()
	for range b.N {
		a.mu.Lock()
		a.pending, a.done = putsPerOp, make(chan struct{})
		a.mu.Unlock()
		for j := range putsPerOp {
			db := dbs[j%len(dbs)]
			a.mu.Lock()
			key := fmt.Sprintf("task%021d", len(a.put)) // 25 characters, like a Swarm task ID
			keys = append(keys, key)
			a.writer[key], a.missing[key], a.put[key] = db.LocalName(), a.n-1, time.Now()
			a.mu.Unlock()
			if err := db.Put("bench", "", key, value); err != nil {
				b.Fatal(err)
			}
			time.Sleep(every)
		}
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
			a.mu.Lock()
			b.Fatalf("%d entries not everywhere after 30s", a.pending)
		}
	}
	b.StopTimer()
	a.mu.Lock()
	lat := make([]time.Duration, 0, len(keys))
	for _, key := range keys {
		lat = append(lat, a.last[key].Sub(a.put[key]))
	}
	a.mu.Unlock()
	slices.Sort(lat)
	ms := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op") // the time of a batch says nothing
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
}

// BenchmarkLocalState is a push/pull's state of a node holding 1000
// entries of 700 bytes (about a node's at 1000 services): encoded after
// a change to the store, and handed out again while there is none.
//
//	go test -run '^$' -bench LocalState ./gossip/
func BenchmarkLocalState(b *testing.B) {
	db := newNode(b, nil, "node1")
	value := make([]byte, 700)
	for i := range 1000 {
		if err := db.Put("services", "", fmt.Sprintf("svc%d", i), value); err != nil {
			b.Fatal(err)
		}
	}
	d := delegate{db}
	b.Run("changed", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			value[0] = byte(i)
			if err := db.Put("services", "", "svc0", value); err != nil {
				b.Fatal(err)
			}
			if len(d.LocalState(false)) == 0 {
				b.Fatal("no state")
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			if len(d.LocalState(false)) == 0 {
				b.Fatal("no state")
			}
		}
	})
}
