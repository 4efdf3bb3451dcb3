package ipam

import (
	"errors"
	"net/netip"
	"testing"
)

func TestGatewayBridgePool(t *testing.T) {
	all172 := prefix("172.16.0.0/12")
	tests := []struct {
		name  string
		taken []netip.Prefix
		want  string
	}{
		{name: "nothing taken", want: "172.18.0.0/16"},
		{name: "lab underlay", taken: node1, want: "172.18.0.0/16"},
		{name: "172.17 taken (docker0)", taken: []netip.Prefix{prefix("172.17.0.1/16")}, want: "172.18.0.0/16"},
		{name: "172.18 taken", taken: []netip.Prefix{prefix("172.18.0.1/16")}, want: "172.19.0.0/16"},
		{name: "one address of 172.18", taken: []netip.Prefix{prefix("172.18.44.5/32")}, want: "172.19.0.0/16"},
		{name: "172.18 to 172.20 taken", taken: []netip.Prefix{prefix("172.18.0.0/15"), prefix("172.20.3.0/24")}, want: "172.21.0.0/16"},
		{name: "172.16/12 taken", taken: []netip.Prefix{all172}, want: "192.168.0.0/20"},
		{name: "and lab underlay", taken: []netip.Prefix{all172, prefix("192.168.0.0/19"), node1[0]}, want: "192.168.48.0/20"},
		{name: "all taken", taken: []netip.Prefix{all172, prefix("192.168.0.0/16")}, want: "exhausted"},
		{name: "IPv6 and zero ignored", taken: []netip.Prefix{prefix("fd00::/8"), {}}, want: "172.18.0.0/16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := GatewayBridgePool(tt.taken)
			if tt.want == "exhausted" {
				if !errors.Is(err, ErrExhausted) {
					t.Fatalf("got %v, %v, want ErrExhausted", got, err)
				}
				return
			}
			if err != nil || got != prefix(tt.want) {
				t.Fatalf("got %v, %v, want %s", got, err, tt.want)
			}
		})
	}
}

func TestMAC(t *testing.T) {
	tests := []struct {
		name string
		ip   netip.Addr
		want string
	}{
		{name: "task on ingress", ip: addr("10.255.0.5"), want: "02:42:0a:ff:00:05"},
		{name: "VIP", ip: addr("10.0.0.2"), want: "02:42:0a:00:00:02"},
		{name: "gateway bridge", ip: addr("172.18.0.2"), want: "02:42:ac:12:00:02"},
		{name: "IPv4-mapped", ip: addr("::ffff:10.0.0.7"), want: "02:42:0a:00:00:07"},
		{name: "IPv6", ip: addr("fd00::1"), want: ""},
		{name: "zero", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MAC(tt.ip).String(); got != tt.want {
				t.Errorf("MAC(%v): got %q, want %q", tt.ip, got, tt.want)
			}
		})
	}
}

func TestBridgeNetworkPool(t *testing.T) {
	for _, tc := range []struct {
		taken []string
		want  string
	}{
		{nil, "172.17.0.0/16"},
		{[]string{"172.17.0.1/16"}, "172.18.0.0/16"},
		{[]string{"172.17.0.1/16", "172.18.0.1/16", "10.0.2.15/24"}, "172.19.0.0/16"},
		{[]string{"172.16.0.0/12"}, "192.168.0.0/20"},
	} {
		var taken []netip.Prefix
		for _, s := range tc.taken {
			taken = append(taken, netip.MustParsePrefix(s))
		}
		got, err := BridgeNetworkPool(taken)
		if err != nil || got.String() != tc.want {
			t.Errorf("BridgeNetworkPool(%v) = %v, %v; want %s", tc.taken, got, err, tc.want)
		}
	}
	if _, err := BridgeNetworkPool([]netip.Prefix{netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16")}); !errors.Is(err, ErrExhausted) {
		t.Errorf("every pool taken: err %v, want ErrExhausted", err)
	}
}
