package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/miekg/dns"
)

// The probers open their sockets inside lab namespaces with nsfile.Do,
// whose goroutine ends its thread. Were that thread the process's main
// one, which cannot end, the process would stay in the namespace, and
// "lab down", which stops every process in a lab namespace, would stop
// the tests. Locking the main goroutine to it keeps other goroutines off.
func init() { runtime.LockOSThread() }

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

// dnsmasqArgs run a DNS server on port 53 that knows probe.test.
var dnsmasqArgs = []string{"dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
	"--address=/probe.test/10.9.9.9", "--port=53", "--user=root", "--pid-file="}

// TestConntrackUDPBackendReplaced is the lab's measurement of a stale UDP
// conntrack entry: a client asks a UDP service from one fixed source port
// every 200 ms while the service's only task is replaced (scale to 0,
// then to 1). Every query refreshes the conntrack entry made for the old
// task (or, in between, for no task), so without the data plane deleting
// it no answer ever comes back; with it, the new task must answer within
// a second of the scale command reporting it running. The client is
// outside, on a published port, and then a task asking a VIP.
func TestConntrackUDPBackendReplaced(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")

	t.Run("published port", func(t *testing.T) {
		l.must(t, append([]string{"--node", "node1", "service", "create", "--name", "udp", "--publish", "5353:53/udp", "--"}, dnsmasqArgs...)...)
		client, ok := l.load().Node("client")
		if !ok {
			t.Fatal("the lab has no client")
		}
		p := startProber(t, filepath.Join("/run/netns", client.Netns), 40053,
			netip.MustParseAddrPort("192.168.33.10:5353"), "probe.test", "10.9.9.9", 200*time.Millisecond)
		l.replaceAndMeasure(t, "udp", p)
	})

	t.Run("VIP from a task", func(t *testing.T) {
		l.must(t, append([]string{"--node", "node1", "service", "create", "--name", "udpv", "--network", "ovnet", "--"}, dnsmasqArgs...)...)
		l.must(t, "--node", "node1", "service", "create", "--name", "asker", "--network", "ovnet", "alpine")
		vip, err := netip.ParsePrefix(strings.TrimSpace(l.must(t, "--node", "node1", "service", "inspect", "udpv",
			"--format", "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}")))
		if err != nil {
			t.Fatalf("VIP of udpv: %v", err)
		}
		asker := l.tasks(t, "asker")["asker.1"]
		node, ok := l.load().Node(asker.node)
		if !ok {
			t.Fatalf("asker.1 runs on %q, not a lab node", asker.node)
		}
		// The task's sandbox is <run dir>/netns/<its hostname>.
		host := strings.TrimSpace(l.must(t, "--node", asker.node, "exec", "asker.1", "--", "hostname"))
		p := startProber(t, filepath.Join(node.RunDir, "netns", host), 40053,
			netip.AddrPortFrom(vip.Addr(), 53), "probe.test", "10.9.9.9", 200*time.Millisecond)
		l.replaceAndMeasure(t, "udpv", p)
	})
}

// replaceAndMeasure waits for p's answers, replaces svc's only task
// through zero and checks that the new one answers p within a second of
// running.
func (l *testLab) replaceAndMeasure(t *testing.T, svc string, p *udpProber) {
	t.Helper()
	start := time.Now()
	eventually(t, 5*time.Second, "answers from the first task", func() (bool, string) {
		_, ok := p.firstAnswerAfter(start)
		return ok, sprintCounts(p.counts())
	})

	l.must(t, "--node", "node1", "service", "scale", svc+"=0")
	// Ask on while nothing serves: without the cleanup, each query keeps
	// the old entry alive.
	idle := time.Now()
	eventually(t, 5*time.Second, "no answer for 2s while scaled to 0", func() (bool, string) {
		if _, ok := p.firstAnswerAfter(idle); ok {
			idle = time.Now()
		}
		return time.Since(idle) >= 2*time.Second, "answers went on"
	})

	l.must(t, "--node", "node1", "service", "scale", svc+"=1")
	running := time.Now()
	var first time.Time
	eventually(t, 10*time.Second, "an answer from the new task", func() (bool, string) {
		var ok bool
		first, ok = p.firstAnswerAfter(running)
		return ok, sprintCounts(p.counts())
	})
	took := first.Sub(running)
	t.Logf("first answer from the new task %s after scale %s=1 returned", took.Round(10*time.Millisecond), svc)
	if took > time.Second*timeScale() {
		t.Errorf("the new task answered %s after it was running, want within 1s", took.Round(10*time.Millisecond))
	}
}

func sprintCounts(sent, answered int) string {
	return fmt.Sprintf("sent %d queries, %d answered", sent, answered)
}
