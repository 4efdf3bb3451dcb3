package lb

import (
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/overlay"
)

// TestGatewayBridgeMatchesOverlay checks that the deprecated GatewayBridge
// and its replacement, overlay.GatewayBridge, build the same thing: each
// makes the bridge in a namespace of its own and attaches a sandbox, and
// the devices, addresses, routes and sysctls are compared. It goes when
// GatewayBridge goes.
func TestGatewayBridgeMatchesOverlay(t *testing.T) {
	ns := newNamespaces(t, "oldhost", "oldsb", "newhost", "newsb")
	subnet, gw, addr := netip.MustParsePrefix("172.18.0.0/16"), netip.MustParseAddr("172.18.0.1"), netip.MustParseAddr("172.18.0.2")

	old := &GatewayBridge{Subnet: subnet, Gateway: gw, MTU: 1400}
	err := nsfile.Do(ns["oldhost"], func() error { // it works in the caller's namespace
		if err := old.Ensure(); err != nil {
			return err
		}
		return old.Attach(ns["oldsb"], "eth1", "gwveth0", addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := overlay.NewGatewayBridge(overlay.GatewayBridgeConfig{Name: GatewayBridgeName, NS: ns["newhost"],
		Subnet: subnet, Gateway: gw, MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := g.Attach(ns["newsb"], "eth1", "gwveth0", addr); err != nil {
		t.Fatal(err)
	}
	want, got := netState(t, ns["oldhost"], ns["oldsb"]), netState(t, ns["newhost"], ns["newsb"])
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("overlay.GatewayBridge differs from lb.GatewayBridge (-lb +overlay):\n%s", diff)
	}
}

// netState is what "ip -j" and /proc/sys report about the gateway bridge
// in host and the attached sandbox sb, without ifindexes and MACs.
func netState(t *testing.T, host, sb string) map[string]any {
	t.Helper()
	state := map[string]any{}
	for _, q := range []struct{ ns, name string }{{host, GatewayBridgeName}, {host, "gwveth0"}, {sb, "eth1"}} {
		var links []struct {
			Flags     []string `json:"flags"`
			MTU       int      `json:"mtu"`
			Master    string   `json:"master"`
			Operstate string   `json:"operstate"`
			LinkInfo  struct {
				Kind string `json:"info_kind"`
			} `json:"linkinfo"`
			AddrInfo []struct {
				Family, Local, Scope string
				Prefixlen            int
			} `json:"addr_info"`
		}
		ipJSON(t, q.ns, &links, "-d", "addr", "show", "dev", q.name)
		state[q.name] = links
	}
	var routes []map[string]any
	ipJSON(t, sb, &routes, "route", "show")
	state["sandbox routes"] = routes
	for _, f := range []string{"ip_forward", "conf/" + GatewayBridgeName + "/route_localnet"} {
		out, err := exec.Command("nsenter", "--net="+host, "cat", "/proc/sys/net/ipv4/"+f).CombinedOutput()
		if err != nil {
			t.Fatalf("read %s: %v: %s", f, err, out)
		}
		state[f] = strings.TrimSpace(string(out))
	}
	return state
}

func ipJSON(t *testing.T, ns string, v any, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + ns, "ip", "-j"}, args...)...).Output()
	if err == nil {
		err = json.Unmarshal(out, v)
	}
	if err != nil {
		t.Fatalf("ip -j %s in %s: %v", strings.Join(args, " "), ns, err)
	}
}
