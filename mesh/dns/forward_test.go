package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/miekg/dns"
)

// forwardCases are upstream behaviours and what the client must get.
var forwardCases = []struct {
	name      string
	upstreams []func(*dns.Msg) *dns.Msg // each a fake upstream, in order
	rcode     int
	want      []string
	asked     []int // queries each upstream saw
}{
	{name: "answer passed through", upstreams: []func(*dns.Msg) *dns.Msg{answerA},
		want: []string{"A 192.0.2.1"}, asked: []int{1}},
	{name: "NXDOMAIN passed through", upstreams: []func(*dns.Msg) *dns.Msg{answerRcode(dns.RcodeNameError)},
		rcode: dns.RcodeNameError, asked: []int{1}},
	{name: "SERVFAIL from the only upstream", upstreams: []func(*dns.Msg) *dns.Msg{answerRcode(dns.RcodeServerFailure)},
		rcode: dns.RcodeServerFailure, asked: []int{1}},
	{name: "timeout of the only upstream", upstreams: []func(*dns.Msg) *dns.Msg{silent},
		rcode: dns.RcodeServerFailure, asked: []int{1}},
	{name: "second used when the first times out", upstreams: []func(*dns.Msg) *dns.Msg{silent, answerA},
		want: []string{"A 192.0.2.1"}, asked: []int{1, 1}},
	{name: "second used after SERVFAIL", upstreams: []func(*dns.Msg) *dns.Msg{answerRcode(dns.RcodeServerFailure), answerA},
		want: []string{"A 192.0.2.1"}, asked: []int{1, 1}},
	{name: "second used after REFUSED", upstreams: []func(*dns.Msg) *dns.Msg{answerRcode(dns.RcodeRefused), answerA},
		want: []string{"A 192.0.2.1"}, asked: []int{1, 1}},
	{name: "NXDOMAIN stops the walk", upstreams: []func(*dns.Msg) *dns.Msg{answerRcode(dns.RcodeNameError), answerA},
		rcode: dns.RcodeNameError, asked: []int{1, 0}},
	{name: "all fail", upstreams: []func(*dns.Msg) *dns.Msg{silent, answerRcode(dns.RcodeServerFailure), silent},
		rcode: dns.RcodeServerFailure, asked: []int{1, 1, 1}},
	{name: "only three upstreams used", upstreams: []func(*dns.Msg) *dns.Msg{silent, silent, silent, answerA},
		rcode: dns.RcodeServerFailure, asked: []int{1, 1, 1, 0}},
	{name: "no upstream", rcode: dns.RcodeServerFailure},
}

func TestForward(t *testing.T) {
	const timeout = 150 * time.Millisecond
	for _, proto := range []string{"udp", "tcp"} {
		for _, tt := range forwardCases {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				var ups []*upstream
				var addrs []netip.AddrPort
				for _, f := range tt.upstreams {
					u := startUpstream(t, f)
					ups = append(ups, u)
					addrs = append(addrs, u.addr)
				}
				s := newTestServer(t, Config{Upstreams: addrs, Timeout: timeout}, fixture())
				u, c := attach(t, s, Querier{Networks: []string{netOv}})
				addr := map[string]string{"udp": u, "tcp": c}[proto]
				resp := ask(t, addr, proto, "example.org.", dns.TypeA)
				if resp.Rcode != tt.rcode {
					t.Errorf("rcode: got %s, want %s", rcode(resp), dns.RcodeToString[tt.rcode])
				}
				if diff := cmp.Diff(tt.want, rrs(resp)); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
				var asked []int
				for _, up := range ups {
					for _, q := range up.queries() {
						if q != proto+" example.org." {
							t.Errorf("upstream asked %q, want %q", q, proto+" example.org.")
						}
					}
					asked = append(asked, len(up.queries()))
				}
				if diff := cmp.Diff(tt.asked, asked); diff != "" {
					t.Errorf("queries per upstream (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestForwardKeepsClientID checks the upstream sees another ID than the
// client's, and the client gets its own back.
func TestForwardKeepsClientID(t *testing.T) {
	var mu sync.Mutex
	var seen []uint16
	up := startUpstream(t, func(r *dns.Msg) *dns.Msg {
		mu.Lock()
		seen = append(seen, r.Id)
		mu.Unlock()
		return answerA(r)
	})
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.addr}}, nil)
	u, _ := attach(t, s, Querier{})
	for range 4 {
		m := new(dns.Msg).SetQuestion("example.org.", dns.TypeA)
		m.Id = 4242
		resp, err := dns.Exchange(m, u)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Id != 4242 {
			t.Errorf("client ID: got %d, want 4242", resp.Id)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	same := 0
	for _, id := range seen {
		if id == 4242 {
			same++
		}
	}
	if same == len(seen) {
		t.Errorf("upstream saw the client's ID every time: %v", seen)
	}
}

// TestForwardRejectsMismatchedReply checks a reply to another question
// is not passed on.
func TestForwardRejectsMismatchedReply(t *testing.T) {
	up := startUpstream(t, func(r *dns.Msg) *dns.Msg {
		r.Question[0].Name = "evil.example."
		return answerA(r)
	})
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.addr}}, nil)
	u, _ := attach(t, s, Querier{})
	if resp := ask(t, u, "udp", "example.org.", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("got %s %v, want SERVFAIL", rcode(resp), rrs(resp))
	}
}

// TestExchangeIsPluggable checks forwarding goes through Config.Exchange
// with the query's protocol and the configured per-upstream deadline.
func TestExchangeIsPluggable(t *testing.T) {
	type call struct {
		Upstream string
		Proto    string
		Deadline bool
	}
	var mu sync.Mutex
	var calls []call
	ex := func(ctx context.Context, m *dns.Msg, up netip.AddrPort, proto string) (*dns.Msg, error) {
		_, ok := ctx.Deadline()
		mu.Lock()
		calls = append(calls, call{up.String(), proto, ok})
		mu.Unlock()
		if up.Port() == 1 {
			return nil, errors.New("unreachable")
		}
		return answerA(m), nil
	}
	ups := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:1"), netip.MustParseAddrPort("192.0.2.54:53")}
	s := newTestServer(t, Config{Upstreams: ups, Exchange: ex}, nil)
	u, c := attach(t, s, Querier{})
	for proto, addr := range map[string]string{"udp": u, "tcp": c} {
		mu.Lock()
		calls = nil
		mu.Unlock()
		if diff := cmp.Diff([]string{"A 192.0.2.1"}, rrs(ask(t, addr, proto, "example.org.", dns.TypeA))); diff != "" {
			t.Errorf("%s answer (-want +got):\n%s", proto, diff)
		}
		want := []call{{"192.0.2.53:1", proto, true}, {"192.0.2.54:53", proto, true}}
		mu.Lock()
		if diff := cmp.Diff(want, calls); diff != "" {
			t.Errorf("%s exchanges (-want +got):\n%s", proto, diff)
		}
		mu.Unlock()
	}
}

// TestInFlightBound holds MaxInFlight queries at a stalled upstream and
// checks the next one is refused at once while local names still answer.
func TestInFlightBound(t *testing.T) {
	const max = 3
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	ex := func(ctx context.Context, m *dns.Msg, _ netip.AddrPort, _ string) (*dns.Msg, error) {
		arrived <- struct{}{}
		select {
		case <-release:
			return answerA(m), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")},
		Exchange: ex, MaxInFlight: max}, fixture())
	u, _ := attach(t, s, Querier{Networks: []string{netOv}})
	errs := make(chan error, max)
	for i := range max {
		go func() {
			// Distinct names: identical ones would share one exchange.
			resp, err := exchange(u, "udp", fmt.Sprintf("slow%d.example.", i), dns.TypeA, 0)
			if err == nil && resp.Rcode != dns.RcodeSuccess {
				err = errors.New("held query: got " + rcode(resp))
			}
			errs <- err
		}()
	}
	for range max {
		<-arrived
	}
	start := time.Now()
	resp := ask(t, u, "udp", "fast.example.", dns.TypeA)
	if resp.Rcode != dns.RcodeRefused {
		t.Errorf("query past the bound: got %s, want REFUSED", rcode(resp))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %s, want at once", d)
	}
	if got := rrs(ask(t, u, "udp", "www.", dns.TypeA)); len(got) != 1 {
		t.Errorf("local answer while saturated: got %v, want the VIP", got)
	}
	close(release)
	for range max {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if resp := ask(t, u, "udp", "again.example.", dns.TypeA); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("after release: got %s, want NOERROR", rcode(resp))
	}
}

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"three", "nameserver 10.1.1.1\nnameserver 10.1.1.2\nnameserver 10.1.1.3\n",
			[]string{"10.1.1.1:53", "10.1.1.2:53", "10.1.1.3:53"}},
		{"comments and options", "# hi\nsearch example.org\noptions ndots:0\nnameserver 127.0.0.53\n",
			[]string{"127.0.0.53:53"}},
		{"ipv6", "nameserver 2001:db8::1\n", []string{"[2001:db8::1]:53"}},
		{"garbage skipped", "nameserver not-an-ip\nnameserver 10.1.1.1\n", []string{"10.1.1.1:53"}},
		{"none", "search example.org\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseResolvConf(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, a := range got {
				gs = append(gs, a.String())
			}
			if diff := cmp.Diff(tt.want, gs); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestForwardSharesIdenticalQuestions holds the upstream while clients
// ask: identical questions from several tasks make one exchange, and each
// client gets the answer under its own ID and its own spelling of the
// name; another type, another transport or another EDNS record is
// another exchange; once answered, the same question is asked again.
func TestForwardSharesIdenticalQuestions(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sent []string
	ex := heldExchange(release, func(m *dns.Msg, proto string) {
		opt := ""
		if o := m.IsEdns0(); o != nil {
			opt = fmt.Sprintf(" edns%d", o.UDPSize())
		}
		mu.Lock()
		sent = append(sent, fmt.Sprintf("%s %s %s%s", proto, dns.TypeToString[m.Question[0].Qtype], strings.ToLower(m.Question[0].Name), opt))
		mu.Unlock()
	})
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}, Exchange: ex}, nil)
	u1, c1 := attach(t, s, Querier{})
	u2, _ := attach(t, s, Querier{})
	type query struct {
		addr, proto, name string
		qtype, edns       uint16
	}
	queries := []query{
		{u1, "udp", "db.example.", dns.TypeA, 0},
		{u1, "udp", "db.example.", dns.TypeA, 0},
		{u2, "udp", "DB.Example.", dns.TypeA, 0}, // another task, another case
		{u2, "udp", "db.example.", dns.TypeAAAA, 0},
		{c1, "tcp", "db.example.", dns.TypeA, 0},
		{u1, "udp", "db.example.", dns.TypeA, 1232},
	}
	type result struct {
		q    query
		resp *dns.Msg
		err  error
	}
	results := make(chan result, len(queries))
	for _, q := range queries {
		go func() {
			resp, err := exchange(q.addr, q.proto, q.name, q.qtype, q.edns)
			results <- result{q, resp, err}
		}()
	}
	want := []string{"tcp A db.example.", "udp A db.example.", "udp A db.example. edns1232", "udp AAAA db.example."}
	testutil.Eventually(t, 5*time.Second, "one exchange per distinct question", func() error {
		mu.Lock()
		defer mu.Unlock()
		got := slices.Sorted(slices.Values(sent))
		if !slices.Equal(got, want) {
			return fmt.Errorf("sent %q, want %q", got, want)
		}
		return nil
	})
	close(release)
	for range queries {
		r := <-results
		if r.err != nil {
			t.Errorf("%+v: %v", r.q, r.err)
			continue
		}
		if r.resp.Rcode != dns.RcodeSuccess || len(r.resp.Question) != 1 || r.resp.Question[0].Name != r.q.name {
			t.Errorf("%+v: got %s for %v, want NOERROR for its own question", r.q, rcode(r.resp), r.resp.Question)
		}
	}
	mu.Lock()
	if len(sent) != len(want) {
		t.Errorf("exchanges %q, want %d", sent, len(want))
	}
	mu.Unlock()
	// Nothing cached: the same question again is a new exchange.
	if resp := ask(t, u1, "udp", "db.example.", dns.TypeA); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("asked again: %s", rcode(resp))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != len(want)+1 {
		t.Errorf("asked again after the answer: exchanges %q, want one more", sent)
	}
}

// TestFlightOutlivesAClosedResolver has two tasks wait on one flight and
// the first task's resolver close before the upstream answers: Close
// does not wait for the flight, and the other task still gets the answer
// of the one exchange.
func TestFlightOutlivesAClosedResolver(t *testing.T) {
	release := make(chan struct{})
	var sent atomic.Int32
	ex := heldExchange(release, func(*dns.Msg, string) { sent.Add(1) })
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}, Exchange: ex}, nil)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := s.Attach(Querier{}, pc, nil)
	if err != nil {
		t.Fatal(err)
	}
	u2, _ := attach(t, s, Querier{})
	go exchange(pc.LocalAddr().String(), "udp", "db.example.", dns.TypeA, 0)
	got := make(chan *dns.Msg, 1)
	go func() {
		resp, err := exchange(u2, "udp", "db.example.", dns.TypeA, 0)
		if err != nil {
			t.Errorf("second task: %v", err)
		}
		got <- resp
	}()
	testutil.Eventually(t, 5*time.Second, "both queries wait on one flight", func() error {
		s.fwd.mu.Lock()
		defer s.fwd.mu.Unlock()
		for _, fl := range s.fwd.flights {
			if len(fl.waiters) == 2 {
				return nil
			}
		}
		return fmt.Errorf("%d flights", len(s.fwd.flights))
	})
	start := time.Now()
	r1.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s, want it not to wait for the flight", d)
	}
	close(release)
	if resp := <-got; resp == nil || len(resp.Answer) != 1 {
		t.Errorf("second task's answer: %v", resp)
	}
	if n := sent.Load(); n != 1 {
		t.Errorf("%d exchanges, want 1", n)
	}
}

// heldExchange is an upstream that answers each query with answerA once
// release is closed; seen is told of each query as it is sent.
func heldExchange(release <-chan struct{}, seen func(m *dns.Msg, proto string)) ExchangeFunc {
	return func(ctx context.Context, m *dns.Msg, _ netip.AddrPort, proto string) (*dns.Msg, error) {
		seen(m, proto)
		select {
		case <-release:
			return answerA(m), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
