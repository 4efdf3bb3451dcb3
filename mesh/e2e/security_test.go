package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssKiB is a process's resident set size, from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestSecurity replays, as tests, the attacks the trust model answers: a
// local user looking for the token, a sniffer on the underlay, requests
// without a certificate or in clear, services publishing meshd's own
// ports, floods of big bodies, trickling connections and bogus gossip.
func TestSecurity(t *testing.T) {
	l := newLabWith(t, 2, "--no-swarm")
	lb := l.load()
	node1 := lb.Nodes()[0]
	capture := filepath.Join(t.TempDir(), "2377.pcap")
	dump, err := startTcpdump(t, nil, "ip", "netns", "exec", l.prefix+"node1", "tcpdump", "--immediate-mode", "-i", "eth0", "-U", "-w", capture, "tcp port 2377")
	if err != nil {
		t.Fatal(err)
	}
	l.must(t, "--node", "node1", "swarm", "init", "--advertise-addr", "192.168.33.10")
	managerToken := strings.TrimSpace(l.must(t, "--node", "node1", "swarm", "join-token", "-q", "manager"))
	l.must(t, "--node", "node2", "swarm", "join", "--token", managerToken, "192.168.33.10:2377")
	l.must(t, "--node", "node2", "service", "create", "--name", "topsecretsvc", "--", "/bin/sleep", "1000")

	t.Run("the cluster port carries only TLS", func(t *testing.T) {
		// Packets reach the file as they come (--immediate-mode, -U), but
		// an interrupt stops tcpdump before it reads what the kernel
		// still holds: wait for the traffic of the joins in the file.
		eventually(t, 5*time.Second, "the joins' traffic captured", func() (bool, string) {
			fi, err := os.Stat(capture)
			return err == nil && fi.Size() >= 1000, fmt.Sprint(fi, err)
		})
		dump.stop()
		pcap, err := os.ReadFile(capture)
		if err != nil || len(pcap) < 1000 {
			t.Fatalf("capture of 2377: %d bytes, %v; tcpdump said:\n%s", len(pcap), err, dump.stderr)
		}
		secret := managerToken[len(managerToken)-25:]
		for _, clear := range []string{secret, "topsecretsvc", "/bin/sleep", `"Hostname"`, "POST /v1"} {
			if bytes.Contains(pcap, []byte(clear)) {
				t.Errorf("the capture of 2377 holds %q in clear", clear)
			}
		}
		if !bytes.Contains(pcap, []byte{0x16, 0x03, 0x01}) {
			t.Error("no TLS handshake in the capture of 2377")
		}
	})

	t.Run("no token for an unprivileged user", func(t *testing.T) {
		workerToken := strings.TrimSpace(l.must(t, "--node", "node1", "swarm", "join-token", "-q", "worker"))
		// The tokens reach the search in a file outside the lab, so that
		// no command line of the search itself holds them.
		patterns := filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(patterns, []byte(workerToken+"\n"+managerToken+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Only meshd's own modes may keep the user out of a run dir: the
		// test's directories above the lab are opened to all.
		labDir := filepath.Dir(node1.RunDir)
		for _, dir := range []string{filepath.Dir(patterns), filepath.Dir(filepath.Dir(patterns)), labDir, l.root, filepath.Dir(l.root)} {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		script := `ls "$1" >/dev/null || exit 1; grep -rlF -f "$2" "$1" 2>/dev/null; cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -oF -f "$2"; true`
		out, err := run(30*time.Second, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
			"sh", "-c", script, "sh", labDir, patterns)
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("uid 65534 finds a token: err %v\n%s", err, out)
		}
	})

	t.Run("requests in clear or without a certificate change nothing", func(t *testing.T) {
		before := l.must(t, "--node", "node1", "service", "ls", "-q")
		body := `{"Name":"evil","Args":["/bin/sh","-c","id"]}`
		// In clear, the TLS handshake fails and the connection closes.
		out, err := l.onNode("client", "curl", "-s", "-m", "5", "-w", "%{http_code}", "-X", "POST", "--data", body,
			"http://192.168.33.10:2377/v1/services")
		if err == nil || strings.TrimSpace(out) != "000" {
			t.Errorf("a request in clear: %v, answer %q, want no answer", err, out)
		}
		out, _ = l.onNode("client", "curl", "-sk", "-m", "5", "-X", "POST", "--data", body, "https://192.168.33.10:2377/v1/services")
		if !strings.Contains(out, "a node certificate of this cluster is required") {
			t.Errorf("a write without a certificate: %q, want a refusal", out)
		}
		if after := l.must(t, "--node", "node1", "service", "ls", "-q"); after != before {
			t.Errorf("service ls changed:\n%s\n---\n%s", before, after)
		}
	})

	t.Run("meshd's own ports cannot be published", func(t *testing.T) {
		for _, p := range []string{"2377:80", "7946:80", "7946:80/udp", "4789:80/udp"} {
			out, err := l.on("node1", "service", "create", "--name", "hijack", "--publish", p, "whoami")
			if err == nil || !strings.Contains(out, "reserved for meshd") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("--publish %s: err %v, want a one-line refusal:\n%s", p, err, out)
			}
		}
	})

	t.Run("big bodies without a certificate cost little memory", func(t *testing.T) {
		big := filepath.Join(t.TempDir(), "16M")
		if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 16<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		before := rssKiB(t, node1.PID)
		script := `for i in $(seq 16); do curl -sk -m 20 -o /dev/null --data-binary @"$1" https://192.168.33.10:2377/v1/cluster/join & done; wait`
		if out, err := l.onNode("client", "sh", "-c", script, "sh", big); err != nil {
			t.Fatalf("16 uploads: %v\n%s", err, out)
		}
		after := rssKiB(t, node1.PID)
		t.Logf("manager RSS %d KiB before 16 concurrent 16 MiB bodies, %d KiB after", before, after)
		if after-before > 20<<10 {
			t.Errorf("the manager grew %d KiB, want under 20 MiB", after-before)
		}
	})

	t.Run("a trickling connection is closed", func(t *testing.T) {
		script := `trap '' PIPE; exec 3<>/dev/tcp/192.168.33.10/2377 || exit 1; for i in $(seq 30); do printf x >&3 2>/dev/null || exit 0; sleep 1; done; echo still open`
		start := time.Now()
		out, err := l.onNode("client", "bash", "-c", script)
		took := time.Since(start)
		t.Logf("a connection sending a byte a second was closed after %s", took.Round(100*time.Millisecond))
		if err != nil || strings.Contains(out, "still open") || took > 15*time.Second*timeScale() {
			t.Errorf("trickling connection: err %v after %s\n%s", err, took, out)
		}
	})

	t.Run("bogus gossip adds a few log lines", func(t *testing.T) {
		logText := func() []byte {
			data, _ := os.ReadFile(node1.Log)
			return data
		}
		beforeLog := logText()
		before := bytes.Count(beforeLog, []byte("\n"))
		script := `for i in $(seq 1000); do printf 'not a gossip packet' > /dev/udp/192.168.33.10/7946; done`
		if out, err := l.onNode("client", "bash", "-c", script); err != nil {
			t.Fatalf("send: %v\n%s", err, out)
		}
		// Unlimited, every datagram would log at once; the first line
		// says they are being handled.
		eventually(t, 5*time.Second, "the bogus datagrams logged", func() (bool, string) {
			added := logText()[len(beforeLog):]
			return bytes.Contains(added, []byte("192.168.33.1")), string(added)
		})
		if added := bytes.Count(logText(), []byte("\n")) - before; added > 5 {
			t.Errorf("1000 bogus datagrams added %d log lines, want at most 5:\n%s", added, logText()[len(beforeLog):])
		}
	})
}

// TestTrustRotation rotates the gossip key every few seconds and the root
// CA once on a two-node cluster: the nodes renew each time, gossip keeps
// working through every step, the old root goes once both nodes hold
// certificates of the new one, and the new tokens join a third node.
func TestTrustRotation(t *testing.T) {
	l := newLabWith(t, 3, "--no-swarm", "--meshd-flag=--gossip-key-rotation=4s")
	lb := l.load()
	l.must(t, "--node", "node1", "swarm", "init", "--advertise-addr", "192.168.33.10")
	token := strings.TrimSpace(l.must(t, "--node", "node1", "swarm", "join-token", "-q", "worker"))
	l.must(t, "--node", "node2", "swarm", "join", "--token", token, "192.168.33.10:2377")
	steps := func() int {
		data, _ := os.ReadFile(lb.Nodes()[0].Log)
		return bytes.Count(data, []byte("gossip_rotation_step=0"))
	}
	eventually(t, 30*time.Second, "a gossip key rotation through its three steps", func() (bool, string) {
		return steps() >= 1, fmt.Sprint(steps(), " rotations done")
	})
	for i := range 3 { // gossip carries new objects to node2 after the rotation
		name := fmt.Sprint("after-rotation-", i)
		l.must(t, "--node", "node1", "service", "create", "-d", "--name", name, "alpine")
	}
	eventually(t, 10*time.Second, "node2 runs what was created after the rotation", func() (bool, string) {
		out, _ := l.on("node2", "ps", "--format", "{{.Name}}")
		return strings.Count(out, "after-rotation-") >= 1, out
	})

	before := l.must(t, "--node", "node1", "swarm", "ca")
	out := l.must(t, "--node", "node1", "swarm", "ca", "--rotate")
	if strings.Count(out, "BEGIN CERTIFICATE") != 2 {
		t.Errorf("swarm ca --rotate: want the new and the old root:\n%s", out)
	}
	eventually(t, 30*time.Second, "the old root dropped once both nodes renewed", func() (bool, string) {
		now, _ := l.on("node1", "swarm", "ca")
		return strings.Count(now, "BEGIN CERTIFICATE") == 1 && now != before, now
	})
	newToken := strings.TrimSpace(l.must(t, "--node", "node1", "swarm", "join-token", "-q", "worker"))
	if newToken == token {
		t.Fatal("the worker token did not change with the root")
	}
	if out, err := l.on("node3", "swarm", "join", "--token", token, "192.168.33.10:2377"); err == nil {
		t.Errorf("the token of the old root still joins:\n%s", out)
	}
	l.must(t, "--node", "node3", "swarm", "join", "--token", newToken, "192.168.33.10:2377")
	eventually(t, 10*time.Second, "three nodes Ready", func() (bool, string) {
		out, _ := l.on("node1", "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
		return strings.Count(out, "Ready") == 3, out
	})
}
