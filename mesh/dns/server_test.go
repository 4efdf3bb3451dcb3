package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// bigService is a dnsrr service of n tasks on ovnet, 10.0.0.10 up.
func bigService(n int) []Endpoint {
	var eps []Endpoint
	for i := range n {
		eps = append(eps, Endpoint{NetworkID: netOv, Network: "ovnet", Service: "big",
			TaskName: fmt.Sprintf("big.%d.t%d", i+1, i), IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)})})
	}
	return eps
}

func TestTruncation(t *testing.T) {
	s := newTestServer(t, Config{}, bigService(100))
	u, c := attach(t, s, Querier{Networks: []string{netOv}})
	tests := []struct {
		name, addr, proto string
		edns              uint16
		tc                bool
		min, max          int // answers
	}{
		{name: "udp 512", addr: u, proto: "udp", tc: true, min: 20, max: 99},
		{name: "udp edns 1232", addr: u, proto: "udp", edns: 1232, tc: true, min: 60, max: 99},
		{name: "udp edns 4096", addr: u, proto: "udp", edns: 4096, min: 100, max: 100},
		{name: "tcp", addr: c, proto: "tcp", min: 100, max: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The client reads at most 512 bytes, or its EDNS size: an
			// answer over the client's size would fail here.
			resp, err := exchange(tt.addr, tt.proto, "tasks.big.", dns.TypeA, tt.edns)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Truncated != tt.tc {
				t.Errorf("TC: got %v, want %v", resp.Truncated, tt.tc)
			}
			if n := len(resp.Answer); n < tt.min || n > tt.max {
				t.Errorf("answers: got %d, want %d to %d", n, tt.min, tt.max)
			}
			resp.Compress = true
			if packed, _ := resp.Pack(); tt.proto == "udp" && len(packed) > max(512, int(tt.edns)) {
				t.Errorf("size: got %d bytes, want at most %d", len(packed), max(512, int(tt.edns)))
			}
		})
	}
}

// TestShuffle checks several records come in varying order: over 200
// answers each of db's three tasks comes first at least 20 times (the
// chance of failing with a fair shuffle is below 1e-9).
func TestShuffle(t *testing.T) {
	s := newTestServer(t, Config{}, fixture())
	u, _ := attach(t, s, Querier{Networks: []string{netOv}})
	for _, name := range []string{"db.", "tasks.db."} {
		first := map[string]int{}
		orders := map[string]bool{}
		for range 200 {
			resp := ask(t, u, "udp", name, dns.TypeA)
			var order []string
			for _, rr := range resp.Answer {
				order = append(order, rr.(*dns.A).A.String())
			}
			if len(order) != 3 {
				t.Fatalf("%s: got %v, want 3 records", name, order)
			}
			first[order[0]]++
			orders[strings.Join(order, ",")] = true
		}
		for _, a := range []string{"10.0.0.5", "10.0.0.6", "10.0.0.7"} {
			if first[a] < 20 {
				t.Errorf("%s: %s came first %d times in 200, want at least 20 (%v)", name, a, first[a], first)
			}
		}
		if len(orders) < 4 {
			t.Errorf("%s: got %d distinct orders of 6, want at least 4", name, len(orders))
		}
	}
}

// TestMalformed sends garbage and checks what comes back, then that the
// server still answers.
func TestMalformed(t *testing.T) {
	s := newTestServer(t, Config{}, fixture())
	u, _ := attach(t, s, Querier{Networks: []string{netOv}})
	conn, err := net.Dial("udp", u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	valid, _ := new(dns.Msg).SetQuestion("www.", dns.TypeA).Pack()
	response := append([]byte(nil), valid...)
	response[2] |= 0x80
	tests := []struct {
		name  string
		pkt   []byte
		rcode int // -1: no answer
	}{
		{"empty", []byte{}, -1},
		{"short header", []byte{1, 2, 3}, -1},
		{"header and garbage", []byte{0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, dns.RcodeFormatError},
		{"a response", response, -1},
		{"no question", []byte{0xbe, 0xef, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, dns.RcodeFormatError},
		{"status opcode", append([]byte{0xbe, 0xef, 0x11}, valid[3:]...), dns.RcodeNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := conn.Write(tt.pkt); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			buf := make([]byte, 512)
			n, err := conn.Read(buf)
			switch {
			case tt.rcode < 0 && err == nil:
				t.Errorf("got a %d-byte answer, want none", n)
			case tt.rcode >= 0 && err != nil:
				t.Errorf("got no answer (%v), want rcode %s", err, dns.RcodeToString[tt.rcode])
			case tt.rcode >= 0:
				var m dns.Msg
				if err := m.Unpack(buf[:n]); err != nil {
					t.Fatalf("answer does not parse: %v", err)
				}
				if m.Id != 0xbeef || m.Rcode != tt.rcode || !m.Response {
					t.Errorf("got id %#x rcode %s qr %v, want 0xbeef %s true", m.Id, rcode(&m), m.Response, dns.RcodeToString[tt.rcode])
				}
			}
			if got := rrs(ask(t, u, "udp", "www.", dns.TypeA)); len(got) != 1 {
				t.Errorf("after garbage: got %v, want the VIP", got)
			}
		})
	}
}

// TestFlood keeps many clients busy with local and forwarded names and
// checks a control query is answered promptly all along.
func TestFlood(t *testing.T) {
	up := startUpstream(t, func(r *dns.Msg) *dns.Msg {
		time.Sleep(20 * time.Millisecond)
		return answerRcode(dns.RcodeNameError)(r)
	})
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.addr}, MaxInFlight: 64}, bigService(10))
	u, c := attach(t, s, Querier{Networks: []string{netOv}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range 256 {
		wg.Go(func() { flood(ctx, u, w, &sent) })
	}
	worst, rounds := time.Duration(0), 0
	for ctx.Err() == nil {
		start := time.Now()
		for _, addr := range []struct{ proto, addr string }{{"udp", u}, {"tcp", c}} {
			if err := control(addr.addr, addr.proto); err != nil {
				t.Fatalf("control query over %s during the flood: %v", addr.proto, err)
			}
		}
		worst, rounds = max(worst, time.Since(start)), rounds+1
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%d flood queries sent; %d control rounds, slowest %s", sent.Load(), rounds, worst)
	if worst > 2*time.Second {
		t.Errorf("control round took %s during the flood, want under 2s", worst)
	}
}

// control asks tasks.big as a stub resolver would under load: a short
// timeout and a few tries, since a flood that fills the socket buffer
// makes the kernel drop datagrams, whoever sent them.
func control(addr, proto string) error {
	var err error
	for range 5 {
		m := new(dns.Msg).SetQuestion("tasks.big.", dns.TypeA).SetEdns0(4096, false)
		c := &dns.Client{Net: proto, Timeout: 300 * time.Millisecond}
		var resp *dns.Msg
		if resp, _, err = c.Exchange(m, addr); err == nil {
			if len(resp.Answer) != 10 {
				return fmt.Errorf("got %d answers, want 10", len(resp.Answer))
			}
			return nil
		}
	}
	return err
}

// flood is one busy client: query, wait for the answer (or 100 ms),
// again; a quarter of its names are forwarded to the slow upstream.
func flood(ctx context.Context, addr string, w int, sent *atomic.Int64) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	for i := 0; ctx.Err() == nil; i++ {
		name := "tasks.big."
		if i%4 == 0 {
			name = fmt.Sprintf("n%d-%d.example.", w, i)
		}
		pkt, _ := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
		if _, err := conn.Write(pkt); err != nil {
			continue
		}
		sent.Add(1)
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		conn.Read(buf)
	}
}

func TestClose(t *testing.T) {
	s := newTestServer(t, Config{}, fixture())
	pc, ln := listenPair(t)
	r, err := s.Attach(Querier{Networks: []string{netOv}}, pc, ln)
	if err != nil {
		t.Fatal(err)
	}
	ask(t, pc.LocalAddr().String(), "udp", "www.", dns.TypeA)
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener after Close: got %v, want net.ErrClosed", err)
	}
	pc2, _ := net.ListenPacket("udp", "127.0.0.1:0")
	r2, err := s.Attach(Querier{}, pc2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Server.Close: %v", err)
	}
	if _, _, err := pc2.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("resolver socket after Server.Close: got %v, want net.ErrClosed", err)
	}
	r2.Close()
	if _, err := s.Attach(Querier{}, pc2, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Attach after Close: got %v, want ErrClosed", err)
	}
	if _, err := s.Attach(Querier{}, nil, nil); err == nil {
		t.Error("Attach without sockets: got nil error")
	}
}

// TestCloseAbandonsForwards checks Close does not wait for a stalled
// upstream.
func TestCloseAbandonsForwards(t *testing.T) {
	up := startUpstream(t, silent)
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.addr}, Timeout: time.Minute}, nil)
	pc, ln := listenPair(t)
	r, err := s.Attach(Querier{}, pc, ln)
	if err != nil {
		t.Fatal(err)
	}
	go exchange(pc.LocalAddr().String(), "udp", "stalled.example.", dns.TypeA, 0)
	go exchange(ln.Addr().String(), "tcp", "stalled.example.", dns.TypeA, 0)
	for len(up.queries()) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	r.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s, want it not to wait for the upstream", d)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string // substring; "" for success
	}{
		{"defaults", Config{ResolvConf: "/nonexistent/resolv.conf"}, ""},
		{"negative TTL", Config{TTL: -1}, "TTL"},
		{"huge TTL", Config{TTL: 1 << 62}, "TTL"},
		{"negative timeout", Config{Timeout: -1}, "Timeout"},
		{"negative in flight", Config{MaxInFlight: -1}, "MaxInFlight"},
		{"invalid upstream", Config{Upstreams: []netip.AddrPort{{}}}, "Upstreams"},
		{"unreadable resolv.conf", Config{ResolvConf: "/"}, "ResolvConf"}, // a directory
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quietLogger(t)
			s, err := New(tt.cfg)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("New: got error %v, want one naming %s", err, tt.err)
			case err == nil:
				s.Close()
			}
		})
	}
	d := DefaultConfig()
	if d.TTL != 600*time.Second || d.Timeout != 4*time.Second || d.MaxInFlight != 1024 || d.ResolvConf != "/etc/resolv.conf" {
		t.Errorf("DefaultConfig: got %+v, want Swarm's 600 s, 4 s, 1024, /etc/resolv.conf", d)
	}
}

// TestLogsUnusableUpstreams checks New says when forwarding cannot work
// as configured: loopback upstreams, more than three, none at all.
func TestLogsUnusableUpstreams(t *testing.T) {
	tests := []struct {
		name string
		ups  []string
		want string
	}{
		{"loopback", []string{"127.0.0.53:53"}, "upstream on loopback"},
		{"four", []string{"10.1.1.1:53", "10.1.1.2:53", "10.1.1.3:53", "10.1.1.4:53"}, "past the first three"},
		{"none", nil, "no upstream servers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf strings.Builder
			cfg := Config{Logger: slog.New(slog.NewTextHandler(&buf, nil)), ResolvConf: t.TempDir() + "/none"}
			for _, u := range tt.ups {
				cfg.Upstreams = append(cfg.Upstreams, netip.MustParseAddrPort(u))
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if !strings.Contains(buf.String(), tt.want) {
				t.Errorf("log: got %q, want a line with %q", buf.String(), tt.want)
			}
		})
	}
}
