package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// meshPaths are the four ways the client reaches the one task on node1,
// as the benchmark names them: the routing mesh entered on node2 (no
// task there: the request crosses VXLAN), the routing mesh entered on
// node1 (the task's own node), the task's host-mode port, and HAProxy in
// TCP mode on node2 forwarding to that port (the userspace peer).
var meshPaths = []string{"mesh-via-node2", "mesh-via-node1", "direct", "haproxy"}

// serverBench is one server measured over meshPaths: its address on each,
// and the client's tool, which returns requests/s and how many requests
// were answered.
type serverBench struct {
	name   string
	create []string          // the meshctl command line that makes its service
	addrs  map[string]string // by path: host:port
	run    func(b *testing.B, l *testLab, addr string) (rps, requests float64)
}

// BenchmarkMeshServers measures what users run through the routing mesh:
// Debian's nginx (a task running /usr/sbin/nginx) under wrk, and Debian's
// redis-server (the redis image) under redis-benchmark's SET, each with
// its one task on node1, over meshPaths in the same run, alternating the
// paths so that the machine's noise hits them alike; then the same with
// 100 and 1000 services on the cluster (no tasks: published ports, VIPs
// and their rules on every node), the server's own the only one at 1. It
// reports each path's median requests/s and the ratios the issue asks
// for, each the median of the rounds' own ratios (pairedRatio):
// mesh/direct entering on node2 and on node1, mesh/HAProxy, and
// mesh/direct at 100 and 1000 services as a share of the same at 1
// (…-mesh/direct@N-vs-1).
//
// Every path is CPU-bound on this machine, client included, so it also
// reports the machine's busy CPU time per request (/proc/stat, all CPUs,
// every process: client, server, meshd and the kernel's work on the
// path) and what each mesh path costs over the direct one, in µs of CPU
// per request: the price of a hop, which moves less with the machine's
// speed than requests/s do. The client's start (meshctl lab exec, some
// milliseconds of CPU) is counted in every path alike.
//
//	make bench-mesh
func BenchmarkMeshServers(b *testing.B) {
	if probeRun(b) {
		return
	}
	for _, tool := range []string{"nginx", "haproxy", "wrk", "redis-server", "redis-benchmark"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s: not installed (make deps installs it)", tool)
		}
	}
	l := newBenchLab(b, 2)
	dir := b.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	// One worker, as the task is one of many on a node; no logs, Debian's
	// default page, as its image serves it.
	writeFile(b, conf, fmt.Sprintf(`worker_processes 1;
pid %s/nginx.pid;
error_log stderr;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 80; root /usr/share/nginx/html; index index.html; }
}
`, dir))
	haproxyCfg := filepath.Join(dir, "haproxy.cfg")
	writeFile(b, haproxyCfg, `global
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen web
  bind 0.0.0.0:9090
  server web 192.168.33.10:8080
listen kv
  bind 0.0.0.0:9379
  server kv 192.168.33.10:16379
`)
	haproxy := exec.Command(ctlPath(), "--lab-prefix", l.prefix, "--lab-root", l.root, "lab", "exec", "node2", "--",
		"haproxy", "-db", "-f", haproxyCfg)
	if err := haproxy.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = haproxy.Process.Kill(); _ = haproxy.Wait() }()

	nginx := serverBench{name: "nginx", run: wrkRequests,
		create: []string{"--node", "node1", "service", "create", "--name", "web", "--constraint", "node.hostname==node1",
			"--publish", "8888:80", "--publish", "mode=host,published=8080,target=80",
			"--", "nginx", "-c", conf, "-g", "daemon off;"},
		addrs: map[string]string{
			"mesh-via-node2": "192.168.33.11:8888", "mesh-via-node1": "192.168.33.10:8888",
			"direct": "192.168.33.10:8080", "haproxy": "192.168.33.11:9090"}}
	redis := serverBench{name: "redis", run: redisSets,
		create: []string{"--node", "node1", "service", "create", "--name", "kv", "--constraint", "node.hostname==node1",
			"--publish", "6379:6379", "--publish", "mode=host,published=16379,target=6379", "redis"},
		addrs: map[string]string{
			"mesh-via-node2": "192.168.33.11:6379", "mesh-via-node1": "192.168.33.10:6379",
			"direct": "192.168.33.10:16379", "haproxy": "192.168.33.11:9379"}}
	// Every path answers before anything is measured.
	answering := func(s serverBench) {
		for _, p := range meshPaths {
			addr := s.addrs[p]
			testutil.Eventually(b, 30*time.Second, s.name+" answering over "+p+" ("+addr+")", func() error {
				out, err := l.ctl("lab", "exec", "client", "--", "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1))
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		}
	}
	base := map[string]float64{} // mesh via node2 / direct by server, at 1 service
	measure := func(s serverBench, total int) {
		runs, cpu := map[string][]float64{}, map[string][]float64{}
		for range b.N {
			for _, p := range meshPaths {
				before := machineBusy(b)
				rps, n := s.run(b, l, s.addrs[p])
				runs[p] = append(runs[p], rps)
				cpu[p] = append(cpu[p], float64(machineBusy(b)-before)*1e4/n) // ticks of 10 ms → µs
			}
		}
		med, medCPU := map[string]float64{}, map[string]float64{}
		for _, p := range meshPaths {
			med[p], medCPU[p] = median(runs[p]), median(cpu[p])
			b.ReportMetric(med[p], fmt.Sprintf("%s-%s-req/s@%d", s.name, p, total))
			b.ReportMetric(medCPU[p], fmt.Sprintf("%s-%s-cpu-µs/req@%d", s.name, p, total))
		}
		for _, p := range []string{"mesh-via-node2", "mesh-via-node1", "haproxy"} {
			b.ReportMetric(medCPU[p]-medCPU["direct"], fmt.Sprintf("%s-%s-over-direct-cpu-µs/req@%d", s.name, p, total))
		}
		viaNode2 := pairedRatio(runs["mesh-via-node2"], runs["direct"])
		b.ReportMetric(viaNode2, fmt.Sprintf("%s-mesh-via-node2/direct@%d", s.name, total))
		b.ReportMetric(pairedRatio(runs["mesh-via-node1"], runs["direct"]), fmt.Sprintf("%s-mesh-via-node1/direct@%d", s.name, total))
		b.ReportMetric(pairedRatio(runs["mesh-via-node2"], runs["haproxy"]), fmt.Sprintf("%s-mesh/haproxy@%d", s.name, total))
		if total == 1 {
			base[s.name] = viaNode2
		} else {
			b.ReportMetric(viaNode2/base[s.name], fmt.Sprintf("%s-mesh/direct@%d-vs-1", s.name, total))
		}
		b.Logf("%d services, %s: mesh via node2 %.0f, via node1 %.0f, direct %.0f, HAProxy %.0f req/s (runs %v); "+
			"CPU per request %.1f, %.1f, %.1f, %.1f µs (runs %v)",
			total, s.name, med["mesh-via-node2"], med["mesh-via-node1"], med["direct"], med["haproxy"], runs,
			medCPU["mesh-via-node2"], medCPU["mesh-via-node1"], medCPU["direct"], medCPU["haproxy"], cpu)
	}

	// At 1 service, each server's is the cluster's only one: web is
	// removed, its ports no longer marked, before kv is made.
	l.mustB(b, nginx.create...)
	answering(nginx)
	measure(nginx, 1)
	l.mustB(b, "--node", "node1", "service", "rm", "web")
	waitMarked(b, l, "no", func(got int) bool { return got == 0 })
	l.mustB(b, redis.create...)
	answering(redis)
	measure(redis, 1)
	l.mustB(b, nginx.create...)
	answering(nginx)
	services := 2 // web and kv
	for _, total := range []int{100, 1000} {
		for ; services < total; services++ {
			// Published, with a VIP on ingress and rules on every node,
			// but no task: what a cluster's other services cost the
			// packets of this one.
			l.mustB(b, "--node", "node1", "service", "create", "-d", "--replicas", "0",
				"--name", fmt.Sprintf("other%d", services), "--publish", fmt.Sprintf("%d:80", 20000+services), "whoami")
		}
		waitRules(b, l, total)
		measure(nginx, total)
		measure(redis, total)
	}
}

// pairedRatio is the median of a[i]/b[i]: each round runs the paths one
// after the other, so a slow stretch of the machine that lowers a round
// lowers both of its figures, and their ratio less. A ratio of medians
// pairs a fast round's figure with a slow one's: in a run where most
// rounds of a phase were slow, nginx through node1 came to 0.734 of
// direct as a ratio of medians and 0.888 as this.
func pairedRatio(a, b []float64) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return median(r)
}

// TestPairedRatio: a round that ran slow on both paths does not pair
// one path's fast figure with the other's slow one.
func TestPairedRatio(t *testing.T) {
	for _, tt := range []struct {
		a, b []float64
		want float64
	}{
		{[]float64{9, 5, 5}, []float64{10, 10, 6}, 5.0 / 6}, // medians alone: 0.5
		{[]float64{8, 8, 4}, []float64{10, 10, 5}, 0.8},
		{[]float64{3}, []float64{4}, 0.75},
	} {
		if got := pairedRatio(tt.a, tt.b); got != tt.want {
			t.Errorf("pairedRatio(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// waitRules waits until node2's ingress sandbox marks the published
// ports of n services: the rules of the services just made are in.
func waitRules(b *testing.B, l *testLab, n int) {
	b.Helper()
	waitMarked(b, l, fmt.Sprintf("at least %d", n), func(got int) bool { return got >= n })
}

// waitMarked waits until the number of published ports node2's ingress
// sandbox marks is as ok wants (what says how, for the failure).
func waitMarked(b *testing.B, l *testLab, what string, ok func(int) bool) {
	b.Helper()
	// A port's mark is a MARK rule, or past 64 entries a member of the
	// sandbox's port sets (lb/buckets.go).
	marks := regexp.MustCompile(`(?m)--dport \d+ .*-j MARK`)
	members := regexp.MustCompile(`(?m)^add MESH-PREROUTING-(?:TCP|UDP) `)
	testutil.Eventually(b, 5*time.Minute, "node2's ingress sandbox marking "+what+" published ports", func() error {
		rules, _ := l.onNode("node2", "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "iptables-save", "-t", "mangle")
		sets, _ := l.onNode("node2", "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "ipset", "save")
		if got := len(marks.FindAllString(rules, -1)) + len(members.FindAllString(sets, -1)); !ok(got) {
			return fmt.Errorf("%d marked", got)
		}
		return nil
	})
}

// Each run is short, about a second, and the Makefile asks for nine
// rounds rather than three long ones, in the same time: on a shared
// machine the CPU slows down in stretches (a fixed loop here takes 59–60
// ms most of the time, up to 96 ms in a slow stretch), and a median of
// nine is moved by fewer of them than a median of three. The paths of one
// round run one after the other, so a slow stretch hits them alike.
const serverRun = time.Second

// wrkRequests is wrkFromClient's measure of one address.
func wrkRequests(b *testing.B, l *testLab, addr string) (rps, requests float64) {
	return wrkFromClient(b, l, "http://"+addr+"/", serverRun)
}

var redisRPS = regexp.MustCompile(`SET: ([0-9.]+) requests per second`)

// redisSets runs redis-benchmark's SET from the client namespace, 50
// clients, and returns requests/s and the requests sent. redis-benchmark
// counts requests, not time: redisRequests take about serverRun here.
func redisSets(b *testing.B, l *testLab, addr string) (rps, requests float64) {
	b.Helper()
	host, port, _ := strings.Cut(addr, ":")
	out, err := l.ctl("lab", "exec", "client", "--", "redis-benchmark", "-h", host, "-p", port,
		"-t", "set", "-c", "50", "-n", strconv.Itoa(redisRequests), "-q")
	m := redisRPS.FindStringSubmatch(out)
	if err != nil || m == nil {
		b.Fatalf("redis-benchmark %s: %v\n%s", addr, err, out)
	}
	rps, _ = strconv.ParseFloat(m[1], 64)
	return rps, redisRequests
}

const redisRequests = 30000

// machineBusy is the time all CPUs have spent busy since boot, in clock
// ticks (100 a second): /proc/stat's first line less idle, iowait and
// steal (time the hypervisor gave to others).
func machineBusy(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 || f[0] != "cpu" {
		b.Fatalf("/proc/stat: first line %q", line)
	}
	var busy int64
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %q: %v", line, err)
		}
		if i != 3 && i != 4 && i != 7 { // idle, iowait, steal
			busy += n
		}
	}
	return busy
}

func writeFile(b *testing.B, path, content string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}
