package lab

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnderlayCmds(t *testing.T) {
	l, err := newLab(Options{Prefix: "tx-", Nodes: 1, Daemon: func(Node, []string) []string { return []string{"true"} }},
		"/run/meshd-lab/tx-")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range underlayCmds(l.prefix, l.nodes) {
		got = append(got, "ip "+strings.Join(c.argv(), " "))
	}
	want := []string{
		"ip -n tx-lab-underlay link set lo down",
		"ip -n tx-lab-underlay addr flush dev lo",
		"ip -n tx-lab-underlay link add br0 mtu 1500 up type bridge",
		"ip -n tx-lab-underlay link add tx-node1 mtu 1500 master br0 up type veth peer name eth0 mtu 1500 netns tx-node1",
		"ip -n tx-node1 addr add 192.168.33.10/24 dev eth0",
		"ip -n tx-node1 link set eth0 up",
		"ip -n tx-lab-underlay link add tx-client mtu 1500 master br0 up type veth peer name eth0 mtu 1500 netns tx-client",
		"ip -n tx-client addr add 192.168.33.1/24 dev eth0",
		"ip -n tx-client link set eth0 up",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("underlay commands mismatch (-want +got):\n%s", diff)
	}
}

// routesJSON is "ip -j route show table all" in a lab node, as iproute2 6.1
// prints it, with a default route added.
const routesJSON = `[{"dst":"default","dev":"eth0","scope":"link","flags":[]},
{"dst":"192.168.33.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.168.33.10","flags":[]},
{"dst":"192.168.33.7","gateway":"192.168.33.1","dev":"eth0","flags":[]},
{"dst":"10.0.0.0/8","gateway":"192.168.33.1","dev":"eth0","table":"100","flags":[]},
{"dst":"192.168.0.0/16","dev":"eth0","flags":[]},
{"type":"local","dst":"127.0.0.0/8","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]},
{"type":"broadcast","dst":"192.168.33.255","dev":"eth0","table":"local","protocol":"kernel","scope":"link","prefsrc":"192.168.33.10","flags":[]},
{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
{"type":"multicast","dst":"ff00::/8","dev":"eth0","table":"local","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}]`

func TestLeavingRoutes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "no routes", in: "[]\n", want: nil},
		{name: "mixed", in: routesJSON, want: []string{
			"default dev eth0",
			"10.0.0.0/8 via 192.168.33.1 dev eth0 table 100",
			"192.168.0.0/16 dev eth0",
			"fe80::/64 dev eth0",
		}},
		{name: "garbage", in: "{", wantErr: "parse ip route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes, err := leavingRoutes([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range routes {
				got = append(got, r.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("leaving routes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
