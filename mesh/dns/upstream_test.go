package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meshd/meshd/internal/testutil"
)

// udpUpstream is a UDP server on loopback that hands each query it reads
// to serve, which writes what it likes back through reply. It stops at
// the end of the test.
func udpUpstream(t *testing.T, serve func(q *dns.Msg, from netip.AddrPort, reply func(*dns.Msg))) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	return serveUDP(t, pc, serve)
}

// serveUDP serves pc as udpUpstream does and returns its address.
func serveUDP(t *testing.T, pc *net.UDPConn, serve func(q *dns.Msg, from netip.AddrPort, reply func(*dns.Msg))) netip.AddrPort {
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			serve(q, from, func(a *dns.Msg) {
				b, _ := a.Pack()
				_, _ = pc.WriteToUDPAddrPort(b, from)
			})
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// newTestExchanger is an exchanger closed at the end of the test.
func newTestExchanger(t *testing.T) *exchanger {
	e := newExchanger()
	t.Cleanup(e.Close)
	return e
}

// TestUDPExchange checks the default UDP exchange skips a reply under
// another ID, takes the one under the query's, gives it back under the
// caller's ID whatever ID went on the wire, and reads an answer as large
// as the query's EDNS size allows (beyond 512 bytes).
func TestUDPExchange(t *testing.T) {
	const records = 60 // 16 bytes each: about 1 kB
	up := udpUpstream(t, func(q *dns.Msg, _ netip.AddrPort, reply func(*dns.Msg)) {
		for _, id := range []uint16{q.Id + 1, q.Id} {
			a := answerA(q)
			a.Id = id
			for range records - 1 {
				a.Answer = append(a.Answer, a.Answer[0])
			}
			reply(a)
		}
	})
	m := new(dns.Msg).SetQuestion("example.org.", dns.TypeA)
	m.Id = 4242
	m.SetEdns0(4096, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := newTestExchanger(t).Exchange(ctx, m, up, "udp")
	if err != nil {
		t.Fatal(err)
	}
	if r.Id != 4242 || len(r.Answer) != records {
		t.Errorf("got ID %d with %d answers, want 4242 with %d", r.Id, len(r.Answer), records)
	}
}

// TestUDPExchangeSharesSockets sends queries in waves of 20 at once to an
// upstream that answers each wave in reverse order once it holds all of
// it: every query gets the answer to its own name, at most
// socketsPerUpstream source ports are in use at once, a socket is
// retired after queriesPerSocket queries (new ports appear), and the
// retired sockets are closed once their queries are done.
func TestUDPExchangeSharesSockets(t *testing.T) {
	const wave = 20
	var mu sync.Mutex
	var held []func()
	ports := map[uint16]bool{}
	up := udpUpstream(t, func(q *dns.Msg, from netip.AddrPort, reply func(*dns.Msg)) {
		mu.Lock()
		defer mu.Unlock()
		ports[from.Port()] = true
		held = append(held, func() { reply(answerA(q)) })
		if len(held) == wave {
			for i := len(held) - 1; i >= 0; i-- {
				held[i]()
			}
			held = nil
		}
	})
	e := newTestExchanger(t)
	names := []string{"a.example.", "b.example.", "c.example.", "d.example."}
	waves := 2 * socketsPerUpstream * queriesPerSocket / wave
	for w := range waves {
		var wg sync.WaitGroup
		errs := make(chan error, wave)
		for i := range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := names[i%len(names)]
				m := new(dns.Msg).SetQuestion(name, dns.TypeA)
				m.Id = uint16(w*wave + i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				r, err := e.Exchange(ctx, m, up, "udp")
				switch {
				case err != nil:
					errs <- err
				case r.Id != m.Id || len(r.Question) != 1 || r.Question[0].Name != name:
					errs <- errors.New("answer to another query: " + r.Question[0].Name)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("wave %d: %v", w, err)
		}
	}
	// A retired socket is closed once its last query is done; its reader
	// then forgets it.
	testutil.Eventually(t, 5*time.Second, "the retired sockets closed", func() error {
		e.mu.Lock()
		defer e.mu.Unlock()
		if open, live := len(e.all), len(e.live[up]); open != live {
			return fmt.Errorf("%d sockets open, %d of them live", open, live)
		}
		return nil
	})
	// Every query sent is one use: 2×socketsPerUpstream sockets' worth.
	mu.Lock()
	defer mu.Unlock()
	if n := len(ports); n < 2*socketsPerUpstream || n > 3*socketsPerUpstream {
		t.Errorf("%d queries came from %d source ports, want about %d (retired after %d queries each)",
			waves*wave, n, 2*socketsPerUpstream, queriesPerSocket)
	}
	e.mu.Lock()
	live := len(e.live[up])
	e.mu.Unlock()
	if live > socketsPerUpstream {
		t.Errorf("%d live sockets to the upstream, want at most %d", live, socketsPerUpstream)
	}
}

// TestUDPExchangeRefused checks a closed upstream port fails the query
// at once (ICMP port unreachable), not at its timeout, so the forwarder
// moves to the next upstream; and that the next query still goes out.
func TestUDPExchangeRefused(t *testing.T) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	up := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	e := newTestExchanger(t)
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		_, err := e.Exchange(ctx, new(dns.Msg).SetQuestion("example.org.", dns.TypeA), up, "udp")
		cancel()
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("query %d: got %v, want connection refused", i, err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("query %d: refused after %s, want at once", i, took)
		}
	}
}

// TestUDPExchangeClose checks a query waiting for an answer returns when
// the exchanger is closed, and that none starts afterwards.
func TestUDPExchangeClose(t *testing.T) {
	got := make(chan struct{})
	up := udpUpstream(t, func(*dns.Msg, netip.AddrPort, func(*dns.Msg)) { close(got) })
	e := newExchanger()
	errc := make(chan error, 1)
	go func() {
		_, err := e.Exchange(context.Background(), new(dns.Msg).SetQuestion("example.org.", dns.TypeA), up, "udp")
		errc <- err
	}()
	<-got
	e.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a query cut by Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a query still waits 5 s after Close")
	}
	if _, err := e.Exchange(context.Background(), new(dns.Msg).SetQuestion("example.org.", dns.TypeA), up, "udp"); !errors.Is(err, errClosedExchanger) {
		t.Errorf("after Close: got %v, want %v", err, errClosedExchanger)
	}
}
