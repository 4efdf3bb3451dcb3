package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// iperfSeconds is how long each throughput run lasts.
const iperfSeconds = 4

// iperfRun runs one iperf3 server (in server argv's context) and one
// client (in client argv's context) with the given number of parallel
// streams, and returns the received bit rate of them all.
func iperfRun(b *testing.B, server, client []string, addr string, streams int) float64 {
	b.Helper()
	srv := exec.Command(server[0], append(server[1:], "iperf3", "-s", "-1", "-p", "5201")...)
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var out []byte
	var err error
	for range 20 { // the server needs a moment to listen
		time.Sleep(150 * time.Millisecond)
		cmd := exec.Command(client[0], append(client[1:], "iperf3", "-c", addr, "-p", "5201", "-t", fmt.Sprint(iperfSeconds), "-P", fmt.Sprint(streams), "-J")...)
		if out, err = cmd.Output(); err == nil {
			break
		}
	}
	if err != nil {
		b.Fatalf("iperf3 -c %s: %v\n%s", addr, err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.End.SumReceived.BitsPerSecond == 0 {
		b.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	return res.End.SumReceived.BitsPerSecond
}

// BenchmarkOverlayThroughput compares TCP throughput between two tasks on
// different nodes (over VXLAN) with TCP throughput between the two nodes'
// underlay addresses, in the same run with the same tool (iperf3),
// alternating the two so that machine noise hits both alike: with one
// stream (overlay/underlay) and with four (overlay/underlay-4).
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
	for _, streams := range []int{1, 4} {
		var under, over []float64
		for i := 0; i < b.N; i++ {
			under = append(under, iperfRun(b, labExec("node2"), labExec("node1"), "192.168.33.11", streams))
			over = append(over, iperfRun(b, taskExec("node2", onNode2), taskExec("node1", onNode1), ip2, streams))
		}
		u, o := median(under), median(over)
		suffix := ""
		if streams > 1 {
			suffix = fmt.Sprintf("-%d", streams)
		}
		b.ReportMetric(u/1e9, "underlay"+suffix+"-Gbit/s")
		b.ReportMetric(o/1e9, "overlay"+suffix+"-Gbit/s")
		b.ReportMetric(o/u, "overlay/underlay"+suffix)
		b.Logf("%d streams: underlay %.2f Gbit/s, overlay %.2f Gbit/s, ratio %.3f (runs: %v / %v)", streams, u/1e9, o/1e9, o/u, under, over)
	}
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
