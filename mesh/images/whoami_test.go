package images

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// clientFor returns an HTTP client whose connections report their local
// address on the returned channel, to compare with whoami's RemoteAddr.
func clientFor(t *testing.T) (*http.Client, <-chan string) {
	t.Helper()
	local := make(chan string, 16)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			local <- c.LocalAddr().String()
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, local
}

// splitWhoami splits a whoami answer into its lines up to and including
// RemoteAddr, and the request part after it (CRLF-terminated, as
// http.Request.Write renders it).
func splitWhoami(t *testing.T, body string) (lines []string, request string) {
	t.Helper()
	i := strings.Index(body, "RemoteAddr: ")
	if i < 0 {
		t.Fatalf("no RemoteAddr line in:\n%s", body)
	}
	j := strings.IndexByte(body[i:], '\n')
	if j < 0 {
		t.Fatalf("RemoteAddr line unterminated in:\n%s", body)
	}
	return strings.Split(body[:i+j], "\n"), body[i+j+1:]
}

func TestWhoamiAnswer(t *testing.T) {
	r := startImage(t, "containous/whoami")
	if r.asked != ":80" {
		t.Errorf("whoami asked to listen on %q, want :80", r.asked)
	}
	client, local := clientFor(t)
	req, err := http.NewRequest("GET", r.url+"/some/path?x=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "meshd-test")
	req.Header.Set("X-Custom-Header", "hello mesh")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("whoami answered:\n%s", body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("got status %d, want 200", resp.StatusCode)
	}

	lines, request := splitWhoami(t, string(body))
	hostname, _ := os.Hostname()
	if want := "Hostname: " + hostname; lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	var ips []string
	for _, l := range lines[1 : len(lines)-1] {
		ip, ok := strings.CutPrefix(l, "IP: ")
		if !ok {
			t.Errorf("line %q between Hostname and RemoteAddr is not an IP line", l)
			continue
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			t.Errorf("IP line %q: %v", l, err)
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 {
		t.Errorf("no IP lines, want at least one")
	}
	if diff := cmp.Diff(interfaceIPs(), ips); diff != "" {
		t.Errorf("IP lines differ from the interfaces' addresses (-want +got):\n%s", diff)
	}
	if want := "RemoteAddr: " + <-local; lines[len(lines)-1] != want {
		t.Errorf("got %q, want %q (the client's local address)", lines[len(lines)-1], want)
	}
	want := "GET /some/path?x=1 HTTP/1.1\r\n" +
		"Host: " + strings.TrimPrefix(r.url, "http://") + "\r\n" +
		"User-Agent: meshd-test\r\n" +
		"Accept-Encoding: gzip\r\n" + // Go's client adds it; sorted with the rest
		"X-Custom-Header: hello mesh\r\n" +
		"\r\n"
	if diff := cmp.Diff(want, request); diff != "" {
		t.Errorf("request part (-want +got):\n%s", diff)
	}
	if got, want := r.stdout.String(), "whoami: listening on :"+portOf(t, r.url)+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}

// TestWhoamiLikeTutorial sends the request curl sends in the tutorial and
// checks that the request part of the answer is the tutorial's, byte for byte.
func TestWhoamiLikeTutorial(t *testing.T) {
	r := startImage(t, "whoami")
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const curl = "GET / HTTP/1.1\r\nHost: 192.168.200.10:8080\r\nUser-Agent: curl/7.68.0\r\nAccept: */*\r\n\r\n"
	if _, err := io.WriteString(conn, curl); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	lines, request := splitWhoami(t, string(body))
	if want := "RemoteAddr: " + conn.LocalAddr().String(); lines[len(lines)-1] != want {
		t.Errorf("got %q, want %q", lines[len(lines)-1], want)
	}
	if diff := cmp.Diff(curl, request); diff != "" {
		t.Errorf("request part (-want +got):\n%s", diff)
	}
}

func TestWhoamiFlags(t *testing.T) {
	r := startImage(t, "traefik/whoami:latest", "--port", "8080", "--name=web1", "--verbose")
	if r.asked != ":8080" {
		t.Errorf("asked to listen on %q, want :8080", r.asked)
	}
	resp, err := http.Get(r.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if first, _, _ := strings.Cut(string(body), "\n"); first != "Name: web1" {
		t.Errorf("first line %q, want %q", first, "Name: web1")
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if out := r.stdout.String(); !strings.Contains(out, `"GET / HTTP/1.1" - -`) {
		t.Errorf("--verbose wrote no access log line; stdout:\n%s", out)
	}
}

func TestWhoamiAPI(t *testing.T) {
	r := startImage(t, "whoami", "--name", "api-test")
	client, local := clientFor(t)
	req, _ := http.NewRequest("GET", r.url+"/api?q=1", nil)
	req.Header.Set("X-Custom-Header", "hello mesh")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	var got whoamiData
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	want := whoamiData{
		Hostname:   hostname,
		IP:         interfaceIPs(),
		URL:        "/api?q=1",
		Host:       strings.TrimPrefix(r.url, "http://"),
		Method:     "GET",
		Name:       "api-test",
		RemoteAddr: <-local,
		Headers: http.Header{
			"Accept-Encoding": {"gzip"},
			"User-Agent":      {"Go-http-client/1.1"},
			"X-Custom-Header": {"hello mesh"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/api (-want +got):\n%s", diff)
	}
}

func TestWhoamiHealth(t *testing.T) {
	r := startImage(t, "whoami")
	steps := []struct {
		method, body string
		want         int
	}{
		{method: "GET", want: 200},
		{method: "HEAD", want: 200},
		{method: "POST", body: "503", want: 200},
		{method: "GET", want: 503},
		{method: "POST", body: "teapot", want: 400},
		{method: "POST", body: "42", want: 400}, // WriteHeader(42) would panic
		{method: "POST", body: "1000", want: 400},
		{method: "GET", want: 503},
		{method: "POST", body: "200", want: 200},
		{method: "GET", want: 200},
	}
	for i, s := range steps {
		req, _ := http.NewRequest(s.method, r.url+"/health", strings.NewReader(s.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("step %d %s /health %q: %v", i, s.method, s.body, err)
		}
		resp.Body.Close()
		if resp.StatusCode != s.want {
			t.Errorf("step %d %s /health %q: got %d, want %d", i, s.method, s.body, resp.StatusCode, s.want)
		}
	}
}

func TestParseWhoamiArgs(t *testing.T) {
	tests := []struct {
		args []string
		want whoamiConfig
	}{
		{args: nil, want: whoamiConfig{port: 80}},
		{args: []string{"--port", "8080"}, want: whoamiConfig{port: 8080}},
		{args: []string{"-port=0"}, want: whoamiConfig{port: 0}},
		{args: []string{"--name", "a", "--verbose"}, want: whoamiConfig{port: 80, name: "a", verbose: true}},
		{args: []string{"extra", "--port", "1"}, want: whoamiConfig{port: 80}}, // flags stop at the first argument
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := parseWhoamiArgs(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(whoamiConfig{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv("WHOAMI_PORT_NUMBER", "2001")
		t.Setenv("WHOAMI_NAME", "iamfoo")
		got, err := parseWhoamiArgs(nil, io.Discard)
		want := whoamiConfig{port: 2001, name: "iamfoo"}
		if err != nil || got != want {
			t.Errorf("got %+v, %v; want %+v", got, err, want)
		}
	})
}

func portOf(t *testing.T, url string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}
