package e2e

import (
	"strings"
	"testing"
)

// TestTaskEtcFiles: a task reads its own /etc/hostname and /etc/hosts, as
// a container does: its hostname, and Docker's hosts file with a line for
// its overlay address (none for its ingress one); the node's own files
// are untouched.
func TestTaskEtcFiles(t *testing.T) {
	l := newLab(t, 1)
	hostFiles := func() string {
		// grep finds no mount on /etc files when all is well: true.
		out, err := l.onNode("node1", "sh", "-c", "cat /etc/hostname /etc/hosts 2>&1; grep ' /etc/' /proc/self/mountinfo; true")
		if err != nil {
			t.Fatalf("the node's /etc files: %v\n%s", err, out)
		}
		return out
	}
	before := hostFiles()
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "service", "create", "--name", "web", "--network", "ovnet", "--publish", "8888:80", "whoami")
	out := l.must(t, "--node", "node1", "service", "ps", "web", "--format", `{{range .Networks}}{{.NetworkName}}={{.Addr}} {{end}}`)
	addrs := map[string]string{}
	for _, f := range strings.Fields(out) {
		if name, cidr, ok := strings.Cut(f, "="); ok {
			addrs[name], _, _ = strings.Cut(cidr, "/")
		}
	}
	if addrs["ovnet"] == "" || addrs["ingress"] == "" {
		t.Fatalf("web.1's addresses %v, want one on ovnet and one on ingress", out)
	}
	hostname := strings.TrimSpace(l.must(t, "--node", "node1", "exec", "web.1", "--", "hostname"))
	// A task's file is bound over the machine's; a machine without the
	// file (the VM suite's initramfs has no /etc/hostname) gets none,
	// rather than one left behind in its /etc.
	has := func(path string) bool {
		_, err := l.onNode("node1", "test", "-e", path)
		return err == nil
	}
	if !has("/etc/hostname") {
		t.Log("this machine has no /etc/hostname: the task has none either")
	} else if got := l.must(t, "--node", "node1", "exec", "web.1", "--", "cat", "/etc/hostname"); got != hostname+"\n" {
		t.Errorf("/etc/hostname in the task: %q, want %q", got, hostname+"\n")
	}
	if !has("/etc/hosts") {
		t.Log("this machine has no /etc/hosts: the task has none either")
		return
	}
	hosts := l.must(t, "--node", "node1", "exec", "web.1", "--", "cat", "/etc/hosts")
	if want := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"; !strings.HasPrefix(hosts, want) {
		t.Errorf("/etc/hosts in the task does not start as Docker's:\n%s", hosts)
	}
	if want := "\n" + addrs["ovnet"] + "\t" + hostname + "\n"; !strings.HasSuffix(hosts, want) {
		t.Errorf("/etc/hosts in the task lacks %q at its end:\n%s", want[1:], hosts)
	}
	if strings.Contains(hosts, addrs["ingress"]) {
		t.Errorf("/etc/hosts in the task names its ingress address %s:\n%s", addrs["ingress"], hosts)
	}
	if after := hostFiles(); after != before {
		t.Errorf("the node's /etc files changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
