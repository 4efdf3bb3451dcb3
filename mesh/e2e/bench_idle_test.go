package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuTicks is a process's CPU time so far, its reaped children's included
// (the iptables-save a check runs), in clock ticks (100 a second).
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command may hold spaces: the fields start after its ")".
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+2:])
	var sum int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// BenchmarkIdleCPU measures what each meshd of a 3-node lab costs at idle
// with 100 services (one task each, on one overlay network, so each node
// holds some 35 task namespaces, the network's and the sandboxes): its CPU
// over 60 s, as a percentage of one core. The manager (node1) also runs
// raft and publishes the desired state.
func BenchmarkIdleCPU(b *testing.B) {
	l := newBenchLab(b, 3)
	l.mustB(b, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	for i := range 100 {
		l.mustB(b, "--node", "node1", "service", "create", "-d", "--name", fmt.Sprintf("idle%d", i), "--network", "ovnet", "whoami")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := l.ctl("--node", "node1", "service", "ls")
		if strings.Count(out, " 1/1 ") == 100 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("100 services not running after 2 minutes:\n%s", out)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(30 * time.Second) // let the start-up work settle
	nodes := l.load().Nodes()
	const window = 60 * time.Second
	b.ResetTimer()
	for range b.N {
		before := map[string]int64{}
		for _, n := range nodes {
			if n.PID > 0 {
				t, err := cpuTicks(n.PID)
				if err != nil {
					b.Fatal(err)
				}
				before[n.Name] = t
			}
		}
		time.Sleep(window)
		for _, n := range nodes {
			if n.PID > 0 {
				t, err := cpuTicks(n.PID)
				if err != nil {
					b.Fatal(err)
				}
				pct := float64(t-before[n.Name]) / 100 / window.Seconds() * 100
				b.ReportMetric(pct, "%cpu-"+n.Name)
			}
		}
	}
}
