package dns

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestObserve: every answer, local or forwarded, over UDP and TCP, is
// reported once with its rcode before the client gets it.
func TestObserve(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	var slowest time.Duration
	obs := func(rcode string, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		got[rcode]++
		slowest = max(slowest, took)
	}
	up := startUpstream(t, answerRcode(dns.RcodeNameError))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.addr}, Observe: obs}, fixture())
	udp, tcp := attach(t, s, Querier{Networks: []string{netOv}})
	for _, q := range []struct{ addr, proto string }{{udp, "udp"}, {tcp, "tcp"}} {
		ask(t, q.addr, q.proto, "www.", dns.TypeA)             // local: NOERROR
		ask(t, q.addr, q.proto, "nowhere.example.", dns.TypeA) // forwarded: NXDOMAIN
	}
	ask(t, udp, "udp", "www.", dns.TypeMX) // a name with no MX: NOERROR, no answer
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[string]int{"NOERROR": 3, "NXDOMAIN": 2}, got); diff != "" {
		t.Errorf("observed rcodes (-want +got):\n%s", diff)
	}
	if slowest <= 0 {
		t.Errorf("slowest answer took %v, want a positive time", slowest)
	}
}

func TestRcodeName(t *testing.T) {
	for rcode, want := range map[int]string{0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED", 15: "RCODE15"} {
		if got := rcodeName(rcode); got != want {
			t.Errorf("rcodeName(%d) = %q, want %q", rcode, got, want)
		}
	}
}
