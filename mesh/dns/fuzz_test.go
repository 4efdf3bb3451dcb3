package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// FuzzHandle feeds arbitrary bytes to the request handler, over UDP and
// TCP, and checks it never panics (the test logger fails on the recovered
// panic's error log), calls done exactly once, and answers with a message
// that parses, is a response, carries the query's ID and fits the
// client's UDP size. Whether it answers or drops, the next query must
// still be answered.
func FuzzHandle(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetQuestion("www.", dns.TypeA),
		new(dns.Msg).SetQuestion("tasks.big.ovnet.", dns.TypeA),
		new(dns.Msg).SetQuestion("db.", dns.TypeAAAA),
		new(dns.Msg).SetQuestion("3.0.0.10.in-addr.arpa.", dns.TypePTR),
		new(dns.Msg).SetQuestion("example.org.", dns.TypeMX),
		new(dns.Msg).SetQuestion("tasks.big.", dns.TypeA).SetEdns0(1232, true),
	} {
		b, _ := m.Pack()
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte{0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, false)
	f.Add([]byte{}, true)

	errs := &errorCounter{Handler: slog.NewTextHandler(io.Discard, nil)}
	r := fuzzResolver(f, slog.New(errs))
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		before := errs.n.Load()
		defer func() {
			if errs.n.Load() != before {
				t.Fatal("the handler panicked (and recovered)")
			}
		}()
		proto := "udp"
		if tcp {
			proto = "tcp"
		}
		calls := 0
		var got []byte
		r.handle(context.Background(), raw, proto, make([]byte, 600), func(b []byte) {
			calls++
			got = append([]byte(nil), b...)
		})
		r.srv.fwd.wg.Wait() // a forwarded query is answered by its flight's goroutine
		if calls != 1 {
			t.Fatalf("done called %d times, want 1", calls)
		}
		if got != nil {
			checkAnswer(t, raw, got, proto)
		}
	})
}

// fuzzResolver is a Resolver without sockets on the fixture plus a big
// dnsrr service; its upstream answers or fails depending on the name.
func fuzzResolver(t testing.TB, log *slog.Logger) *Resolver {
	ex := func(_ context.Context, m *dns.Msg, _ netip.AddrPort, _ string) (*dns.Msg, error) {
		if len(m.Question[0].Name)%2 == 0 {
			return nil, errors.New("unreachable")
		}
		return answerA(m), nil
	}
	s, err := New(Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")},
		Exchange: ex, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s.SetTable(NewTable(append(fixture(), bigService(100)...)))
	t.Cleanup(func() { s.Close() })
	return newResolver(s, Querier{Networks: []string{netOv, netProd}}, nil, nil)
}

// errorCounter counts error records: the server logs one per recovered
// panic.
type errorCounter struct {
	slog.Handler
	n atomic.Int64
}

func (h *errorCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.n.Add(1)
	}
	return nil
}

func checkAnswer(t *testing.T, raw, got []byte, proto string) {
	t.Helper()
	var resp dns.Msg
	if err := resp.Unpack(got); err != nil {
		t.Fatalf("answer does not parse: %v", err)
	}
	if !resp.Response || resp.Id != uint16(raw[0])<<8|uint16(raw[1]) {
		t.Fatalf("got QR=%v id %d, want a response to id %d", resp.Response, resp.Id, uint16(raw[0])<<8|uint16(raw[1]))
	}
	var req dns.Msg
	limit := dns.MaxMsgSize
	if proto == "udp" {
		limit = dns.MinMsgSize
		if req.Unpack(raw) == nil {
			limit = maxSize(&req, proto)
		}
	}
	if len(got) > limit {
		t.Fatalf("answer of %d bytes over %s, want at most %d", len(got), proto, limit)
	}
}

// FuzzFastPath checks the fast path against the general one: wherever
// fastAnswer answers, miekg/dns must decode the query, the table must
// answer it, and both answers must agree but for the order of records
// (shuffled) and, when truncated, which records made it.
func FuzzFastPath(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetQuestion("www.", dns.TypeA),
		new(dns.Msg).SetQuestion("TASKS.Big.", dns.TypeA),
		new(dns.Msg).SetQuestion("tasks.big.ovnet.", dns.TypeAAAA),
		new(dns.Msg).SetQuestion("es.", dns.TypeA).SetEdns0(1232, false),
		new(dns.Msg).SetQuestion("tasks.big.", dns.TypeA).SetEdns0(600, true),
	} {
		m.CheckingDisabled = true
		b, _ := m.Pack()
		f.Add(b, false)
		f.Add(b, true)
	}
	r := fuzzResolver(f, quietLogger(f))
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		proto := map[bool]string{false: "udp", true: "tcp"}[tcp]
		fast, ok := r.fastAnswer(raw, proto, nil)
		if !ok {
			return
		}
		var req dns.Msg
		if err := req.Unpack(raw); err != nil {
			t.Fatalf("fast path answered a query miekg/dns rejects: %v", err)
		}
		resp := r.srv.table.Load().answer(r.querier.Load(), &req, r.srv.ttl)
		if resp == nil {
			t.Fatal("fast path answered a query the general path forwards")
		}
		general, err := packFor(resp, &req, proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		full := r.srv.table.Load().answer(r.querier.Load(), &req, r.srv.ttl)
		compareAnswers(t, fast, general, rrs(full))
	})
}

// compareAnswers checks two packed answers agree: same header, question
// and extra section, same number of answers, all drawn from full.
func compareAnswers(t *testing.T, fast, general []byte, full []string) {
	t.Helper()
	var a, b dns.Msg
	if err := a.Unpack(fast); err != nil {
		t.Fatalf("fast answer does not parse: %v", err)
	}
	if err := b.Unpack(general); err != nil {
		t.Fatalf("general answer does not parse: %v", err)
	}
	if diff := cmp.Diff(b.MsgHdr, a.MsgHdr); diff != "" {
		t.Errorf("header (-general +fast):\n%s", diff)
	}
	if diff := cmp.Diff(b.Question, a.Question); diff != "" {
		t.Errorf("question (-general +fast):\n%s", diff)
	}
	if diff := cmp.Diff(fmt.Sprint(b.Extra), fmt.Sprint(a.Extra)); diff != "" {
		t.Errorf("extra (-general +fast):\n%s", diff)
	}
	if len(a.Answer) != len(b.Answer) {
		t.Fatalf("answers: fast %d, general %d", len(a.Answer), len(b.Answer))
	}
	for _, rr := range rrs(&a) {
		if !slices.Contains(full, rr) {
			t.Errorf("fast answer %q not in %v", rr, full)
		}
	}
	if !a.Truncated && !slices.Equal(rrs(&a), rrs(&b)) {
		t.Errorf("answers: fast %v, general %v", rrs(&a), rrs(&b))
	}
	for i, rr := range a.Answer {
		if ha, hb := rr.Header(), b.Answer[i].Header(); ha.Name != hb.Name || ha.Ttl != hb.Ttl || ha.Class != hb.Class {
			t.Errorf("record %d header: fast %v, general %v", i, ha, hb)
		}
	}
}
