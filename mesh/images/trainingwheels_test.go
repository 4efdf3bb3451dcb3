package images

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRedis answers every connection's first command with a canned reply
// and closes it, or with reply "" keeps it open and silent; it returns its
// address.
func fakeRedis(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := readRedisCommand(bufio.NewReader(c)); err == nil && reply != "" {
					io.WriteString(c, reply)
					return
				}
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// getPage GETs url and returns the status and body; a page is HTML.
func getPage(t *testing.T, url string) (int, string) {
	t.Helper()
	code, hdr, body := fetch(t, "GET", url)
	if ct := hdr.Get("Content-Type"); code == 200 && ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q, want text/html; charset=utf-8", url, ct)
	}
	return code, body
}

// TestTrainingWheelsCounts runs trainingwheels against the built-in redis:
// every view of / counts, nothing else does.
func TestTrainingWheelsCounts(t *testing.T) {
	r := startImage(t, "redis")
	tw := httptest.NewServer(&trainingWheels{redisAddr: strings.TrimPrefix(r.url, "http://"), timeout: 5 * time.Second})
	defer tw.Close()
	hostname, _ := os.Hostname()
	for _, tt := range []struct {
		path string
		code int
		want string
	}{
		{"/", 200, "This page has been viewed 1 times."},
		{"/", 200, "This page has been viewed 2 times."},
		{"/favicon.ico", 404, "404 page not found"},
		{"/?from=curl", 200, "This page has been viewed 3 times."},
	} {
		code, body := getPage(t, tw.URL+tt.path)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Fatalf("GET %s: %d\n%s\nwant %d with %q", tt.path, code, body, tt.code, tt.want)
		}
		if code == 200 {
			for _, want := range []string{"<title>Training wheels</title>", "Served by container " + hostname + "."} {
				if !strings.Contains(body, want) {
					t.Errorf("GET %s: page lacks %q:\n%s", tt.path, want, body)
				}
			}
			if strings.Contains(body, "error") {
				t.Errorf("GET %s: page shows an error:\n%s", tt.path, body)
			}
		}
	}
	resp, err := http.Post(tw.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
	if _, body := getPage(t, tw.URL+"/"); !strings.Contains(body, "viewed 4 times") {
		t.Errorf("after a 404 and a 405, want the 4th view counted:\n%s", body)
	}
}

// TestTrainingWheelsRedisErrors checks that whatever goes wrong with
// redis, the page answers 200 saying so, in time, as the original does.
func TestTrainingWheelsRedisErrors(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name, addr, want string
	}{
		{"refused", refused, "connection refused"},
		{"not resolved", "redis.invalid:6379", "redis.invalid"},
		{"error reply", fakeRedis(t, "-ERR <b>bold</b>\r\n"), "ERR &lt;b&gt;bold&lt;/b&gt;"},
		{"unexpected reply", fakeRedis(t, "+OK\r\n"), "unexpected reply to INCR"},
		{"not an integer", fakeRedis(t, ":x\r\n"), "unexpected reply to INCR"},
		{"reply too long", fakeRedis(t, ":"+strings.Repeat("1", 300)+"\r\n"), "reply too long"},
		{"closed mid-reply", fakeRedis(t, ":1"), "unexpected EOF"},
		{"silent", fakeRedis(t, ""), "i/o timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tw := httptest.NewServer(&trainingWheels{redisAddr: tt.addr, timeout: 500 * time.Millisecond})
			defer tw.Close()
			start := time.Now()
			code, body := getPage(t, tw.URL+"/")
			if code != 200 || !strings.Contains(body, "Redis connection error") || !strings.Contains(body, tt.want) {
				t.Errorf("got %d\n%s\nwant 200 with Redis connection error and %q", code, body, tt.want)
			}
			if strings.Contains(body, "viewed") {
				t.Errorf("page shows a count despite the error:\n%s", body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered after %v, want about the 500ms timeout", d)
			}
		})
	}
}

// TestTrainingWheelsRuns checks the image as a task runs it: port 5000,
// the log line, redis looked up as "redis".
func TestTrainingWheelsRuns(t *testing.T) {
	r := startImage(t, "jpetazzo/trainingwheels", "python", "app.py") // args are ignored
	if r.asked != ":5000" {
		t.Errorf("trainingwheels asked to listen on %q, want :5000", r.asked)
	}
	if code, _ := getPage(t, r.url+"/nope"); code != 404 {
		t.Errorf("GET /nope: %d, want 404", code)
	}
	if got, want := r.stdout.String(), "trainingwheels: listening on :"+portOf(t, r.url)+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if tw, ok := newTrainingWheels().(*trainingWheels); !ok || tw.redisAddr != "redis:6379" || tw.timeout != time.Second {
		t.Errorf("newTrainingWheels() = %+v, want redis:6379 with a 1s timeout", tw)
	}
}
