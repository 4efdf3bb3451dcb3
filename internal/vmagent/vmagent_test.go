package vmagent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	c := Client{HTTP: srv.Client(), Addr: strings.TrimPrefix(srv.URL, "http://")}
	for _, tc := range []struct {
		argv    []string
		timeout time.Duration
		want    Result
	}{
		{[]string{"sh", "-c", "echo out; echo err >&2"}, 5 * time.Second, Result{Output: "out\nerr\n"}},
		{[]string{"sh", "-c", "exit 3"}, 5 * time.Second, Result{Code: 3}},
		{[]string{"/nonexistent/program"}, 5 * time.Second, Result{Code: -1, Err: `fork/exec /nonexistent/program: no such file or directory`}},
		{[]string{"sleep", "30"}, time.Second, Result{Code: -1, Err: "signal: killed"}},
	} {
		got, err := c.Run(context.Background(), tc.timeout, tc.argv...)
		if err != nil || got != tc.want {
			t.Errorf("Run(%q) = %+v, %v; want %+v", tc.argv, got, err, tc.want)
		}
	}
	resp, err := http.Post(srv.URL+"/run", "application/json", strings.NewReader(`{"argv": []}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("empty argv: %s, want 400", resp.Status)
	}
}
