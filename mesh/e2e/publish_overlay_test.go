package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// A container on an attachable overlay publishes its ports on its node
// as docker run -p does there: the node's port to the container, through
// mesh_gwbridge. The host port is the node's own: another node may use
// it, nothing else on the node may, nor may a service.
func TestPublishOnAttachableOverlay(t *testing.T) {
	l := newLab(t, 2)
	on := func(node string, args ...string) string {
		t.Helper()
		return strings.TrimSpace(l.must(t, append([]string{"--node", node}, args...)...))
	}
	on("node1", "network", "create", "-d", "overlay", "--attachable", "ovnet")
	on("node2", "run", "-d", "--name", "web", "--net", "ovnet", "-p", "8080:80", "nginx")
	on("node2", "run", "-d", "--name", "any", "--net", "ovnet", "-P", "nginx")

	ps := on("node2", "ps")
	for _, want := range []string{`0\.0\.0\.0:8080->80/tcp\s+web`, `0\.0\.0\.0:32768->80/tcp\s+any`} {
		if !regexp.MustCompile(`(?m)` + want + `$`).MatchString(ps) {
			t.Errorf("ps on node2 lacks %s:\n%s", want, ps)
		}
	}
	if got := on("node2", "port", "web"); got != "80/tcp -> 0.0.0.0:8080" {
		t.Errorf("port web: %q", got)
	}
	for _, url := range []string{"http://192.168.33.11:8080/", "http://192.168.33.11:32768/"} {
		eventually(t, 10*time.Second, "nginx on "+url+" from the client", func() (bool, string) {
			out, _ := l.ctl(curlFrom("client", url)...)
			return strings.Contains(out, "Welcome to nginx!"), out
		})
	}
	// Only on its node: node1's 8080 answers nothing.
	if out, err := l.ctl(curlFrom("client", "http://192.168.33.10:8080/")...); err == nil {
		t.Errorf("node1:8080 answered, want nothing:\n%s", out)
	}

	// The port is node2's: node1 may publish it, nothing more on node2.
	on("node1", "run", "-d", "--name", "web1", "--net", "ovnet", "-p", "8080:80", "nginx")
	for _, args := range [][]string{
		{"run", "-d", "--net", "ovnet", "-p", "8080:80", "nginx"},
		{"run", "-d", "-p", "8080:80", "nginx"}, // a bridge container
	} {
		out, err := l.on("node2", args...)
		if err == nil || !strings.Contains(out, "Bind for 0.0.0.0:8080 failed: port is already allocated") {
			t.Errorf("%v on node2: %v\n%s", args, err, out)
		}
	}
	out, err := l.on("node1", "service", "create", "--name", "pub", "--publish", "8080:80", "whoami")
	if err == nil || !regexp.MustCompile(`port 8080/tcp is already published by container web1? on node[12]`).MatchString(out) {
		t.Errorf("service publishing a container's port: %v\n%s", err, out)
	}

	// rm -f gives the port back.
	on("node2", "rm", "-f", "web")
	eventually(t, 10*time.Second, "node2:8080 closed", func() (bool, string) {
		out, err := l.ctl(curlFrom("client", "http://192.168.33.11:8080/")...)
		return err != nil, out
	})
	on("node2", "run", "-d", "--name", "local", "-p", "8080:80", "nginx")
	eventually(t, 10*time.Second, "the bridge container on node2:8080", func() (bool, string) {
		out, _ := l.ctl(curlFrom("client", "http://192.168.33.11:8080/")...)
		return strings.Contains(out, "Welcome to nginx!"), out
	})
}
