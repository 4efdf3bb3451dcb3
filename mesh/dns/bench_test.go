package dns

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// benchWorkers is how many clients query at once, each waiting for its
// answer before the next query (a closed loop, as stub resolvers do).
const benchWorkers = 16

// benchTasks is the size of the answer: tasks.www has this many records.
const benchTasks = 10

// benchRounds is how many turns each server gets in one run: the turns
// alternate (meshd, dnsmasq, dnsmasq, meshd, ...) so that a noisy
// neighbour or a frequency change hits both alike.
const benchRounds = 8

// BenchmarkResolver measures queries per second answering tasks.www (10
// task IPs) over UDP on loopback: this package, and dnsmasq answering the
// same name from a hosts file, with the same client, interleaved in the
// same run. Both servers run in their own process, as they do for real
// (tasks are other processes): an in-process server would share the Go
// scheduler with the client and skip the context switches dnsmasq pays.
// An op is one query; b.N is split between the servers in alternating
// rounds. It reports each server's queries/s, their ratio, and each
// server process's CPU time per query (from /proc: on a machine with few
// CPUs the client may bound the rate, and CPU per query still tells the
// servers apart). Without dnsmasq (Debian: dnsmasq-base) it says so and
// measures meshd alone. Run:
//
//	go test ./mesh/dns -run '^$' -bench BenchmarkResolver -benchtime 400000x
func BenchmarkResolver(b *testing.B) {
	var hosts strings.Builder
	for _, e := range benchEndpoints() {
		fmt.Fprintf(&hosts, "%s tasks.www\n", e.IP)
	}
	meshd, err := startMeshd(b)
	if err != nil {
		b.Fatal(err)
	}
	servers := []*benchServer{meshd}
	if dnsmasq, err := startDnsmasq(b, hosts.String()); err != nil {
		b.Logf("dnsmasq half skipped: %v (apt-get install dnsmasq-base)", err)
	} else {
		servers = append(servers, dnsmasq)
	}
	b.ResetTimer()
	rounds := benchRounds * len(servers)
	for round := range rounds {
		srv := servers[(round+round/2)%len(servers)] // 0 1 1 0 0 1 1 0 ...
		n := b.N / rounds
		if round == 0 {
			n += b.N % rounds
		}
		cpu := procCPU(srv.pid)
		srv.spent += load(b, srv.addr, "tasks.www.", benchWorkers, n)
		srv.cpu += procCPU(srv.pid) - cpu
		srv.queries += n
	}
	b.StopTimer()
	for _, srv := range servers {
		b.ReportMetric(srv.qps(), srv.name+"-q/s")
		if srv.cpu > 0 {
			b.ReportMetric(float64(srv.cpu.Microseconds())/float64(srv.queries), srv.name+"-cpu-µs/q")
		}
	}
	if len(servers) == 2 {
		b.ReportMetric(servers[0].qps()/servers[1].qps(), "ratio")
	}
}

// benchServer is one server under test and what it was measured at.
type benchServer struct {
	name, addr string
	pid        int
	queries    int
	spent, cpu time.Duration
}

func (s *benchServer) qps() float64 { return float64(s.queries) / s.spent.Seconds() }

// procCPU is the CPU time process pid used so far (user + system), or 0
// where /proc cannot tell. Linux counts it in USER_HZ, 100 a second.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, state
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * (time.Second / 100)
}

// load sends n queries for name to addr from workers clients, checks
// every answer has benchTasks records, and returns the time it took.
func load(b *testing.B, addr, name string, workers, n int) time.Duration {
	pkt, err := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]net.Conn, workers)
	for i := range conns {
		if conns[i], err = net.Dial("udp", addr); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close()
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w, c := range conns {
		k := n / workers
		if w < n%workers {
			k++
		}
		wg.Go(func() {
			if err := client(c, pkt, k); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

// client sends n queries one after the other on c, each with its own ID,
// and checks the answers. A lost datagram is sent again after 1 s.
func client(c net.Conn, pkt []byte, n int) error {
	q := append([]byte(nil), pkt...)
	buf := make([]byte, 4096)
	for i := range n {
		id := uint16(i)
		binary.BigEndian.PutUint16(q, id)
		for {
			if _, err := c.Write(q); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			m, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if err != nil {
				return err
			}
			if m < 12 || binary.BigEndian.Uint16(buf) != id {
				continue // a late answer to a resent query
			}
			if an := binary.BigEndian.Uint16(buf[6:]); an != benchTasks || buf[3]&0xf != 0 {
				return fmt.Errorf("answer with rcode %d and %d records, want NOERROR and %d", buf[3]&0xf, an, benchTasks)
			}
			break
		}
	}
	return nil
}

// benchEndpoints is service www with benchTasks tasks on ovnet.
func benchEndpoints() []Endpoint {
	var eps []Endpoint
	for i := range benchTasks {
		eps = append(eps, Endpoint{NetworkID: netOv, Network: "ovnet", Service: "www",
			TaskName: fmt.Sprintf("www.%d.t%d", i+1, i), IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(3 + i)}),
			VIP: ip("10.0.0.2")})
	}
	return eps
}

// serveEnv makes the test binary a benchmark server (TestBenchServer).
const serveEnv = "MESHD_DNS_BENCH_SERVE"

// TestBenchServer is not a test: it is the server process of
// BenchmarkResolver, run by startMeshd. It prints its UDP address and
// serves benchEndpoints until its standard input closes.
func TestBenchServer(t *testing.T) {
	if os.Getenv(serveEnv) == "" {
		t.Skip("the server process of BenchmarkResolver")
	}
	s := newTestServer(t, Config{}, benchEndpoints())
	addr, _ := attach(t, s, Querier{Networks: []string{netOv}})
	fmt.Println(addr)
	io.Copy(io.Discard, os.Stdin)
}

// startMeshd runs this package's server in a child process.
func startMeshd(b *testing.B) (*benchServer, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchServer$")
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server process: %w", err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("server process: %w", err)
	}
	go io.Copy(io.Discard, stdout)
	return &benchServer{name: "meshd", addr: strings.TrimSpace(line), pid: cmd.Process.Pid}, nil
}

// startDnsmasq runs dnsmasq on a free loopback port serving hosts, and
// returns it once it answers, or the reason it cannot run.
func startDnsmasq(b *testing.B, hosts string) (*benchServer, error) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/dnsmasq"); err != nil {
			return nil, errors.New("dnsmasq not found")
		}
	}
	file := b.TempDir() + "/hosts"
	if err := os.WriteFile(file, []byte(hosts), 0o644); err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := pc.LocalAddr().(*net.UDPAddr)
	pc.Close()
	cmd := exec.Command(bin, "--no-resolv", "--no-hosts", "--addn-hosts="+file, "--keep-in-foreground",
		fmt.Sprintf("--port=%d", addr.Port), "--listen-address=127.0.0.1", "--bind-interfaces",
		"--conf-file=/dev/null", "--pid-file", "--local-ttl=600", "--user=root", "--log-facility=-")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dnsmasq: %w", err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := exchange(addr.String(), "udp", "tasks.www.", dns.TypeA, 0); err == nil && len(resp.Answer) == benchTasks {
			return &benchServer{name: "dnsmasq", addr: addr.String(), pid: cmd.Process.Pid}, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("dnsmasq did not answer: %s", out.String())
}
