package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuTicks is a process's CPU time so far, and its children's (the
// iptables-save and iptables-restore it runs, including those it keeps
// running in its sandboxes), in clock ticks (100 a second). A reaped
// child's time is in the process's own stat; a living child's is read
// from its stat, so that one reaped during a window is counted once.
func cpuTicks(pid int) (self, children int64, err error) {
	t, _, err := statTicks(pid)
	if err != nil {
		return 0, 0, err
	}
	self, children = t[0]+t[1], t[2]+t[3]
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ct, ppid, err := statTicks(child)
		if err != nil || ppid != pid {
			continue // gone meanwhile, or not a child
		}
		children += ct[0] + ct[1] + ct[2] + ct[3]
	}
	return self, children, nil
}

// statTicks reads a process's utime, stime, cutime and cstime, and its
// parent's pid, from /proc/PID/stat.
func statTicks(pid int) (t [4]int64, ppid int, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return t, 0, err
	}
	// The command may hold spaces: the fields start after its ")".
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+2:])
	if len(f) < 15 {
		return t, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return t, 0, err
	}
	for i := range t {
		if t[i], err = strconv.ParseInt(f[11+i], 10, 64); err != nil {
			return t, 0, err
		}
	}
	return t, ppid, nil
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
	reportIdleCPU(b, l)
}

// BenchmarkIdleCPUAt1000 measures each meshd of a 2-node lab at idle
// holding 1000 published services without tasks, as bench-mesh's largest
// case: what the size of the state alone costs a node each second (the
// leader's sync and publish, the nodes' looks at the desired state,
// gossip's full-state exchanges); then what a service removed and one
// added cost a worker at that size (reportChangeCPU).
func BenchmarkIdleCPUAt1000(b *testing.B) {
	l := newBenchLab(b, 2)
	for i := range 1000 {
		l.mustB(b, "--node", "node1", "service", "create", "-d", "--replicas", "0",
			"--name", fmt.Sprintf("idle%d", i), "--publish", fmt.Sprintf("%d:80", 20000+i), "whoami")
	}
	waitRules(b, l, 1000)
	time.Sleep(30 * time.Second) // let the start-up work settle
	idle := reportIdleCPU(b, l)
	reportChangeCPU(b, l, idle["node2"])
}

// reportChangeCPU reports what node2's meshd (a worker) spends on each of
// 20 services removed one after the other from the 1000, then on each of
// them published again: its CPU and its children's over a 20 s window
// holding the changes and their rules, less what it spends at idle
// (idlePct, % of a core) over as long. The changes' commands run from the
// manager; node2 only follows them.
func reportChangeCPU(b *testing.B, l *testLab, idlePct float64) {
	b.Helper()
	const changes, window = 20, 20 * time.Second
	var pid int
	for _, n := range l.load().Nodes() {
		if n.Name == "node2" {
			pid = n.PID
		}
	}
	// perChange runs change for each of the services, and waits until
	// node2 marks want published ports.
	perChange := func(want int, change func(i int)) float64 {
		s0, c0, err := cpuTicks(pid)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := range changes {
			change(i)
		}
		waitMarked(b, l, fmt.Sprint(want), func(got int) bool { return got == want })
		if left := window - time.Since(start); left > 0 {
			time.Sleep(left) // the window is fixed, so the idle share is known
		} else {
			b.Fatalf("%d changes took %v, past the %v window", changes, time.Since(start), window)
		}
		s1, c1, err := cpuTicks(pid)
		if err != nil {
			b.Fatal(err)
		}
		busyMs := float64(s1-s0+c1-c0) * 10
		return (busyMs - idlePct/100*float64(window.Milliseconds())) / changes
	}
	rm := perChange(1000-changes, func(i int) {
		l.mustB(b, "--node", "node1", "service", "rm", fmt.Sprintf("idle%d", i))
	})
	add := perChange(1000, func(i int) {
		l.mustB(b, "--node", "node1", "service", "create", "-d", "--replicas", "0",
			"--name", fmt.Sprintf("idle%d", i), "--publish", fmt.Sprintf("%d:80", 20000+i), "whoami")
	})
	b.ReportMetric(rm, "node2-cpu-ms/remove")
	b.ReportMetric(add, "node2-cpu-ms/add")
	b.ReportMetric(rm/add, "remove/add")
}

// reportIdleCPU reports each meshd's CPU over a 60 s window per op, as a
// percentage of one core, and the share of it its iptables processes
// took; it returns the last window's percentages by node.
func reportIdleCPU(b *testing.B, l *testLab) map[string]float64 {
	b.Helper()
	last := map[string]float64{}
	nodes := l.load().Nodes()
	const window = 60 * time.Second
	b.ResetTimer()
	for range b.N {
		type ticks struct{ self, children int64 }
		before := map[string]ticks{}
		for _, n := range nodes {
			if n.PID > 0 {
				s, c, err := cpuTicks(n.PID)
				if err != nil {
					b.Fatal(err)
				}
				before[n.Name] = ticks{s, c}
			}
		}
		time.Sleep(window)
		pct := func(t int64) float64 { return float64(t) / 100 / window.Seconds() * 100 }
		for _, n := range nodes {
			if n.PID > 0 {
				s, c, err := cpuTicks(n.PID)
				if err != nil {
					b.Fatal(err)
				}
				last[n.Name] = pct(s - before[n.Name].self + c - before[n.Name].children)
				b.ReportMetric(last[n.Name], "%cpu-"+n.Name)
				// The rule checks' and changes' processes alone.
				b.ReportMetric(pct(c-before[n.Name].children), "%cpu-iptables-"+n.Name)
			}
		}
	}
	return last
}
