package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dnsperfSeconds is how long each dnsperf run lasts.
const dnsperfSeconds = 5

// dnsperfResult is what one dnsperf run measured.
type dnsperfResult struct {
	qps      float64
	p99, max time.Duration
	failed   int // queries lost or answered with another rcode
}

var (
	dnsperfQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	dnsperfLost = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	// dnsperfCodes is the summary's "Response codes: NOERROR 404 (80.00%), NXDOMAIN 101 (20.00%)".
	dnsperfCodes = regexp.MustCompile(`Response codes:\s+(.*)`)
	dnsperfCode  = regexp.MustCompile(`([A-Z]+) ([0-9]+) \(`)
	// dnsperfLine is one answer of -v: "> RCODE name type seconds".
	dnsperfLine = regexp.MustCompile(`(?m)^> (\S+) (\S+) \S+ ([0-9.]+)$`)
)

// dnsperfIn runs dnsperf in task's namespaces against server with the
// queries of file, 100 outstanding, and counts as failed the queries
// lost and the answers with an rcode other than NXDOMAIN for miss and
// NOERROR for the rest (an overloaded server's SERVFAIL, say). With
// perAnswer it runs dnsperf -v, whose line per answer gives the p99 and
// the worst latency; without, dnsperf does only its own work, and the
// summary's rcode counts give the failures.
func dnsperfIn(b *testing.B, l *testLab, task, server, file, miss string, perAnswer bool, extra ...string) dnsperfResult {
	b.Helper()
	// -v prints a line per answer, tens of thousands a second: into a
	// file, not a pipe, whose reader would be a third process on the CPUs
	// the client and the server share, waking at every write.
	f, err := os.Create(filepath.Join(b.TempDir(), "dnsperf.out"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	argv := []string{"--node", "node1", "exec", task, "--", "dnsperf", "-s", server, "-d", file,
		"-q", "100", "-l", strconv.Itoa(dnsperfSeconds)}
	if perAnswer {
		argv = append(argv, "-v")
	}
	argv = append(argv, extra...)
	err = l.ctlTo(2*time.Minute, f, f, argv...)
	raw, rerr := os.ReadFile(f.Name())
	if err == nil {
		err = rerr
	}
	out := string(raw)
	qps, lost := dnsperfQPS.FindStringSubmatch(out), dnsperfLost.FindStringSubmatch(out)
	if err != nil || qps == nil || lost == nil {
		b.Fatalf("dnsperf -s %s: %v\n%s", server, err, tail(out, 2000))
	}
	var r dnsperfResult
	r.failed, _ = strconv.Atoi(lost[1])
	r.qps, _ = strconv.ParseFloat(qps[1], 64)
	if !perAnswer {
		codes := dnsperfCodes.FindStringSubmatch(out)
		if codes == nil {
			b.Fatalf("dnsperf -s %s: no response codes\n%s", server, tail(out, 2000))
		}
		for _, c := range dnsperfCode.FindAllStringSubmatch(codes[1], -1) {
			if c[1] != "NOERROR" && (c[1] != "NXDOMAIN" || miss == "") {
				n, _ := strconv.Atoi(c[2])
				r.failed += n
			}
		}
		return r
	}
	var lat []time.Duration
	for _, m := range dnsperfLine.FindAllStringSubmatch(out, -1) {
		want := "NOERROR"
		if m[2] == miss {
			want = "NXDOMAIN"
		}
		if m[1] != want {
			r.failed++
		}
		s, _ := strconv.ParseFloat(m[3], 64)
		lat = append(lat, time.Duration(s*float64(time.Second)))
	}
	if len(lat) == 0 {
		b.Fatalf("dnsperf -s %s: no answers\n%s", server, tail(out, 2000))
	}
	slices.Sort(lat)
	r.max, r.p99 = lat[len(lat)-1], lat[len(lat)*99/100]
	return r
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// BenchmarkDNS measures the embedded DNS as a task sees it: dnsperf, run
// inside a task with 100 queries outstanding, against 127.0.0.11 (meshd,
// through the task's DNAT) and against dnsmasq started in the same
// task's network namespace on 127.0.0.12 holding the same records (read
// from meshd's own answers), alternating runs. Two query mixes, each
// measured so: "local", a service's name (its VIP), tasks.<service>
// (three task IPs) and the same for the querying task's service; and
// "miss", the same plus a name neither knows (one query in five), which
// both forward to the lab's upstream (dnsmasq at 192.168.33.1 answering
// NXDOMAIN). Now and then the node's conntrack drops a forwarded query
// as it leaves, where dnsmasq's forwards through the node's masquerade
// crowd its ports toward the upstream (see mesh/dns/upstream.go's send):
// meshd sends it again on another socket, dnsmasq never answers it and
// dnsperf waits out its timeout with 100 queries lost (a stalled run,
// seen by hand). So the local mix is the one that compares the servers'
// own work, and failed counts show how far to trust the other. For each
// mix it reports, from runs of plain dnsperf, the medians of each server's
// queries/s, their ratio, and each server process's CPU per query
// (meshd's includes whatever else the node agent did); from runs of
// dnsperf -v, whose line per answer gives the latencies, p99 and worst
// latency, and their queries/s and ratio too ("-v"): writing those lines
// costs dnsperf more than either server's work, so on the two CPUs the
// three share, the client bounds -v's rate and the ratio there mostly
// measures it. Then the -v runs again with dnsperf held to one rate for
// both servers (-Q, half the slower one's median), reported as p99, worst
// and CPU per query "@rate".
func BenchmarkDNS(b *testing.B) {
	if probeRun(b) {
		return
	}
	l := newBenchLab(b, 1)
	l.startUpstreamDNS(b)
	l.mustB(b, "--node", "node1", "network", "create", "--driver", "overlay", "benchnet")
	l.mustB(b, "--node", "node1", "service", "create", "--name", "www", "--replicas", "3", "--network", "benchnet", "whoami")
	l.mustB(b, "--node", "node1", "service", "create", "--name", "client", "--network", "benchnet", "alpine")
	const task, miss = "client.1", "nosuch.example"
	pid := strings.TrimSpace(l.mustB(b, "--node", "node1", "inspect", "-f", "{{.State.Pid}}", task))

	dir := b.TempDir()
	names := []string{"www", "tasks.www", "client", "tasks.client"}
	answers := map[string]string{} // name → meshd's addresses, sorted
	var hosts, local strings.Builder
	for _, name := range names {
		out := l.mustB(b, "--node", "node1", "exec", task, "--", "dig", "+short", name, "@127.0.0.11")
		ips := strings.Fields(out)
		if len(ips) == 0 {
			b.Fatalf("meshd does not answer %s", name)
		}
		answers[name] = sortedLines(out)
		for _, ip := range ips {
			fmt.Fprintf(&hosts, "%s %s\n", ip, name)
		}
		fmt.Fprintf(&local, "%s A\n", name)
	}
	hostsFile := filepath.Join(dir, "hosts")
	mixes := []string{"local", "miss"}
	queryFiles := map[string]string{"local": filepath.Join(dir, "local"), "miss": filepath.Join(dir, "miss")}
	for f, s := range map[string]string{hostsFile: hosts.String(), queryFiles["local"]: local.String(),
		queryFiles["miss"]: local.String() + miss + " A\n"} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// nsenter without -p execs dnsmasq itself, so Kill stops it.
	dnsmasq := exec.Command("nsenter", "-t", pid, "-n", "--", "dnsmasq", "--keep-in-foreground",
		"--no-resolv", "--no-hosts", "--addn-hosts="+hostsFile, "--server=192.168.33.1",
		"--listen-address=127.0.0.12", "--bind-interfaces", "--port=53", "--pid-file=", "--user=root")
	if err := dnsmasq.Start(); err != nil {
		b.Fatalf("start dnsmasq: %v", err)
	}
	defer func() { _ = dnsmasq.Process.Kill(); _ = dnsmasq.Wait() }()
	for _, name := range names { // the same records, once dnsmasq listens
		for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			out, _ := l.on("node1", "exec", task, "--", "dig", "+short", "+time=1", "+tries=1", name, "@127.0.0.12")
			if sortedLines(out) == answers[name] {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("dnsmasq in %s answers %s with %q, meshd with %q", task, name, out, answers[name])
			}
		}
	}
	meshdPID := 0
	for _, n := range l.load().Nodes() {
		if n.Name == "node1" {
			meshdPID = n.PID
		}
	}
	// tally is what a server's runs of one kind measured.
	type tally struct {
		runs    []dnsperfResult
		cpu     int64 // ticks, 100 a second
		queries float64
	}
	type server struct {
		name, addr string
		pid        int
		// As fast as dnsperf goes, plain and with -v; with -v at one
		// rate for both.
		plain, full, fixed tally
	}
	servers := map[string][]*server{}
	for _, mix := range mixes {
		servers[mix] = []*server{{name: mix + "-meshd", addr: "127.0.0.11", pid: meshdPID},
			{name: mix + "-dnsmasq", addr: "127.0.0.12", pid: dnsmasq.Process.Pid}}
	}
	missOf := map[string]string{"local": "", "miss": miss} // the name answered NXDOMAIN
	measure := func(s *server, t *tally, mix string, perAnswer bool, extra ...string) {
		before, _, err := statTicks(s.pid)
		if err != nil {
			b.Fatal(err)
		}
		r := dnsperfIn(b, l, task, s.addr, queryFiles[mix], missOf[mix], perAnswer, extra...)
		after, _, err := statTicks(s.pid)
		if err != nil {
			b.Fatal(err)
		}
		t.runs = append(t.runs, r)
		t.cpu += after[0] + after[1] - before[0] - before[1] // the server's own
		t.queries += r.qps * dnsperfSeconds
	}
	med := func(t tally, f func(dnsperfResult) float64) float64 {
		var xs []float64
		for _, r := range t.runs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	qps := func(r dnsperfResult) float64 { return r.qps }
	p99 := func(r dnsperfResult) float64 { return float64(r.p99.Microseconds()) / 1000 }
	worst := func(r dnsperfResult) float64 { return float64(r.max.Microseconds()) / 1000 }
	b.ResetTimer()
	for i := 0; i < 2*b.N; i++ {
		for _, mix := range mixes {
			s := servers[mix][(i+i/2)%2] // meshd dnsmasq dnsmasq meshd meshd ...
			measure(s, &s.plain, mix, false)
			measure(s, &s.full, mix, true)
		}
	}
	// The -v runs again at one rate, half the slower server's: at full
	// speed dnsperf -v, on the same two CPUs, bounds the rate, and the
	// server that answers sooner leaves it fewer answers per wake-up, so
	// q/s there mixes the client's work with the server's. At one rate,
	// p99 and CPU per query compare the servers alone.
	rates := map[string]int{}
	for _, mix := range mixes {
		rates[mix] = int(min(med(servers[mix][0].full, qps), med(servers[mix][1].full, qps)) / 2)
	}
	for i := 0; i < 2*b.N; i++ {
		for _, mix := range mixes {
			s := servers[mix][(i+i/2)%2]
			measure(s, &s.fixed, mix, true, "-Q", strconv.Itoa(rates[mix]))
		}
	}
	b.StopTimer()
	for _, mix := range mixes {
		for _, s := range servers[mix] {
			b.ReportMetric(med(s.plain, qps), s.name+"-q/s")
			b.ReportMetric(float64(s.plain.cpu)*1e4/s.plain.queries, s.name+"-cpu-µs/q")
			b.ReportMetric(med(s.full, qps), s.name+"-q/s-v")
			b.ReportMetric(med(s.full, p99), s.name+"-p99-ms")
			b.ReportMetric(med(s.full, worst), s.name+"-max-ms")
			b.ReportMetric(med(s.fixed, p99), s.name+"-p99-ms@rate")
			b.ReportMetric(med(s.fixed, worst), s.name+"-max-ms@rate")
			b.ReportMetric(float64(s.fixed.cpu)*1e4/s.fixed.queries, s.name+"-cpu-µs/q@rate")
			failed := 0
			for _, r := range slices.Concat(s.plain.runs, s.full.runs, s.fixed.runs) {
				failed += r.failed
			}
			b.ReportMetric(float64(failed), s.name+"-failed")
			b.Logf("%s runs (q/s p99 max failed): plain %v; -v %v; at %d q/s: %v", s.name, s.plain.runs, s.full.runs, rates[mix], s.fixed.runs)
		}
		b.ReportMetric(float64(rates[mix]), mix+"-rate-q/s")
		b.ReportMetric(med(servers[mix][0].plain, qps)/med(servers[mix][1].plain, qps), mix+"-meshd/dnsmasq")
		b.ReportMetric(med(servers[mix][0].full, qps)/med(servers[mix][1].full, qps), mix+"-meshd/dnsmasq-v")
	}
}
