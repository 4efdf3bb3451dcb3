//go:build linux

package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/testutil"
)

// TestUDPExchangeLocalDrop has the namespace's own netfilter drop every
// other packet the exchanger sends: the sender sees EPERM, as it does
// when conntrack fails to insert a new flow (in a lab under dnsperf,
// about one forwarded query in a million, each a SERVFAIL). Every query
// must still be answered, its refused send having gone out again on
// another socket.
func TestUDPExchangeLocalDrop(t *testing.T) {
	ns := testutil.NetNS(t, testutil.NetNSDir(t), "dns")
	in := func(argv ...string) string {
		t.Helper()
		out, err := exec.Command("nsenter", append([]string{"--net=" + ns}, argv...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		return string(out)
	}
	in("ip", "link", "set", "lo", "up")
	var pc *net.UDPConn
	if err := nsfile.Do(ns, func() (err error) {
		pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	up := serveUDP(t, pc, func(q *dns.Msg, _ netip.AddrPort, reply func(*dns.Msg)) { reply(answerA(q)) })
	port := strconv.Itoa(int(up.Port()))
	in("iptables", "-w", "-A", "OUTPUT", "-p", "udp", "--dport", port,
		"-m", "statistic", "--mode", "nth", "--every", "2", "--packet", "0", "-j", "DROP")

	const queries = 20
	e := newTestExchanger(t)
	err := nsfile.Do(ns, func() error { // the exchanger's sockets open in ns
		for i := range queries {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			m := new(dns.Msg).SetQuestion(fmt.Sprintf("q%d.example.", i), dns.TypeA)
			r, err := e.Exchange(ctx, m, up, "udp")
			cancel()
			if err != nil {
				return fmt.Errorf("query %d: %w", i, err)
			}
			if len(r.Answer) != 1 {
				return fmt.Errorf("query %d: %d answers, want 1", i, len(r.Answer))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The premise: the rule did drop sends, one per query.
	m := regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+DROP\b`).FindStringSubmatch(in("iptables", "-w", "-nvxL", "OUTPUT"))
	if m == nil {
		t.Fatal("no DROP rule in OUTPUT")
	}
	if dropped, _ := strconv.Atoi(m[1]); dropped != queries {
		t.Errorf("the rule dropped %d sends, want %d (the first of each query)", dropped, queries)
	}
}
