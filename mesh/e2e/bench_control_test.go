package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// newBenchLabWith is newBenchLab with more lab up flags.
func newBenchLabWith(b *testing.B, n int, flags ...string) *testLab {
	b.Helper()
	l := &testLab{tb: b, prefix: randomPrefix(), root: b.TempDir()}
	b.Cleanup(l.down)
	args := append([]string{"lab", "up", "--nodes", fmt.Sprint(n), "--lb-mode", lbMode()}, flags...)
	if out, err := l.ctl(args...); err != nil {
		b.Fatalf("lab up: %v\n%s", err, out)
	}
	return l
}

// BenchmarkLeaderFailover kills the raft leader of three managers b.N
// times and reports the median time until a survivor's node ls shows
// another leader.
func BenchmarkLeaderFailover(b *testing.B) {
	if probeRun(b) {
		return
	}
	l := newBenchLabWith(b, 3, "--managers", "3")
	nodes := []string{"node1", "node2", "node3"}
	var took []time.Duration
	healthy := func(on string) bool {
		out, _ := l.on(on, "node", "ls", "--format", "{{.ManagerStatus}}")
		return strings.Count(out, "Reachable")+strings.Count(out, "Leader") == 3
	}
	for i := 0; i < b.N; i++ {
		var leader string
		for start := time.Now(); leader == "" || !healthy(leader); time.Sleep(100 * time.Millisecond) {
			if time.Since(start) > 60*time.Second {
				b.Fatal("three managers not healthy within 60 s")
			}
			for _, n := range nodes {
				if leader = l.leaderOf(n); leader != "" {
					break
				}
			}
		}
		survivor := nodes[(slices.Index(nodes, leader)+1)%3]
		l.mustB(b, "lab", "stop", leader, "--kill")
		start := time.Now()
		for {
			if next := l.leaderOf(survivor); next != "" && next != leader {
				took = append(took, time.Since(start))
				break
			}
			if time.Since(start) > 60*time.Second {
				b.Fatalf("no new leader 60 s after killing %s", leader)
			}
			time.Sleep(50 * time.Millisecond) // polling node ls, the figure's resolution
		}
		l.mustB(b, "lab", "start", leader)
	}
	b.ReportMetric(float64(median(took).Milliseconds()), "failover-ms")
	b.Logf("leader failover over %d kills: median %s, all %v", len(took), median(took), took)
}

// BenchmarkWriteLatency times service create -d (the whole meshctl
// command) on a one-manager and a three-manager lab side by side,
// alternating, and reports both medians and their ratio.
func BenchmarkWriteLatency(b *testing.B) {
	if probeRun(b) {
		return
	}
	one := newBenchLabWith(b, 3)
	three := newBenchLabWith(b, 3, "--managers", "3")
	var t1, t3 []time.Duration
	for i := 0; i < b.N; i++ {
		for _, c := range []struct {
			l   *testLab
			out *[]time.Duration
		}{{one, &t1}, {three, &t3}} {
			start := time.Now()
			c.l.mustB(b, "--node", "node1", "service", "create", "-d", "--name", fmt.Sprintf("w%d", i), "alpine")
			*c.out = append(*c.out, time.Since(start))
		}
	}
	m1, m3 := median(t1), median(t3)
	b.ReportMetric(float64(m1.Microseconds())/1000, "1-manager-ms")
	b.ReportMetric(float64(m3.Microseconds())/1000, "3-managers-ms")
	b.ReportMetric(float64(m3)/float64(m1), "ratio")
	b.Logf("service create -d over %d writes: 1 manager %s, 3 managers %s (ratio %.2f)", b.N, m1, m3, float64(m3)/float64(m1))
}

// BenchmarkJoin times swarm join (the whole meshctl command) of node2 to
// node1's swarm, leaving between joins, and reports the median.
func BenchmarkJoin(b *testing.B) {
	if probeRun(b) {
		return
	}
	l := newBenchLabWith(b, 2, "--no-swarm")
	l.mustB(b, "--node", "node1", "swarm", "init", "--advertise-addr", "192.168.33.10")
	token := strings.TrimSpace(l.mustB(b, "--node", "node1", "swarm", "join-token", "-q", "worker"))
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		l.mustB(b, "--node", "node2", "swarm", "join", "--token", token, "192.168.33.10:2377")
		took = append(took, time.Since(start))
		l.mustB(b, "--node", "node2", "swarm", "leave")
	}
	b.ReportMetric(float64(median(took).Microseconds())/1000, "join-ms")
	b.Logf("swarm join over %d joins: median %s", b.N, median(took))
}
