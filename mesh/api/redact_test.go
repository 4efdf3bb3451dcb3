package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// secret is in every secret field of the values below.
const secret = "SWMTKN-1-topsecret0123456789"

// checkRedacted formats v each way of formats and logs it with slog's
// handlers, and fails if the secret shows.
func checkRedacted(t *testing.T, name string, v any, formats []string) {
	t.Helper()
	for _, f := range formats {
		if s := fmt.Sprintf(f, v); strings.Contains(s, secret) || strings.Contains(s, "topsecret") {
			t.Errorf("%s with %s shows the secret: %s", name, f, s)
		}
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("x", "v", v)
		if strings.Contains(buf.String(), "topsecret") || !strings.Contains(buf.String(), Redacted) {
			t.Errorf("%s logged: %s, want the secret redacted", name, buf.String())
		}
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	all := []string{"%v", "%+v", "%#v", "%s"}
	tests := []struct {
		name    string
		v       any
		formats []string // besides slog
	}{
		{"JoinRequest", JoinRequest{ID: "n", Token: secret}, all},
		{"JoinResponse", JoinResponse{Role: RoleWorker, GossipKeys: [][]byte{[]byte("topsecret-gossip-key-0123456789a")}}, all},
		{"RenewResponse", RenewResponse{Role: RoleWorker, GossipKeys: [][]byte{[]byte("topsecret-gossip-key-0123456789a")}}, all},
		{"SwarmJoin", SwarmJoin{RemoteAddr: "192.168.33.10", Token: secret}, all},
		// meshctl prints these: only their logs are redacted.
		{"JoinToken", JoinToken{Role: RoleWorker, Token: secret, ManagerAddr: "192.168.33.10:2377"}, nil},
		{"SwarmInitResponse", SwarmInitResponse{NodeID: "n", WorkerToken: secret}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRedacted(t, tt.name, tt.v, tt.formats) })
	}
	if s := fmt.Sprint(SwarmJoin{RemoteAddr: "192.168.33.10"}); strings.Contains(s, Redacted) {
		t.Errorf("no token is shown redacted: %s", s)
	}
}
