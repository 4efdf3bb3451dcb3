//go:build vms

// Package pair is the two-VM suite (make test-vms): two qemu VMs, each its
// own stock Debian kernel, on a private network of the tutorials' shape,
// each with the Debian package installed and meshd started as its
// systemd unit starts it (vm/init-node). The test types tutorial 000's
// commands on them and checks what crosses between the two kernels:
// IPVS in one pointing at a task in the other, VXLAN on the wire, the
// routing mesh from a client, the embedded DNS, and a node powered off.
//
// The private network is a bridge in a network namespace of the test's
// own, the VMs' NICs are tap devices on it, and the client is that
// namespace at 192.168.33.1: nothing reaches this machine's network.
// The test runs commands in the VMs through vm-agent (internal/vmagent).
//
// Knobs: VM_CACHE (where vm/build.sh left the image), VMS_NODE2_OPTS
// (more meshd flags on node2, commas for blanks, to show the suite fail:
// VMS_NODE2_OPTS=--data-path-port=4790).
package pair

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/internal/vmagent"
	"github.com/vishvananda/netns"
)

const (
	clientAddr = "192.168.33.1/24"
	agentPort  = "7070"
	// bootWait bounds a VM's boot, package install and meshd start under
	// software emulation.
	bootWait = 4 * time.Minute
	// stepWait bounds one step's convergence in the VMs.
	stepWait = 3 * time.Minute
)

// node is one VM.
type node struct {
	name, ip, mac, tap string
	agent              vmagent.Client
	qemu               *exec.Cmd
	console            string        // the serial console's log file
	exited             chan struct{} // closed when qemu has exited
	off                sync.Once
}

// sh runs script in the VM with sh -c and returns its output; a failure
// fails the test.
func (n *node) sh(t *testing.T, script string) string {
	t.Helper()
	out, code := n.try(t, script)
	if code != 0 {
		t.Fatalf("%s$ %s\nexit status %d:\n%s", n.name, script, code, out)
	}
	return out
}

// try runs script in the VM and returns its output and exit status.
func (n *node) try(t *testing.T, script string) (string, int) {
	t.Helper()
	res, err := n.agent.Run(context.Background(), stepWait, "sh", "-c", script)
	if err != nil {
		t.Fatalf("%s$ %s: %v", n.name, script, err)
	}
	if res.Err != "" {
		return res.Output + res.Err, -1
	}
	return res.Output, res.Code
}

// until runs script in the VM until ok accepts its output, for at most
// stepWait, and returns that output.
func (n *node) until(t *testing.T, what, script string, ok func(string) bool) string {
	t.Helper()
	var out string
	testutil.Eventually(t, stepWait, n.name+": "+what, func() error {
		var code int
		if out, code = n.try(t, script); code == 0 && ok(out) {
			return nil
		}
		return fmt.Errorf("%s$ %s (status %d):\n%s", n.name, script, code, out)
	})
	return out
}

// powerOff kills the VM's qemu, as pulling the plug would.
func (n *node) powerOff() {
	n.off.Do(func() {
		_ = n.qemu.Process.Kill()
		<-n.exited
	})
}

// running fails the test if the VM has stopped by itself.
func (n *node) running(t *testing.T) {
	t.Helper()
	select {
	case <-n.exited:
		t.Fatalf("%s stopped by itself: %s", n.name, tail(n.console, 15))
	default:
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// inNS runs f on a thread that has entered the network namespace ns.
func inNS(ns string, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromPath(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread stays in ns: it is never unlocked, so it dies with
		// this goroutine instead of serving another.
		return err
	}
	runtime.UnlockOSThread()
	return ferr
}

// nsHTTP is an HTTP client whose connections are made in ns.
func nsHTTP(ns string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		err = inNS(ns, func() error {
			var d net.Dialer
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// run runs a command on this machine and fails the test if it fails.
func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// privateNetwork makes the namespace holding the private network: a
// bridge at the client's address, and a tap device per VM on it.
func privateNetwork(t *testing.T, nodes []*node) string {
	dir := testutil.NetNSDir(t)
	ns := testutil.NetNS(t, dir, "vms")
	in := func(argv ...string) { run(t, append([]string{"nsenter", "--net=" + ns}, argv...)...) }
	in("ip", "link", "set", "lo", "up")
	in("ip", "link", "add", "br0", "type", "bridge")
	in("ip", "addr", "add", clientAddr, "dev", "br0")
	in("ip", "link", "set", "br0", "up")
	for _, n := range nodes {
		in("ip", "tuntap", "add", "dev", n.tap, "mode", "tap")
		in("ip", "link", "set", n.tap, "master", "br0", "up")
	}
	return ns
}

// boot starts n's qemu in ns, its NIC on n's tap device.
func boot(t *testing.T, cache, ns string, n *node, opts string) {
	t.Helper()
	n.console = filepath.Join(t.TempDir(), n.name+".console")
	appendArgs := fmt.Sprintf("console=ttyS0 panic=-1 loglevel=4 mitigations=off rdinit=/init-node meshvm.name=%s meshvm.addr=%s/24", n.name, n.ip)
	if opts != "" {
		appendArgs += " meshvm.opts=" + opts
	}
	n.qemu = exec.Command("nsenter", "--net="+ns, "qemu-system-x86_64",
		"-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "1G",
		"-display", "none", "-vga", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:"+n.console,
		"-kernel", filepath.Join(cache, "vmlinuz"), "-initrd", filepath.Join(cache, "initrd.img"),
		"-append", appendArgs,
		"-netdev", "tap,id=net0,ifname="+n.tap+",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=net0,mac="+n.mac)
	// nsenter execs qemu: if this test dies, so does the VM.
	n.qemu.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.qemu.Start(); err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	n.exited = make(chan struct{})
	go func() { _ = n.qemu.Wait(); close(n.exited) }()
	t.Cleanup(n.powerOff)
}

// tail is the end of a file, for the failure report.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

var hostnameRE = regexp.MustCompile(`(?m)^Hostname: (\S+)`)

// hostnames curls url n times from the client and counts the hostnames
// that answer; a failed request counts as "".
func hostnames(t *testing.T, ns, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		out, err := exec.Command("nsenter", "--net="+ns, "curl", "-s", "--max-time", "10", url).CombinedOutput()
		m := hostnameRE.FindStringSubmatch(string(out))
		if err != nil || m == nil {
			got[""]++
			continue
		}
		got[m[1]]++
	}
	return got
}

func TestTwoVMs(t *testing.T) {
	testutil.RequireRoot(t)
	cache := os.Getenv("VM_CACHE")
	if cache == "" {
		cache = filepath.Join(repoRoot(t), ".cache", "vm")
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if _, err := os.Stat(filepath.Join(cache, f)); err != nil {
			t.Fatalf("no VM image in %s (make test-vms builds it): %v", cache, err)
		}
	}
	testutil.RequireTool(t, "qemu-system-x86_64")
	testutil.RequireTool(t, "curl")

	nodes := []*node{
		{name: "node1", ip: "192.168.33.10", mac: "52:54:00:21:33:10"},
		{name: "node2", ip: "192.168.33.11", mac: "52:54:00:21:33:11"},
	}
	// Tap names of this test's own, so that a second run beside it does
	// not collide (they live in the test's namespace anyway).
	for i, n := range nodes {
		n.tap = fmt.Sprintf("tap%d", i+1)
	}
	ns := privateNetwork(t, nodes)
	client := nsHTTP(ns)
	start := time.Now()
	for _, n := range nodes {
		opts := ""
		if n.name == "node2" {
			opts = os.Getenv("VMS_NODE2_OPTS")
		}
		boot(t, cache, ns, n, opts)
		n.agent = vmagent.Client{HTTP: client, Addr: net.JoinHostPort(n.ip, agentPort)}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range nodes {
			t.Logf("--- %s: serial console (last lines)\n%s", n.name, tail(n.console, 40))
			if res, err := n.agent.Run(context.Background(), 20*time.Second, "sh", "-c", "tail -n 60 /var/log/meshd.log"); err == nil {
				t.Logf("--- %s: /var/log/meshd.log (last lines)\n%s", n.name, res.Output)
			}
		}
	})

	// Each VM up, the package installed, meshd answering.
	for _, n := range nodes {
		testutil.Eventually(t, bootWait, n.name+" booted, meshd answering", func() error {
			n.running(t)
			res, err := n.agent.Run(context.Background(), 20*time.Second, "meshctl", "info")
			if err != nil {
				return err
			}
			if res.Code != 0 {
				return fmt.Errorf("meshctl info: status %d: %s%s", res.Code, res.Output, res.Err)
			}
			return nil
		})
	}
	node1, node2 := nodes[0], nodes[1]
	t.Logf("both VMs booted, package installed, meshd answering after %.1fs", time.Since(start).Seconds())
	if out := node1.sh(t, "dpkg -s meshd"); !strings.Contains(out, "Status: install ok installed") {
		t.Errorf("dpkg -s meshd on node1:\n%s", out)
	}

	// Tutorial 000: the swarm, typed as the tutorial types it.
	if out := node1.sh(t, "meshctl swarm init --advertise-addr 192.168.33.10"); !strings.Contains(out, "Swarm initialized") {
		t.Fatalf("swarm init:\n%s", out)
	}
	token := strings.TrimSpace(node1.sh(t, "meshctl swarm join-token -q worker"))
	if out := node2.sh(t, "meshctl swarm join --token "+token+" 192.168.33.10:2377"); !strings.Contains(out, "This node joined a swarm as a worker.") {
		t.Fatalf("swarm join:\n%s", out)
	}
	node1.until(t, "both nodes ready", "meshctl node ls", func(out string) bool {
		return regexp.MustCompile(`node1\s+Ready`).MatchString(out) && regexp.MustCompile(`node2\s+Ready`).MatchString(out)
	})
	node1.sh(t, "meshctl network create --driver overlay ovnet")
	node1.sh(t, "meshctl service create --name www --replicas 2 --network ovnet --publish 8888:80 whoami")
	node1.until(t, "one task running on each VM", "meshctl service ps www --format '{{.Node}} {{.CurrentState}}' | sort", func(out string) bool {
		return regexp.MustCompile(`(?s)^node1 Running.*\nnode2 Running`).MatchString(out)
	})

	// Each node's task: its container ID and its addresses.
	type task struct{ id, ingress, ovnet string }
	taskOn := func(n *node) task {
		id := strings.TrimSpace(n.sh(t, "meshctl ps -q --no-trunc | head -n1"))
		addrs := n.sh(t, "meshctl inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}' "+id)
		tk := task{id: id}
		for _, kv := range strings.Fields(addrs) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "ingress":
				tk.ingress = v
			case "ovnet":
				tk.ovnet = v
			}
		}
		if tk.ingress == "" || tk.ovnet == "" {
			t.Fatalf("%s's task %s: addresses %q, want one on ingress and one on ovnet", n.name, id, addrs)
		}
		return tk
	}
	task1, task2 := taskOn(node1), taskOn(node2)

	// The VMs' kernels size their tables from 1 GB: 8,192 entries, which
	// 40 s of short connections through the mesh filled (lb's doc.go).
	t.Run("meshd raised each VM's conntrack table to 131072 entries", func(t *testing.T) {
		const want = "131072 131072" // one CPU: kube-proxy's floor, and a bucket per entry
		for _, n := range nodes {
			n.until(t, "nf_conntrack_max and buckets "+want, "sysctl -n net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_buckets | paste -sd' '",
				func(out string) bool { return strings.TrimSpace(out) == want })
			log := n.sh(t, "grep 'conntrack table' /var/log/meshd.log")
			if !strings.Contains(log, `msg="conntrack table raised"`) ||
				!strings.Contains(log, `from="nf_conntrack_max=8192 nf_conntrack_buckets=8192" to="nf_conntrack_max=131072 nf_conntrack_buckets=131072"`) {
				t.Errorf("%s's meshd.log on its conntrack table:\n%s\nwant it raised from the kernel's 8192 to 131072", n.name, log)
			}
			t.Logf("%s$ grep 'conntrack table' /var/log/meshd.log\n%s", n.name, log)
		}
	})

	// The kernel's neighbour table holds 1024 entries for every namespace
	// together; each sandbox learns one per task it balances to (lb's doc).
	t.Run("meshd raised each VM's neighbour table limits", func(t *testing.T) {
		const want = "8192 32768 65536"
		for _, n := range nodes {
			n.until(t, "gc_thresh1..3 "+want, "sysctl -n net.ipv4.neigh.default.gc_thresh1 net.ipv4.neigh.default.gc_thresh2 net.ipv4.neigh.default.gc_thresh3 | paste -sd' '",
				func(out string) bool { return strings.TrimSpace(out) == want })
			log := n.sh(t, "grep 'neighbour table' /var/log/meshd.log")
			if !strings.Contains(log, `msg="neighbour table raised"`) ||
				!strings.Contains(log, `from="gc_thresh1=128 gc_thresh2=512 gc_thresh3=1024" to="gc_thresh1=8192 gc_thresh2=32768 gc_thresh3=65536"`) {
				t.Errorf("%s's meshd.log on its neighbour table:\n%s\nwant it raised from the kernel's 1024 to 65536", n.name, log)
			}
			t.Logf("%s$ grep 'neighbour table' /var/log/meshd.log\n%s", n.name, log)
		}
	})

	t.Run("IPVS in node1 points at node2's task", func(t *testing.T) {
		// A fwmark service's destinations have no port: "10.255.0.6:0".
		dest := func(ip string) *regexp.Regexp { return regexp.MustCompile(`-> ` + regexp.QuoteMeta(ip) + `:0\s+Masq`) }
		out := node1.until(t, "ipvsadm -Ln in ingress_sbox", "nsenter --net=/var/run/meshd/netns/ingress_sbox ipvsadm -Ln", func(out string) bool {
			return dest(task2.ingress).MatchString(out)
		})
		if !regexp.MustCompile(`FWM\s+256 rr`).MatchString(out) || !dest(task1.ingress).MatchString(out) {
			t.Errorf("ipvsadm -Ln in node1's ingress_sbox:\n%s\nwant FWM 256 rr with %s (node1's task) and %s (node2's)", out, task1.ingress, task2.ingress)
		}
		t.Logf("node1$ nsenter --net=/var/run/meshd/netns/ingress_sbox ipvsadm -Ln\n%s", out)
	})

	t.Run("the routing mesh alternates both VMs' tasks", func(t *testing.T) {
		for _, n := range nodes {
			url := "http://" + n.ip + ":8888/"
			testutil.Eventually(t, stepWait, "both tasks answer on "+url, func() error {
				if got := hostnames(t, ns, url, 4); len(got) != 2 || got[""] != 0 {
					return fmt.Errorf("curl %s: %v", url, got)
				}
				return nil
			})
			got := hostnames(t, ns, url, 20)
			if len(got) != 2 || got[""] != 0 {
				t.Errorf("curl %s 20 times: %v, want two hostnames 10/10", url, got)
				continue
			}
			for h, c := range got {
				if c != 10 {
					t.Errorf("curl %s 20 times: %s answered %d, want 10 (round robin): %v", url, h, c, got)
				}
			}
		}
	})

	t.Run("task to task crosses as VXLAN vni 4097", func(t *testing.T) {
		type capture struct {
			out  string
			code int
		}
		done := make(chan capture, 1)
		go func() {
			res, err := node2.agent.Run(context.Background(), 2*time.Minute, "timeout", "100", "tcpdump", "-ni", "eth0", "-c", "4", "udp", "port", "4789")
			if err != nil {
				res = vmagent.Result{Output: err.Error(), Code: -1}
			}
			done <- capture{res.Output, res.Code}
		}()
		pinged := false
		var got capture
	wait:
		for {
			out, code := node1.try(t, "meshctl exec "+task1.id+" ping -c 1 -W 2 "+task2.ovnet)
			pinged = pinged || code == 0
			select {
			case got = <-done:
				break wait
			default:
			}
			if code != 0 {
				t.Logf("ping %s from node1's task: %s", task2.ovnet, out)
			}
		}
		if !pinged {
			t.Errorf("node1's task never reached node2's task at %s over ovnet", task2.ovnet)
		}
		if got.code != 0 || !strings.Contains(got.out, "vni 4097") {
			t.Errorf("tcpdump -i eth0 udp port 4789 on node2 (status %d):\n%s\nwant vni 4097", got.code, got.out)
		}
	})

	t.Run("the embedded DNS answers tasks.www with both tasks", func(t *testing.T) {
		out := node1.until(t, "nslookup tasks.www", "meshctl exec "+task1.id+" nslookup tasks.www", func(out string) bool {
			return strings.Contains(out, task1.ovnet) && strings.Contains(out, task2.ovnet)
		})
		t.Logf("node1$ meshctl exec %.12s nslookup tasks.www\n%s", task1.id, out)
	})

	t.Run("node2 powered off: node1's task takes the traffic", func(t *testing.T) {
		host1 := strings.TrimSpace(node1.sh(t, "meshctl exec "+task1.id+" hostname"))
		node2.powerOff()
		off := time.Now()
		url := "http://" + node1.ip + ":8888/"
		testutil.Eventually(t, stepWait, "only node1's task answers", func() error {
			if got := hostnames(t, ns, url, 10); got[host1] != 10 {
				return fmt.Errorf("curl %s 10 times: %v, want %s every time", url, got, host1)
			}
			return nil
		})
		t.Logf("after node2 powered off, %s answered 10/10 from node1's task %.1fs later", url, time.Since(off).Seconds())
	})
	t.Logf("two-VM suite: %.1fs from the first boot", time.Since(start).Seconds())
}
