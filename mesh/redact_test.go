package mesh

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

func TestSecretsAreRedacted(t *testing.T) {
	const secret = "SWMTKN-1-topsecret0123456789"
	tests := []struct {
		name string
		v    any
	}{
		{"identity", identity{ID: "n1", Key: []byte("topsecret-node-key"), GossipKeys: [][]byte{[]byte("topsecret-gossip-key")}, Token: secret}},
		{"Config", Config{NodeName: "node1", Join: "192.168.33.10:2377", Token: secret}},
		{"UserConfig", UserConfig{NodeName: "node1", Token: secret, TokenEnv: secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", tt.v)
			outs := []string{buf.String()}
			for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
				outs = append(outs, fmt.Sprintf(f, tt.v))
			}
			for _, out := range outs {
				if strings.Contains(out, "topsecret") || !strings.Contains(out, api.Redacted) {
					t.Errorf("formatted as %s: want its secrets redacted", out)
				}
			}
		})
	}
}
