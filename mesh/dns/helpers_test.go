package dns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The address plan of every test, as the tutorials have it:
//
//	ovnet   10.0.0.0/24   www (VIP .2, tasks .3 .4, alias front), db (dnsrr, .5-.7),
//	                      api (VIP .8, task .9, alias front): "front" is shared
//	dev     10.0.1.0/24   es (VIP .2, task .3)
//	prod    10.0.2.0/24   prod-es-1 .2 and prod-es-2 .3 (task alias es), an anonymous
//	                      task .4 with alias hello
//	other   10.0.3.0/24   secret (VIP .2, task .3): on no tester's network
//	ingress 10.255.0.0/16 www again (VIP .4, task .5): never answered
//	upstream answers      192.0.2.0/24
const (
	netOv      = "id-ovnet"
	netDev     = "id-dev"
	netProd    = "id-prod"
	netOther   = "id-other"
	netIngress = "id-ingress"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// fixture is the endpoint table of the address plan.
func fixture() []Endpoint {
	ov := func(svc, task, addr, vip string, aliases ...string) Endpoint {
		e := Endpoint{NetworkID: netOv, Network: "ovnet", Service: svc, TaskName: task, IP: ip(addr), Aliases: aliases}
		if vip != "" {
			e.VIP = ip(vip)
		}
		return e
	}
	return []Endpoint{
		ov("www", "www.1.aaaa", "10.0.0.3", "10.0.0.2", "front"),
		ov("www", "www.2.bbbb", "10.0.0.4", "10.0.0.2", "front"),
		ov("db", "db.1.cccc", "10.0.0.5", ""),
		ov("db", "db.2.dddd", "10.0.0.6", ""),
		ov("db", "db.3.eeee", "10.0.0.7", ""),
		ov("api", "api.1.ffff", "10.0.0.9", "10.0.0.8", "Front."),
		{NetworkID: netDev, Network: "dev", Service: "es", TaskName: "es.1.gggg", IP: ip("10.0.1.3"), VIP: ip("10.0.1.2")},
		{NetworkID: netProd, Network: "prod", TaskName: "prod-es-1", IP: ip("10.0.2.2"), TaskAliases: []string{"es"}},
		{NetworkID: netProd, Network: "prod", TaskName: "prod-es-2", IP: ip("10.0.2.3"), TaskAliases: []string{"es"}},
		{NetworkID: netProd, Network: "prod", IP: ip("10.0.2.4"), TaskAliases: []string{"hello"}},
		{NetworkID: netOther, Network: "other", Service: "secret", TaskName: "secret.1.hhhh", IP: ip("10.0.3.3"), VIP: ip("10.0.3.2")},
		{NetworkID: netIngress, Network: "ingress", Ingress: true, Service: "www", TaskName: "www.1.aaaa",
			IP: ip("10.255.0.5"), VIP: ip("10.255.0.4")},
	}
}

// quietLogger drops everything but errors, which fail t: the server logs
// an error only for a recovered panic.
func quietLogger(t testing.TB) *slog.Logger {
	return slog.New(failOnError{t: t, Handler: slog.NewTextHandler(io.Discard, nil)})
}

type failOnError struct {
	slog.Handler
	t testing.TB
}

func (h failOnError) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.t.Errorf("server logged an error: %s", r.Message)
	}
	return nil
}

func (h failOnError) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failOnError) WithGroup(string) slog.Handler      { return h }

// newTestServer is a Server on the fixture with cfg's upstreams (none if
// empty: an empty resolv.conf is read) and a quiet logger.
func newTestServer(t testing.TB, cfg Config, eps []Endpoint) *Server {
	t.Helper()
	if len(cfg.Upstreams) == 0 && cfg.ResolvConf == "" {
		cfg.ResolvConf = t.TempDir() + "/resolv.conf" // missing: no upstream
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.SetTable(NewTable(eps))
	t.Cleanup(func() { s.Close() })
	return s
}

// attach serves q on fresh loopback sockets and returns their addresses.
func attach(t testing.TB, s *Server, q Querier) (udp, tcp string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Attach(q, pc, ln)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return pc.LocalAddr().String(), ln.Addr().String()
}

// ask sends one query with a real client and fails t on a transport error.
func ask(t testing.TB, addr, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	resp, err := exchange(addr, proto, name, qtype, 0)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", dns.TypeToString[qtype], name, proto, err)
	}
	return resp
}

// exchange is one query; edns > 0 adds an OPT record with that size.
func exchange(addr, proto, name string, qtype uint16, edns uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	return resp, err
}

// rrs renders the answer section as sorted "TYPE data" strings.
func rrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, "A "+v.A.String())
		case *dns.AAAA:
			out = append(out, "AAAA "+v.AAAA.String())
		case *dns.PTR:
			out = append(out, "PTR "+v.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

// upstream is a fake upstream server: UDP and TCP on one loopback port,
// answering with answer and recording the names it was asked.
type upstream struct {
	addr   netip.AddrPort
	mu     sync.Mutex // guards the fields below
	asked  []string   // "proto name"
	answer func(r *dns.Msg) *dns.Msg
}

func (u *upstream) queries() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.asked)
}

// startUpstream serves answer (nil from answer means: never reply).
func startUpstream(t testing.TB, answer func(r *dns.Msg) *dns.Msg) *upstream {
	t.Helper()
	u := &upstream{answer: answer}
	pc, ln := listenPair(t)
	u.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	for _, srv := range []*dns.Server{{PacketConn: pc}, {Listener: ln}} {
		proto := "udp"
		if srv.Listener != nil {
			proto = "tcp"
		}
		srv.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			u.mu.Lock()
			u.asked = append(u.asked, proto+" "+r.Question[0].Name)
			u.mu.Unlock()
			if resp := u.answer(r); resp != nil {
				w.WriteMsg(resp)
			}
		})
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

// listenPair opens UDP and TCP sockets on one free loopback port.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return pc, ln
		}
		ln.Close()
	}
	t.Fatal("no free port for both udp and tcp")
	return nil, nil
}

// answerA is an upstream that knows every name as 192.0.2.1.
func answerA(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg).SetReply(r)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA,
		Class: dns.ClassINET, Ttl: 30}, A: net.ParseIP("192.0.2.1")}}
	return m
}

// answerRcode is an upstream that answers every query with rcode.
func answerRcode(rcode int) func(r *dns.Msg) *dns.Msg {
	return func(r *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(r, rcode) }
}

// silent is an upstream that never answers.
func silent(*dns.Msg) *dns.Msg { return nil }

func rcode(m *dns.Msg) string { return fmt.Sprint(dns.RcodeToString[m.Rcode]) }
