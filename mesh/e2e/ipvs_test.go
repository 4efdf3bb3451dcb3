package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// TestIPVSTimeouts checks that --ipvs-timeouts reaches every sandbox, so
// the 900 s idle cut Swarm users hit can be lifted. It needs the IPVS
// plane: the VM suite (make test-vm) runs it with MESHD_E2E_LB_MODE=ipvs.
func TestIPVSTimeouts(t *testing.T) {
	testutil.RequireRoot(t)
	if lbMode() != "ipvs" {
		t.Skip("IPVS timeouts need the IPVS data plane; the VM suite runs this test")
	}
	l := &testLab{tb: t, prefix: randomPrefix(), root: t.TempDir()}
	t.Cleanup(l.down)
	if out, err := l.ctl("lab", "up", "--nodes", "1", "--lb-mode", "ipvs", "--meshd-flag=--ipvs-timeouts=3600s,120s,300s"); err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--publish", "8888:80", "whoami")
	eventually(t, 5*time.Second, "ipvsadm -L --timeout in ingress_sbox", func() (bool, string) {
		out, _ := l.onNode("node1", "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "ipvsadm", "-L", "--timeout")
		return strings.Contains(out, "Timeout (tcp tcpfin udp): 3600 120 300"), out
	})
}
