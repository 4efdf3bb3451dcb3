//go:build linux

package lb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/testutil"
)

// BenchmarkEstablishedPacket measures what the number of services costs
// the packets of an established connection through the ingress sandbox:
// round trips of 64 bytes over one TCP connection from a client to a
// published port (DNAT to a backend, SNAT back), through a sandbox with
// 1 service and through one with 1000, the measured service's marks
// last in its chains. rtt1-ns and rtt1000-ns are the round trips' mean
// times; ratio is rtt1/rtt1000, the throughput at 1000 services as a
// share of that at 1.
//
// "new-only" is the sandbox as the syncer writes it: only packets that
// open a connection enter the mark chains (and past 64 entries take
// their mark from an ipset). "every-packet" keeps every MARK rule in its
// chain, as a sandbox below the threshold does, and adds back an
// unconditional jump into MESH-PREROUTING, as the mark chains were
// entered before, so every packet walks two MARK rules per service.
//
// Each variant runs on both data planes, iptables/… and ipvs/…; the IPVS
// ones are skipped where the kernel has no IPVS (make bench-rules-vm
// runs them in the test VM's stock kernel). Run as root:
//
//	go test ./lb -run '^$' -bench EstablishedPacket -benchtime 3x
func BenchmarkEstablishedPacket(b *testing.B) {
	testutil.RequireRoot(b)
	ctx := context.Background()
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		for _, variant := range []string{"new-only", "every-packet"} {
			b.Run(string(mode)+"/"+variant, func(b *testing.B) {
				if mode == ModeIPVS {
					needIPVS(b)
				}
				every := variant == "every-packet"
				if every {
					withBucketThreshold(b, 1<<30)
				}
				one, many := newWalkNet(b, mode, 1), newWalkNet(b, mode, 1000)
				if every {
					one.everyPacket(b, ctx)
					many.everyPacket(b, ctx)
				}
				compareOneAndMany(b, one, many, 5000, "rtt", (*walkNet).roundTrips)
			})
		}
	}
}

// BenchmarkNewConnection measures what the number of services costs a
// new connection through the ingress sandbox, the one packet of it that
// still walks the mark chains: each op connects from the client to the
// published port, makes one round trip of 64 bytes and closes (with a
// reset, so that no TIME_WAIT piles up), through a sandbox with 1 service
// and through one with 1000, alternately. conn1-ns and conn1000-ns are the
// mean times per connection; ratio is conn1/conn1000.
//
// "lookup" is the sandbox as the syncer writes it: past 64 entries the
// marks come from ipsets and MESH-SERVICES is split by the mark's low
// bits (buckets.go). "walk" keeps every entry in its chain, as a sandbox
// below the threshold does, so a new connection is matched against two
// MARK rules and one MESH-SERVICES rule per service (the IPVS plane has
// no MESH-SERVICES: IPVS finds the service by its mark in a hash). Both
// data planes, as in BenchmarkEstablishedPacket. Run as root:
//
//	go test ./lb -run '^$' -bench NewConnection -benchtime 3x
func BenchmarkNewConnection(b *testing.B) {
	testutil.RequireRoot(b)
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		for _, variant := range []string{"lookup", "walk"} {
			b.Run(string(mode)+"/"+variant, func(b *testing.B) {
				if mode == ModeIPVS {
					needIPVS(b)
				}
				if variant == "walk" {
					withBucketThreshold(b, 1<<30)
				}
				one, many := newWalkNet(b, mode, 1), newWalkNet(b, mode, 1000)
				compareOneAndMany(b, one, many, 500, "conn", (*walkNet).connections)
			})
		}
	}
}

// compareOneAndMany runs measure (n times per op) on the sandbox of 1
// service and on that of 1000, alternately so that a change of the
// machine's load weighs on both, and reports the mean of each as
// NAME1-ns and NAME1000-ns and their ratio (1 over 1000).
func compareOneAndMany(b *testing.B, one, many *walkNet, n int, name string, measure func(*walkNet, *testing.B, int) time.Duration) {
	b.Helper()
	var t1, tn time.Duration
	for i := 0; i < b.N; i++ {
		t1 += measure(one, b, n)
		tn += measure(many, b, n)
	}
	m1 := float64(t1.Nanoseconds()) / float64(b.N*n)
	mn := float64(tn.Nanoseconds()) / float64(b.N*n)
	b.ReportMetric(m1, name+"1-ns")
	b.ReportMetric(mn, name+"1000-ns")
	b.ReportMetric(m1/mn, "ratio")
	b.ReportMetric(0, "ns/op")
}

// connections opens n connections from the client to the measured
// service, one round trip each, and returns the time.
func (w *walkNet) connections(b *testing.B, n int) time.Duration {
	b.Helper()
	var elapsed time.Duration
	err := nsfile.Do(w.ns["client"], func() error {
		buf := make([]byte, 64)
		start := time.Now()
		for range n {
			c, err := net.Dial("tcp4", "203.0.113.1:8888")
			if err != nil {
				return err
			}
			_, err = c.Write(buf)
			if err == nil {
				_, err = io.ReadFull(c, buf)
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
			if err != nil {
				return err
			}
		}
		elapsed = time.Since(start)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return elapsed
}

// walkNet is a client, an ingress sandbox with n services and one
// backend (the roundRobin topology), with an echo connection open from
// the client to the last service's published port.
type walkNet struct {
	ns   map[string]string
	conn net.Conn
	buf  []byte
}

func newWalkNet(b *testing.B, mode Mode, n int) *walkNet {
	b.Helper()
	ns := newNamespaces(b, "client", "sbox", "a", "b", "c")
	buildRoundRobinNet(b, ns)
	dp, err := NewDataPlane(mode, ns["sbox"])
	if err != nil {
		b.Fatal(err)
	}
	sb := Sandbox{Kind: SandboxIngress, OwnAddr: addr("10.255.0.2"), Subnet: netip.MustParsePrefix("10.255.0.0/16")}
	for i := 1; i < n; i++ {
		sb.Services = append(sb.Services, benchService(i))
	}
	// The measured service is synced last, so its rules come last.
	if err := dp.Sync(context.Background(), sb); err != nil {
		b.Fatal(err)
	}
	sb.Services = append(sb.Services, Service{Key: "www/ingress", Name: "www", FWMark: 0x100, VIP: addr("10.255.0.4"),
		Ports: []Port{{"tcp", 8888, 8888}}, Backends: backends("10.255.0.5")})
	if err := dp.Sync(context.Background(), sb); err != nil {
		b.Fatal(err)
	}
	return dialEcho(b, ns)
}

// dialEcho starts an echo server on backend a's port 8888 and returns the
// walkNet of ns with a connection open from the client to the published
// port 203.0.113.1:8888, established end to end (and, through a sandbox
// with a flowtable, offloaded) by a few round trips.
func dialEcho(b *testing.B, ns map[string]string) *walkNet {
	b.Helper()
	echo(b, ns["a"], 8888)
	w := &walkNet{ns: ns, buf: make([]byte, 64)}
	err := nsfile.Do(ns["client"], func() (err error) {
		w.conn, err = net.Dial("tcp4", "203.0.113.1:8888")
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.conn.Close() })
	w.roundTrips(b, 10)
	return w
}

// everyPacket adds the unconditional jump into the marks.
func (w *walkNet) everyPacket(b *testing.B, ctx context.Context) {
	b.Helper()
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+w.ns["sbox"], "iptables", "-w", "-t", "mangle", "-I", "PREROUTING", "-j", chainMarkPre)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}

// roundTrips sends n messages and reads each echo, and returns the time.
func (w *walkNet) roundTrips(b *testing.B, n int) time.Duration {
	b.Helper()
	start := time.Now()
	for range n {
		if _, err := w.conn.Write(w.buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(w.conn, w.buf); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// echo listens on port in ns and echoes every connection.
func echo(b *testing.B, ns string, port int) {
	b.Helper()
	var ln net.Listener
	err := nsfile.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}
