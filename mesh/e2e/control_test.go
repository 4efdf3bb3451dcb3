package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/overlay"
)

// load is requests sent at a steady rate from the client namespace, each
// on a new connection, while a fault happens.
type load struct {
	cmds     []*exec.Cmd
	outs     []*strings.Builder
	captures []capture

	// An open load (openLoad) runs one curl after another per url
	// until end's deadline.
	mu       sync.Mutex
	deadline time.Time // zero until end
	asked    int       // requests asked of the curls so far
	running  sync.WaitGroup
}

// loadChunk is how long each of an open load's curls sends for.
const loadChunk = 2 * time.Second

// capture is a tcpdump running in one namespace of the lab.
type capture struct {
	where string // "client", or a node's name
	proc  *tcpdumpProc
	pcap  string
}

// steadyLoad sends rate requests a second to each url for d, each a new
// connection (the server closes it), with curl's own pacing. A request
// gets 3 s: a refused or unrouted connection fails at once, and a
// blackhole still fails, but the CPU of this machine, shared with the
// other test packages `go test ./...` runs at the same time, may delay
// an answer past a second.
func (l *testLab) steadyLoad(t *testing.T, d time.Duration, rate int, urls ...string) *load {
	t.Helper()
	return l.startLoad(t, d, rate, nil, urls)
}

// startLoad is steadyLoad with more curl flags.
func (l *testLab) startLoad(t *testing.T, d time.Duration, rate int, flags []string, urls []string) *load {
	t.Helper()
	n := int(d.Seconds()) * rate
	ld := &load{}
	l.captureLoad(t, ld)
	ld.asked = n * len(urls)
	lb := l.load()
	for _, u := range urls {
		// nsenter execs curl: the cleanup's kill reaches curl itself,
		// where killing a "meshctl lab exec" would leave its child.
		cmd := lb.ExecCmd("client", curlLoad(rate, n, flags, u))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start load on %s: %v", u, err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ld.cmds, ld.outs = append(ld.cmds, cmd), append(ld.outs, &out)
	}
	return ld
}

// curlLoad is the curl command line that sends n requests to url at rate
// a second, each on a new connection.
func curlLoad(rate, n int, flags []string, url string) []string {
	argv := append([]string{"curl", "-s", "--rate", fmt.Sprintf("%d/s", rate), "-m", "3", "-H", "Connection: close"}, flags...)
	// Each request's line says enough to follow a failure: which
	// request, from which local port, how long, and curl's error.
	return append(argv, "-w", `code=%{http_code} url=%{url_effective} port=%{local_port} connect=%{time_connect} time=%{time_total} err=%{errormsg}\n`,
		fmt.Sprintf("%s?n=[1-%d]", url, n))
}

// openLoad is startLoad for as long as what it watches takes: each url
// gets one curl of loadChunk after another until end is called and its
// tail has passed. TestRollingUpdate's updates took 6.8 to 9 s here and
// 11 to 28 s under software emulation: a fixed window long enough for the
// slowest wastes the difference at every step.
func (l *testLab) openLoad(t *testing.T, rate int, flags []string, urls ...string) *load {
	t.Helper()
	ld := &load{}
	l.captureLoad(t, ld)
	lb := l.load()
	for _, u := range urls {
		out := &strings.Builder{}
		ld.outs = append(ld.outs, out)
		ld.running.Add(1)
		go func() {
			defer ld.running.Done()
			for n := ld.next(rate); n > 0; n = ld.next(rate) {
				cmd := lb.ExecCmd("client", curlLoad(rate, n, flags, u))
				cmd.Stdout, cmd.Stderr = out, out
				var exit *exec.ExitError
				if err := cmd.Run(); err != nil && !errors.As(err, &exit) {
					fmt.Fprintf(out, "code=000 start curl: %v\n", err)
					return
				}
			}
		}()
	}
	t.Cleanup(func() { ld.end(0); ld.running.Wait() })
	return ld
}

// next returns how many requests an open load's next curl sends: a
// chunk's worth, fewer to stop at the deadline, none past it.
func (ld *load) next(rate int) int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	d := loadChunk
	if !ld.deadline.IsZero() {
		d = min(d, time.Until(ld.deadline))
	}
	n := int(d.Seconds() * float64(rate))
	ld.asked += max(n, 0)
	return n
}

// end lets an open load go on for tail more, then stop.
func (ld *load) end(tail time.Duration) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if ld.deadline.IsZero() {
		ld.deadline = time.Now().Add(tail)
	}
}

// requested is how many requests the load's curls were asked for.
func (ld *load) requested() int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.asked
}

var codeRE = regexp.MustCompile(`(?m)^code=(\d+) .*$`)

// wait returns how many requests were answered 200 and how many failed,
// and logs the first failures' lines (which request, from which local
// port, how long, curl's error) for whoever reads a failure.
func (ld *load) wait(t testing.TB) (ok, failed int) {
	t.Helper()
	var sample []string
	for _, cmd := range ld.cmds {
		_ = cmd.Wait() // curl's status is the last transfer's; the codes tell all
	}
	ld.running.Wait()
	for _, out := range ld.outs {
		for _, m := range codeRE.FindAllStringSubmatch(out.String(), -1) {
			if m[1] == "200" {
				ok++
				continue
			}
			if failed++; len(sample) < 10 {
				sample = append(sample, m[0])
			}
		}
	}
	for _, c := range ld.captures {
		c.proc.stop()
	}
	if failed > 0 {
		t.Logf("%d requests failed; the first ones:\n%s", failed, strings.Join(sample, "\n"))
		ld.logPackets(t, sample)
	}
	return ok, failed
}

// captureLoad records the load's packets as they leave and reach the
// client, the VXLAN packets on each node's eth0, and the packets between
// each node and its ingress sandbox on mesh_gwbridge, so that a failed
// request shows where its packets went: a backend's answer that leaves
// its node at once but reaches the client late was held up on the way,
// one that leaves late was late at the backend, and one from a backend
// on the entry node shows on that node's mesh_gwbridge alone. A capture
// that does not start (no mesh_gwbridge yet) is logged, not fatal: the
// load still counts.
func (l *testLab) captureLoad(t *testing.T, ld *load) {
	t.Helper()
	lb := l.load()
	client, _ := lb.Node("client")
	l.startLoadCapture(t, ld, "client", client.NetnsPath(), "eth0", "tcp")
	for _, n := range lb.Nodes() {
		l.startLoadCapture(t, ld, n.Name, n.NetnsPath(), "eth0", "udp", "port", strconv.Itoa(overlay.DefaultVXLANPort))
		l.startLoadCapture(t, ld, n.Name+" mesh_gwbridge", n.NetnsPath(), "mesh_gwbridge", "tcp")
	}
}

func (l *testLab) startLoadCapture(t *testing.T, ld *load, where, netns, dev string, filter ...string) {
	t.Helper()
	pcap := filepath.Join(t.TempDir(), strings.ReplaceAll(where, " ", "-")+".pcap")
	p, err := startTcpdump(t, nil, append([]string{"nsenter", "--net=" + netns, "--", "tcpdump", "-U", "-nn", "-i", dev, "-w", pcap}, filter...)...)
	if err != nil {
		t.Logf("no capture of the load in %s: %v", where, err)
		return
	}
	ld.captures = append(ld.captures, capture{where: where, proc: p, pcap: pcap})
}

var localPortRE = regexp.MustCompile(` port=(\d+) `)

// logPackets logs, from each capture, the packets of the failed requests'
// local ports; in VXLAN, the encapsulated packets that carry the port
// (the ingress sandbox's SNAT keeps a source port it can). Each capture
// is read once. A request that never connected (port 0) has no packets
// of its own to show.
func (ld *load) logPackets(t testing.TB, failures []string) {
	t.Helper()
	var ports []string
	for _, f := range failures {
		if m := localPortRE.FindStringSubmatch(f); m != nil && m[1] != "0" {
			ports = append(ports, m[1])
		}
	}
	if len(ports) == 0 {
		return
	}
	for _, c := range ld.captures {
		// -e: the MACs too, so a reply sent to a MAC the next hop no
		// longer answers to shows as such.
		out, err := exec.Command("tcpdump", "-r", c.pcap, "-nn", "-tt", "-e").Output()
		if err != nil {
			t.Logf("read the capture in %s: %v", c.where, err)
			continue
		}
		lines := packetLines(string(out))
		for _, port := range ports {
			t.Logf("packets of local port %s in %s:\n%s", port, c.where, strings.Join(packetsOf(lines, port), "\n"))
		}
	}
}

// stampRE starts a packet's line in "tcpdump -tt" output; an inner
// packet's line starts with its MAC or "IP".
var stampRE = regexp.MustCompile(`^\d+\.\d+ `)

// packetLines splits tcpdump's output into one line per packet: tcpdump
// prints a VXLAN packet's inner packet on a line of its own, which is
// joined to its outer one.
func packetLines(dump string) []string {
	var lines []string
	for _, line := range strings.Split(dump, "\n") {
		if line == "" {
			continue
		}
		if len(lines) > 0 && !stampRE.MatchString(line) {
			lines[len(lines)-1] += " | " + line
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

// packetsOf returns the packets (from packetLines) that have port as a
// source or destination port.
func packetsOf(lines []string, port string) []string {
	re := regexp.MustCompile(`\.` + regexp.QuoteMeta(port) + `[ :]`)
	var out []string
	for _, line := range lines {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// ingressBackends returns the weights of the backends in a node's ingress
// sandbox, as lb ls prints them.
func (l *testLab) ingressBackends(node string) ([]string, string) {
	out, _ := l.on(node, "lb", "ls", "--format", `{{if eq .Sandbox "ingress_sbox"}}{{.Table}}{{end}}`)
	var weights []string
	for _, m := range regexp.MustCompile(`(?m)^  -> \S+ +\S+ +(\d+) `).FindAllStringSubmatch(out, -1) {
		weights = append(weights, m[1])
	}
	return weights, out
}

// placeOffNode1 creates www (2 replicas publishing 8888:80) on node2 and
// node3: node1 is drained first, so a fault on node1 takes no backend.
func (l *testLab) placeOffNode1(t *testing.T, manager string) {
	t.Helper()
	l.must(t, "--node", manager, "node", "update", "--availability", "drain", "node1")
	l.must(t, "--node", manager, "service", "create", "--name", "www", "--replicas", "2", "--publish", "8888:80", "whoami")
	for _, n := range []string{"node1", "node2", "node3"} {
		eventually(t, 10*time.Second, "two backends at weight 1 on "+n, func() (bool, string) {
			w, out := l.ingressBackends(n)
			return strings.Join(w, " ") == "1 1", out
		})
	}
}

// TestManagerOutage kills and stops the only manager while the client
// sends requests to the two workers that run www: the data plane never
// waits for the manager, so no request fails, during the outage or the
// restart, and every node ends with both backends at weight 1.
func TestManagerOutage(t *testing.T) {
	l := newLab(t, 3)
	l.placeOffNode1(t, "node1")
	for _, stop := range [][]string{{"--kill"}, {}} {
		how := map[bool]string{true: "SIGKILL", false: "SIGTERM"}[len(stop) > 0]
		t.Run(how, func(t *testing.T) {
			ld := l.steadyLoad(t, 20*time.Second, 10, "http://192.168.33.11:8888/", "http://192.168.33.12:8888/")
			time.Sleep(3 * time.Second) // load generation, not synchronisation: the outage starts mid-load
			l.must(t, append([]string{"lab", "stop", "node1"}, stop...)...)
			eventually(t, 15*time.Second, "node1 seen gone by node2's gossip", func() (bool, string) {
				out, _ := l.on("node2", "info")
				return strings.Contains(out, "manager unreachable"), out
			})
			l.must(t, "lab", "start", "node1")
			ok, failed := ld.wait(t)
			t.Logf("%s of the manager: %d requests answered, %d failed", how, ok, failed)
			if failed != 0 || ok == 0 {
				t.Errorf("%s of the manager: %d of %d requests failed, want 0", how, failed, ok+failed)
			}
			for _, n := range []string{"node1", "node2", "node3"} {
				eventually(t, 10*time.Second, "both backends at weight 1 on "+n, func() (bool, string) {
					w, out := l.ingressBackends(n)
					return strings.Join(w, " ") == "1 1", out
				})
			}
		})
	}
}

// TestManagerRestartManyServices restarts the manager of a cluster with
// many services whose tasks all run on workers: after it, every backend
// on every node is at weight 1 and every service answers on every node
// within 10 s. (With one manager restart and 100 services, all worker
// tasks used to stay drained.)
func TestManagerRestartManyServices(t *testing.T) {
	n := 100
	if timeScale() > 1 {
		n = 20 // each task start costs 100-350 ms under emulation
	}
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "node", "update", "--availability", "drain", "node1")
	for i := range n {
		l.must(t, "--node", "node1", "service", "create", "-d", "--name", fmt.Sprintf("s%d", i), "--replicas", "2",
			"--publish", fmt.Sprintf("%d:80", 9000+i), "whoami")
	}
	allUp := func(timeout time.Duration) {
		t.Helper()
		for _, node := range []string{"node1", "node2", "node3"} {
			eventually(t, timeout, fmt.Sprintf("%d services with 2 backends at weight 1 on %s", n, node), func() (bool, string) {
				w, out := l.ingressBackends(node)
				ones := 0
				for _, x := range w {
					if x == "1" {
						ones++
					}
				}
				return ones == 2*n && len(w) == 2*n, fmt.Sprintf("%d backends, %d at weight 1\n%.2000s", len(w), ones, out)
			})
		}
	}
	allUp(120 * time.Second)
	if n > 64 {
		// Past 64 entries the ports' marks come from an ipset, one lookup
		// instead of a walk of the MARK rules (lb/buckets.go).
		out, err := l.onNode("node2", "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "iptables", "-t", "mangle", "-nvL", "MESH-PREROUTING")
		if err != nil || !strings.Contains(out, "map-set MESH-PREROUTING-TCP dst map-mark") || strings.Contains(out, "MARK set") {
			t.Errorf("ingress_sbox mangle MESH-PREROUTING on node2: %v\n%.2000s", err, out)
		}
		out, err = l.onNode("node2", "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "ipset", "list", "MESH-PREROUTING-TCP")
		if err != nil || !regexp.MustCompile(`(?m)^9000 comment "s0" skbmark 0x[0-9a-f]+$`).MatchString(out) || strings.Count(out, " skbmark ") != n {
			t.Errorf("ipset list MESH-PREROUTING-TCP in ingress_sbox on node2: %v\n%.2000s", err, out)
		}
	}
	var urls []string
	for i := range n {
		for _, addr := range []string{"192.168.33.10", "192.168.33.11", "192.168.33.12"} {
			urls = append(urls, fmt.Sprintf("http://%s:%d/", addr, 9000+i))
		}
	}
	l.must(t, "lab", "restart", "node1")
	start := time.Now()
	allUp(10 * time.Second)
	weighted := time.Since(start)
	// The balancers are checked; the host's DNAT rules to them may follow
	// within the same reconcile.
	deadline := start.Add(10 * time.Second * timeScale())
	eventually(t, max(time.Until(deadline)/timeScale(), 0), fmt.Sprintf("%d services' 2 backends answering through every node within 10 s of the manager restart", n),
		func() (bool, string) {
			bad := l.unanswered(t, urls, 2)
			return len(bad) == 0, fmt.Sprintf("%d of %d unanswered: %.2000s", len(bad), len(urls), strings.Join(bad, " "))
		})
	answered := time.Since(start)
	// And again, at once: a round's neighbours are still fresh in the
	// kernel's table when the next one needs as many again, which is
	// what overflowed it.
	for round := range 2 {
		if bad := l.unanswered(t, urls, 2); len(bad) > 0 {
			t.Errorf("round %d after all answered: %d of %d unanswered: %.2000s", round+2, len(bad), len(urls), strings.Join(bad, " "))
		}
	}
	t.Logf("%d services: every backend at weight 1 on every node %v after the restart, every backend answering through every node after %v",
		n, weighted.Round(100*time.Millisecond), answered.Round(100*time.Millisecond))
}

// unanswered asks each of urls times times from the client, all at once
// from one curl (a curl each would take longer than what is timed), and
// returns those that did not answer 200 each time, with what curl said.
// Asked twice at once, a published port of a service of two tasks is
// balanced to each of them: every backend is asked through every node.
// Sent by the hundred, the connections find what one at a time would
// not: in a 3-node lab of 100 services, the kernel's neighbour table
// overflowing (lb's doc).
func (l *testLab) unanswered(t *testing.T, urls []string, times int) []string {
	t.Helper()
	argv := []string{"lab", "exec", "client", "--", "curl", "-s", "--no-progress-meter", "-m", "3", "--parallel", "--parallel-max", "50",
		"-w", "%{http_code} %{url_effective} %{errormsg}\n"}
	for _, u := range urls {
		for range times {
			argv = append(argv, "-o", "/dev/null", u)
		}
	}
	// curl's status is that of one URL; its lines say each.
	out, _ := l.ctl(argv...)
	ok, said := map[string]int{}, map[string]string{} // by URL: 200s, and what else curl said
	for _, line := range strings.Split(out, "\n") {
		code, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		u, msg, _ := strings.Cut(rest, " ")
		if code == "200" {
			ok[u]++
		} else if u != "" {
			said[u] = code + " " + msg
		}
	}
	var bad []string
	for _, u := range urls {
		if ok[u] < times {
			bad = append(bad, fmt.Sprintf("%s (%d of %d: %s)", u, ok[u], times, said[u]))
		}
	}
	return bad
}

// leaderOf returns the Leader in node ls as node sees it, "" if none.
func (l *testLab) leaderOf(node string) string {
	out, _ := l.on(node, "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}")
	for _, line := range strings.Split(out, "\n") {
		if host, ok := strings.CutSuffix(strings.TrimSpace(line), " Leader"); ok {
			return host
		}
	}
	return ""
}

// TestThreeManagers kills the leader of three managers, checks a new one
// takes over and writes go through it while the published port keeps
// answering, then brings the old leader back and compares the three
// replicas; and with two of three managers down, writes are refused with
// one line while the data plane serves.
func TestThreeManagers(t *testing.T) {
	l := newLabWith(t, 3, "--managers", "3")
	eventually(t, 10*time.Second, "node ls: three managers", func() (bool, string) {
		out, _ := l.on("node1", "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}")
		return strings.Count(out, "Reachable") == 2 && strings.Count(out, "Leader") == 1, out
	})
	leader := l.leaderOf("node1")
	if leader != "node1" {
		t.Fatalf("leader after lab up: %q, want node1 (it initialised the swarm)", leader)
	}
	l.placeOffNode1(t, "node1")

	t.Run("leader killed", func(t *testing.T) {
		ld := l.steadyLoad(t, 20*time.Second, 10, "http://192.168.33.11:8888/", "http://192.168.33.12:8888/")
		time.Sleep(3 * time.Second) // the fault starts mid-load
		l.must(t, "lab", "stop", "node1", "--kill")
		killed := time.Now()
		var next string
		eventually(t, 10*time.Second, "a new leader seen from node2", func() (bool, string) {
			next = l.leaderOf("node2")
			return next != "" && next != "node1", next
		})
		t.Logf("new leader %s %s after the kill", next, time.Since(killed).Round(100*time.Millisecond))
		ok, failed := ld.wait(t)
		t.Logf("leader killed: %d requests answered, %d failed", ok, failed)
		if failed != 0 || ok == 0 {
			t.Errorf("leader killed: %d of %d requests failed, want 0", failed, ok+failed)
		}
		// After the load: a backend added under load can take a request
		// before its process listens, which is not this test's fault.
		out := l.must(t, "--node", "node2", "service", "scale", "www=3")
		if !strings.Contains(out, "www scaled to 3") {
			t.Errorf("scale through the new leader:\n%s", out)
		}
	})

	t.Run("old leader rejoins, replicas agree", func(t *testing.T) {
		l.must(t, "lab", "start", "node1")
		eventually(t, 20*time.Second, "node1 Reachable again", func() (bool, string) {
			out, _ := l.on("node2", "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}")
			return strings.Contains(out, "node1 Reachable") || strings.Contains(out, "node1 Leader"), out
		})
		// network inspect's Containers are each node's own endpoints: the
		// managers agree on the network itself.
		for _, what := range [][]string{{"service", "inspect", "www"}, {"network", "inspect", "ingress", "--format", networkProjection}} {
			eventually(t, 10*time.Second, strings.Join(what, " ")+" identical on the three managers", func() (bool, string) {
				var outs []string
				for _, n := range []string{"node1", "node2", "node3"} {
					out, err := l.on(n, what...)
					if err != nil {
						return false, n + ": " + out
					}
					outs = append(outs, out)
				}
				return outs[0] == outs[1] && outs[1] == outs[2], strings.Join(outs, "\n---\n")
			})
		}
	})

	t.Run("two of three down", func(t *testing.T) {
		l.must(t, "--node", "node1", "node", "update", "--availability", "active", "node1")
		l.must(t, "--node", "node1", "service", "rm", "www")
		l.must(t, "--node", "node1", "service", "create", "--name", "web", "--replicas", "3", "--publish", "8080:80", "whoami") // spread: one per node
		survivor := "node3"
		for _, n := range []string{"node1", "node2"} {
			l.must(t, "lab", "stop", n, "--kill")
		}
		eventually(t, 15*time.Second, "a write refused for want of a quorum", func() (bool, string) {
			out, err := l.on(survivor, "network", "create", "--driver", "overlay", "late")
			return err != nil && strings.Count(strings.TrimSpace(out), "\n") == 0 &&
				strings.Contains(out, "The swarm does not have a leader"), out
		})
		eventually(t, 15*time.Second, "the survivor's own backend answers on its published port", func() (bool, string) {
			got := l.hits(t, 4, curlFrom("client", "http://192.168.33.12:8080/")...)
			return got[""] == 0, fmt.Sprint(got)
		})
		if out, err := l.on(survivor, "network", "ls"); err != nil || strings.Contains(out, "late") {
			t.Errorf("network ls on the survivor after a refused create: %v\n%s", err, out)
		}
	})
}

// TestTutorialSwarmInit types tutorial 000's first two commands on a lab
// started without a swarm.
func TestTutorialSwarmInit(t *testing.T) {
	l := newLabWith(t, 2, "--no-swarm")
	out, err := l.on("node1", "node", "ls")
	if err == nil || !strings.Contains(out, `This node is not a swarm manager. Use "meshctl swarm init" or "meshctl swarm join"`) {
		t.Errorf("node ls before init: err %v\n%s", err, out)
	}
	out = l.must(t, "--node", "node1", "swarm", "init", "--advertise-addr", "192.168.33.10")
	m := regexp.MustCompile(`(?s)^Swarm initialized: current node \((\w{25})\) is now a manager\.\n\n` +
		`To add a worker to this swarm, run the following command:\n\n` +
		`    meshctl swarm join --token (SWMTKN-1-\S+) 192\.168\.33\.10:2377\n\n` +
		`To add a manager to this swarm, run 'meshctl swarm join-token manager' and follow the instructions\.\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("swarm init output:\n%s", out)
	}
	out = l.must(t, "--node", "node2", "swarm", "join", "--token", m[2], "192.168.33.10:2377")
	if strings.TrimSpace(out) != "This node joined a swarm as a worker." {
		t.Errorf("swarm join output: %q", out)
	}
	eventually(t, 10*time.Second, "node ls: both Ready", func() (bool, string) {
		out, _ := l.on("node1", "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}")
		return strings.TrimSpace(out) == "node1 Ready Leader\nnode2 Ready", out
	})
	out, err = l.on("node2", "service", "ls")
	if err == nil || !strings.Contains(out, "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.") {
		t.Errorf("service ls on the worker: err %v\n%s", err, out)
	}

	// Leave and come back; the manager must be forced.
	out, err = l.on("node1", "swarm", "leave")
	if err == nil || !strings.Contains(out, "Use `--force` to ignore this message.") {
		t.Errorf("swarm leave on the only manager: err %v\n%s", err, out)
	}
	if out := l.must(t, "--node", "node2", "swarm", "leave"); strings.TrimSpace(out) != "Node left the swarm." {
		t.Errorf("swarm leave: %q", out)
	}
	if out := l.must(t, "--node", "node2", "info"); !strings.Contains(out, "Swarm: inactive") {
		t.Errorf("info after leave:\n%s", out)
	}
	eventually(t, 10*time.Second, "node2 Down on node1", func() (bool, string) {
		out, _ := l.on("node1", "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
		return strings.Contains(out, "node2 Down"), out
	})
	l.must(t, "--node", "node2", "swarm", "join", "--token", m[2], "192.168.33.10:2377")
	eventually(t, 10*time.Second, "node2 Ready again", func() (bool, string) {
		out, _ := l.on("node1", "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
		return strings.Contains(out, "node2 Ready"), out
	})
}
