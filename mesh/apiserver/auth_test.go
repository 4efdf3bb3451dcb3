package apiserver

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

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
