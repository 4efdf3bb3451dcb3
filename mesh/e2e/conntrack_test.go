package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/miekg/dns"
)

// udpProber asks one DNS question every interval from one fixed source
// port, as a game client or a syslog sender does, and keeps the time of
// every right answer. Replies from anywhere but to are ignored.
type udpProber struct {
	pc       *net.UDPConn
	to       netip.AddrPort
	question string
	want     string // the A record of a right answer

	mu      sync.Mutex // guards the fields below
	sent    int
	answers []time.Time
}

// startProber opens the socket inside the namespace file ns and starts
// asking; the test's end stops it.
func startProber(t *testing.T, ns string, port int, to netip.AddrPort, question, want string, every time.Duration) *udpProber {
	t.Helper()
	var pc *net.UDPConn
	err := nsfile.Do(ns, func() (err error) {
		pc, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("prober socket in %s: %v", ns, err)
	}
	p := &udpProber{pc: pc, to: to, question: question, want: want}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.read() }()
	go func() { defer wg.Done(); p.ask(done, every) }()
	t.Cleanup(func() { close(done); pc.Close(); wg.Wait() })
	return p
}

func (p *udpProber) ask(done <-chan struct{}, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for id := uint16(1); ; id++ {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(p.question), dns.TypeA)
		m.Id = id
		if b, err := m.Pack(); err == nil {
			if _, err := p.pc.WriteToUDPAddrPort(b, p.to); err == nil {
				p.mu.Lock()
				p.sent++
				p.mu.Unlock()
			}
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

func (p *udpProber) read() {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var m dns.Msg
		if from != p.to || m.Unpack(buf[:n]) != nil || len(m.Answer) == 0 {
			continue
		}
		if a, ok := m.Answer[0].(*dns.A); ok && a.A.String() == p.want {
			p.mu.Lock()
			p.answers = append(p.answers, time.Now())
			p.mu.Unlock()
		}
	}
}

// firstAnswerAfter is the time of the first right answer after t0.
func (p *udpProber) firstAnswerAfter(t0 time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.answers {
		if a.After(t0) {
			return a, true
		}
	}
	return time.Time{}, false
}

// counts are the queries sent and the right answers so far.
func (p *udpProber) counts() (sent, answered int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent, len(p.answers)
}

// TestConntrackUDPBackendReplaced is the lab's measurement of a stale UDP
// conntrack entry: a client asks a published UDP service from one fixed
// source port every 200 ms while the service's only task is replaced
// (scale to 0, then to 1). Every query refreshes the conntrack entry made
// for the old task, so without the data plane deleting it no answer ever
// comes back; with it, the new task must answer within a second of the
// scale command reporting it running.
func TestConntrackUDPBackendReplaced(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "service", "create", "--name", "udp", "--publish", "5353:53/udp", "--",
		"dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--address=/probe.test/10.9.9.9", "--port=53", "--user=root", "--pid-file=")
	client, ok := l.load().Node("client")
	if !ok {
		t.Fatal("the lab has no client")
	}
	p := startProber(t, filepath.Join("/run/netns", client.Netns), 40053,
		netip.MustParseAddrPort("192.168.33.10:5353"), "probe.test", "10.9.9.9", 200*time.Millisecond)
	start := time.Now()
	eventually(t, 5*time.Second, "answers from the first task", func() (bool, string) {
		_, ok := p.firstAnswerAfter(start)
		sent, answered := p.counts()
		return ok, sprintCounts(sent, answered)
	})

	l.must(t, "--node", "node1", "service", "scale", "udp=0")
	// Ask on while nothing serves: without the cleanup, each query keeps
	// the old entry alive.
	idle := time.Now()
	eventually(t, 5*time.Second, "no answer while scaled to 0", func() (bool, string) {
		_, ok := p.firstAnswerAfter(idle)
		if ok {
			idle = time.Now()
		}
		return time.Since(idle) >= 2*time.Second, "answers went on"
	})

	l.must(t, "--node", "node1", "service", "scale", "udp=1")
	running := time.Now()
	var first time.Time
	eventually(t, 10*time.Second, "an answer from the new task", func() (bool, string) {
		first, ok = p.firstAnswerAfter(running)
		sent, answered := p.counts()
		return ok, sprintCounts(sent, answered)
	})
	took := first.Sub(running)
	t.Logf("first answer from the new task %s after scale udp=1 returned", took.Round(10*time.Millisecond))
	if took > time.Second*timeScale() {
		t.Errorf("the new task answered %s after it was running, want within 1s", took.Round(10*time.Millisecond))
	}
}

func sprintCounts(sent, answered int) string {
	return fmt.Sprintf("sent %d queries, %d answered", sent, answered)
}
