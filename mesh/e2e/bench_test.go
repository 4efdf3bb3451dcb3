package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// iperfSeconds is how long each throughput run lasts.
const iperfSeconds = 4

// iperfRun runs procs iperf3 servers (in server argv's context) and as
// many clients at once (in client argv's context), each client with the
// given number of parallel streams, and returns the bit rate they
// received together, the machine's busy CPU ticks meanwhile, and the
// senders' TCP congestion control.
func iperfRun(b *testing.B, server, client []string, addr string, procs, streams int) (rate float64, busy int64, cc string) {
	b.Helper()
	for i := range procs {
		port := fmt.Sprint(5201 + i)
		srv := exec.Command(server[0], append(server[1:], "iperf3", "-s", "-1", "-p", port)...)
		if err := srv.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	}
	rates := make([]float64, procs)
	ccs := make([]string, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	start := machineBusy(b)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rates[i], ccs[i], errs[i] = iperfClient(client, addr, 5201+i, streams)
		}()
	}
	wg.Wait()
	busy = machineBusy(b) - start
	for i, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
		rate += rates[i]
	}
	return rate, busy, ccs[0]
}

// iperfClient runs one iperf3 client against addr:port, trying again
// while its server is not yet listening, and returns the received bit
// rate of its streams and the sender's TCP congestion control. A
// congestion control named in $MESHD_BENCH_TCP_CC is asked for (-C).
func iperfClient(client []string, addr string, port, streams int) (rate float64, cc string, err error) {
	// A copy: the clients of one run share client's array.
	args := append(slices.Clone(client[1:]), "iperf3", "-c", addr, "-p", fmt.Sprint(port), "-t", fmt.Sprint(iperfSeconds), "-P", fmt.Sprint(streams), "-J")
	if want := os.Getenv("MESHD_BENCH_TCP_CC"); want != "" {
		args = append(args, "-C", want)
	}
	var out []byte
	for range 20 { // the server needs a moment to listen
		time.Sleep(150 * time.Millisecond)
		if out, err = exec.Command(client[0], args...).Output(); err == nil {
			break
		}
	}
	if err != nil {
		return 0, "", fmt.Errorf("iperf3 -c %s -p %d: %v\n%s", addr, port, err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SenderCC string `json:"sender_tcp_congestion"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.End.SumReceived.BitsPerSecond == 0 {
		return 0, "", fmt.Errorf("iperf3 -c %s -p %d output: %v\n%s", addr, port, err, out)
	}
	return res.End.SumReceived.BitsPerSecond, res.End.SenderCC, nil
}

// BenchmarkOverlayThroughput compares TCP throughput between two tasks on
// different nodes (over VXLAN) with TCP throughput between the two nodes'
// underlay addresses, in the same run with the same tool (iperf3),
// alternating the two so that machine noise hits both alike: with one
// stream (overlay/underlay), with four streams of one iperf3 process
// (overlay/underlay-4), and with four iperf3 processes of one stream
// each (overlay/underlay-4proc).
//
// iperf3 3.12 runs all of a process's streams in one thread, and veth
// hands a packet to the receive path on the CPU that sent it, so with one
// process the path's work piles up beside the sending thread while the
// machine idles (13-18 % of its time in three runs by hand, over the
// underlay and the overlay alike; under 1 % with four processes): -4
// compares what the two paths cost there. Four processes keep both CPUs
// busy: -4proc compares what they cost the machine. Each variant also reports CPU time per gigabit
// (cpu-ms/Gbit, the machine's busy time over the bits received).
//
// The ratios depend on TCP's congestion control, which the log names:
// the machine's default, or $MESHD_BENCH_TCP_CC (iperf3 -C). BBR without
// an fq qdisc paces each socket with a timer of its own; cubic, Debian's
// default, does not pace. One run each on a 2-core machine whose default
// is BBR, one stream, underlay against overlay: 17.0 against 13.4 Gbit/s
// (0.790) and 90.5 against 113.8 ms of CPU per Gbit with BBR; 29.6
// against 18.4 Gbit/s (0.623) and 59.4 against 89.4 ms per Gbit with
// cubic. The overlay is faster with cubic, but further behind the
// underlay: BBR's pacing costs the underlay more of what it could do.
func BenchmarkOverlayThroughput(b *testing.B) {
	if probeRun(b) {
		return
	}
	l := newBenchLab(b, 2)
	l.mustB(b, "--node", "node1", "network", "create", "--driver", "overlay", "benchnet")
	l.mustB(b, "--node", "node1", "service", "create", "--name", "bench", "--replicas", "2", "--network", "benchnet", "alpine")
	out := l.mustB(b, "--node", "node1", "service", "ps", "bench", "--format", "{{.NodeName}} {{(index .Networks 0).Addr}} {{.Name}}")
	var onNode1, onNode2, ip2 string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if f[0] == "node1" {
			onNode1 = f[2]
		} else {
			onNode2, ip2 = f[2], strings.Split(f[1], "/")[0]
		}
	}
	ctl := []string{ctlPath(), "--lab-prefix", l.prefix, "--lab-root", l.root}
	labExec := func(node string) []string { return append(slices.Clone(ctl), "lab", "exec", node, "--") }
	taskExec := func(node, task string) []string {
		return append(slices.Clone(ctl), "--node", node, "exec", task, "--")
	}
	for _, v := range []struct {
		suffix         string
		procs, streams int
	}{{"", 1, 1}, {"-4", 1, 4}, {"-4proc", 4, 1}} {
		var under, over, underCPU, overCPU []float64
		var underCC, overCC string
		for i := 0; i < b.N; i++ {
			rate, busy, cc := iperfRun(b, labExec("node2"), labExec("node1"), "192.168.33.11", v.procs, v.streams)
			under, underCPU, underCC = append(under, rate), append(underCPU, cpuPerGbit(rate, busy)), cc
			rate, busy, cc = iperfRun(b, taskExec("node2", onNode2), taskExec("node1", onNode1), ip2, v.procs, v.streams)
			over, overCPU, overCC = append(over, rate), append(overCPU, cpuPerGbit(rate, busy)), cc
		}
		if underCC != overCC {
			b.Fatalf("TCP congestion control %q on the underlay, %q on the overlay: not the same measure", underCC, overCC)
		}
		u, o := median(under), median(over)
		b.ReportMetric(u/1e9, "underlay"+v.suffix+"-Gbit/s")
		b.ReportMetric(o/1e9, "overlay"+v.suffix+"-Gbit/s")
		b.ReportMetric(o/u, "overlay/underlay"+v.suffix)
		b.ReportMetric(median(underCPU), "underlay"+v.suffix+"-cpu-ms/Gbit")
		b.ReportMetric(median(overCPU), "overlay"+v.suffix+"-cpu-ms/Gbit")
		b.Logf("%d process(es) × %d stream(s), TCP %s: underlay %.2f Gbit/s, overlay %.2f Gbit/s, ratio %.3f; CPU %.1f against %.1f ms per Gbit (runs: %v / %v)",
			v.procs, v.streams, overCC, u/1e9, o/1e9, o/u, median(underCPU), median(overCPU), under, over)
	}
}

// cpuPerGbit is the machine's busy CPU time, in ms, per gigabit received
// at rate bits/s over an iperf3 run: busy ticks are 10 ms each.
func cpuPerGbit(rate float64, busy int64) float64 {
	gbit := rate / 1e9 * iperfSeconds
	return float64(busy) * 10 / gbit
}

// median is the middle value (the upper one of an even count).
func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

var (
	wrkRPS   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkCount = regexp.MustCompile(`(\d+) requests in`)
)

// wrkFromClient runs wrk from the client namespace for d and returns
// requests/s and how many requests were answered.
func wrkFromClient(b *testing.B, l *testLab, url string, d time.Duration) (rps, requests float64) {
	b.Helper()
	out, err := l.ctl("lab", "exec", "client", "--", "wrk", "-t", "2", "-c", "32", "-d", d.String(), url)
	m, n := wrkRPS.FindStringSubmatch(out), wrkCount.FindStringSubmatch(out)
	if err != nil || m == nil || n == nil || strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	rps, _ = strconv.ParseFloat(m[1], 64)
	requests, _ = strconv.ParseFloat(n[1], 64)
	return rps, requests
}
