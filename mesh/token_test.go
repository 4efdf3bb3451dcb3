package mesh

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewTokenIsValidAndRandom(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b {
		t.Errorf("two tokens are equal: %s", a)
	}
	if err := CheckToken(a); err != nil {
		t.Errorf("CheckToken(NewToken()) = %v, want nil", err)
	}
	if !strings.HasPrefix(a, tokenPrefix) || len(a) != len(tokenPrefix)+tokenSecretLen {
		t.Errorf("token %q: want %s + %d characters", a, tokenPrefix, tokenSecretLen)
	}
}

func TestCheckToken(t *testing.T) {
	for _, tok := range []string{"", "SWMTKN-1-", "SWMTKN-1-short", "secret-without-prefix-0123456789", "SWMTKN-1-UPPERCASE0123456789ab", "SWMTKN-1-has space 0123456789"} {
		if err := CheckToken(tok); err == nil {
			t.Errorf("CheckToken(%q) = nil, want an error", tok)
		}
	}
}

func TestGossipKeyDependsOnToken(t *testing.T) {
	k1, k2 := GossipKey("SWMTKN-1-aaaaaaaaaaaaaaaaaaaa"), GossipKey("SWMTKN-1-aaaaaaaaaaaaaaaaaaab")
	if len(k1) != 32 {
		t.Errorf("key length %d, want 32 (AES-256)", len(k1))
	}
	if bytes.Equal(k1, k2) {
		t.Error("two tokens give the same gossip key")
	}
}

func TestSignedRequests(t *testing.T) {
	const token = "SWMTKN-1-0123456789abcdefghij"
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"ID":"x"}`)
	newReq := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://m:2377/v1/cluster/join", bytes.NewReader(body))
		return r
	}
	tests := []struct {
		name    string
		mutate  func(r *http.Request) ([]byte, string, time.Time)
		wantErr bool
	}{
		{name: "same token", mutate: func(r *http.Request) ([]byte, string, time.Time) { return body, token, now }},
		{name: "wrong token", mutate: func(r *http.Request) ([]byte, string, time.Time) { return body, token + "x", now }, wantErr: true},
		{name: "body changed", mutate: func(r *http.Request) ([]byte, string, time.Time) { return []byte(`{"ID":"y"}`), token, now }, wantErr: true},
		{name: "path changed", mutate: func(r *http.Request) ([]byte, string, time.Time) {
			r.URL.Path = "/v1/nodes/x"
			return body, token, now
		}, wantErr: true},
		{name: "replayed late", mutate: func(r *http.Request) ([]byte, string, time.Time) { return body, token, now.Add(10 * time.Minute) }, wantErr: true},
		{name: "no header", mutate: func(r *http.Request) ([]byte, string, time.Time) {
			r.Header.Del(authHeader)
			return body, token, now
		}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReq()
			signRequest(r, token, body, now)
			gotBody, verifyToken, at := tt.mutate(r)
			err := verifyRequest(r, verifyToken, gotBody, at)
			if (err != nil) != tt.wantErr {
				t.Errorf("verify = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
