package api

import (
	"net/http"
	"strings"
	"testing"
)

func TestCheckSizes(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	ports := func(n int) []PortConfig { return make([]PortConfig, n) }
	nets := func(n int) []NetworkAttachment { return make([]NetworkAttachment, n) }
	aux := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[strings.Repeat("k", i+1)] = "10.0.9.2"
		}
		return m
	}
	tests := []struct {
		name    string
		req     interface{ CheckSizes() error }
		wantErr string // "" accepts
	}{
		{"service at the limits", ServiceCreate{Name: long(63), Image: "whoami", Args: append(many(63, "x"), long(4096-63)),
			Networks: append(nets(15), NetworkAttachment{Target: "ovnet", Aliases: many(32, long(63))}), Ports: ports(64)}, ""},
		{"service name", ServiceCreate{Name: long(64)}, `invalid service name "` + long(64) + `": longer than 63 bytes`},
		{"image", ServiceCreate{Image: long(256)}, "invalid image " + Quote(long(256)) + ": longer than 255 bytes"},
		{"arguments", ServiceCreate{Args: many(65, "x")}, "too many arguments: 65, at most 64"},
		{"argument bytes", ServiceCreate{Args: []string{long(4000), long(97)}}, "arguments too long: 4097 bytes, at most 4096"},
		{"networks", ServiceCreate{Networks: nets(17)}, "too many networks: 17, at most 16"},
		{"aliases", ServiceCreate{Networks: []NetworkAttachment{{Target: "ovnet", Aliases: many(33, "a")}}},
			"too many aliases on network ovnet: 33, at most 32"},
		{"alias", ServiceCreate{Networks: []NetworkAttachment{{Target: "ovnet", Aliases: []string{long(64)}}}},
			"invalid alias " + Quote(long(64)) + ": longer than 63 bytes"},
		{"network ref", ServiceCreate{Networks: []NetworkAttachment{{Target: long(65)}}}, "invalid network " + Quote(long(65))},
		{"ports", ServiceCreate{Ports: ports(65)}, "too many published ports: 65, at most 64"},
		{"protocol", ServiceCreate{Ports: []PortConfig{{Protocol: long(65)}}}, "invalid protocol"},
		{"network at the limits", NetworkCreate{Name: long(63), Subnet: "10.0.9.0/24", AuxAddresses: aux(32)}, ""},
		{"network name", NetworkCreate{Name: long(64)}, "invalid network name"},
		{"subnet", NetworkCreate{Subnet: long(65)}, "invalid subnet"},
		{"aux addresses", NetworkCreate{AuxAddresses: aux(33)}, "too many aux addresses: 33, at most 32"},
		{"join", JoinRequest{ID: "x", Hostname: long(63), Addr: "192.168.33.11", APIAddr: "192.168.33.11:2377"}, ""},
		{"join node name", JoinRequest{Hostname: long(64)}, "invalid node name"},
		{"join version", JoinRequest{Version: long(65)}, "invalid version"},
		{"node update", NodeUpdate{Role: long(65)}, "invalid role"},
		{"swarm init", SwarmInit{AdvertiseAddr: long(300)}, "invalid advertise address"},
		{"swarm join token", SwarmJoin{Token: "SWMTKN-1-" + long(300)}, "invalid token: longer than 256 bytes"},
		{"swarm join remote", SwarmJoin{RemoteAddr: long(300)}, "invalid remote address"},
		{"run at the limits", ContainerCreate{Name: long(63), Image: "alpine", Cmd: many(64, "x"), Env: many(64, "K=v"),
			Networks: append(make([]ContainerAttach, 15), ContainerAttach{Network: "dev", Aliases: many(32, long(63))}),
			Publish:  make([]ContainerPort, 64)}, ""},
		{"run name", ContainerCreate{Name: long(64)}, "invalid container name"},
		{"run arguments", ContainerCreate{Cmd: many(65, "x")}, "too many arguments: 65, at most 64"},
		{"run argument bytes", ContainerCreate{Cmd: []string{long(4097)}}, "arguments too long: 4097 bytes"},
		{"run environment", ContainerCreate{Env: []string{"novalue"}}, "invalid environment variable"},
		{"run networks", ContainerCreate{Networks: make([]ContainerAttach, 17)}, "too many networks: 17"},
		{"run aliases", ContainerCreate{Networks: []ContainerAttach{{Network: "dev", Aliases: many(33, "a")}}}, "too many aliases on network dev"},
		{"run ports", ContainerCreate{Publish: make([]ContainerPort, 65)}, "too many published ports: 65"},
		{"connect alias", NetworkConnect{Container: "x", Attach: ContainerAttach{Aliases: []string{long(64)}}}, "invalid alias"},
		{"connect container", NetworkConnect{Container: long(65)}, "invalid container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.CheckSizes()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || StatusCode(err) != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400 starting %q", err, tt.wantErr)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 200 {
				t.Errorf("message is %d bytes or several lines: %q", len(msg), msg)
			}
			if strings.Contains(err.Error(), long(65)) {
				t.Errorf("the message repeats more than %d bytes of the input", MaxQuoted)
			}
		})
	}
}
