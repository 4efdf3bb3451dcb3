package images

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// stopDeadline is how long a stopped image may take to return. It is well
// under shutdownTimeout, so passing proves Run ended because its context
// did, not because a timeout forced it.
const stopDeadline = 2 * time.Second

// running is an image started by startImage.
type running struct {
	url    string           // http://127.0.0.1:PORT, "" for an idle image
	asked  string           // the address the image asked to listen on, e.g. ":80"
	stdout *testutil.Buffer // the task's stdout and stderr
	done   chan struct{}    // closed when Run has returned
	err    error            // Run's result, once done is closed
	cancel context.CancelFunc
}

// stop cancels the image's context and returns Run's result, failing the
// test if Run takes longer than stopDeadline.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(stopDeadline):
		t.Fatalf("Run did not return within %v of its context ending", stopDeadline)
		return nil
	}
}

// startImage looks ref up and runs it with args, its servers listening on
// 127.0.0.1:0 whatever they ask for, so no root is needed. It returns once
// a server listens (or at once for an idle image) and stops the image when
// the test ends.
func startImage(t *testing.T, ref string, args ...string) *running {
	t.Helper()
	img, err := Lookup(ref)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", ref, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &testutil.Buffer{}, done: make(chan struct{}), cancel: cancel}
	listening := make(chan string, 1)
	opts := runOptions{listen: func(ctx context.Context, addr string) (net.Listener, error) {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err == nil {
			r.asked = addr
			listening <- "http://" + ln.Addr().String()
		}
		return ln, err
	}}
	go func() {
		defer close(r.done)
		r.err = run(ctx, img, args, r.stdout, r.stdout, opts)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(stopDeadline):
			t.Errorf("Run(%s) still running %v after the test", ref, stopDeadline)
		}
	})
	if len(img.Ports) == 0 {
		return r
	}
	select {
	case r.url = <-listening:
		return r
	case <-r.done:
		t.Fatalf("Run(%q, %q) returned before listening: %v", ref, args, r.err)
	case <-time.After(5 * time.Second):
		t.Fatalf("Run(%q, %q) did not listen within 5s", ref, args)
	}
	return nil
}

func TestIdleRunsUntilCancelled(t *testing.T) {
	for _, ref := range []string{"alpine", "alpine:3.19", "busybox", "busybox:1.36", "centos:7", "ubuntu", "debian"} {
		t.Run(ref, func(t *testing.T) {
			r := startImage(t, ref, "sh", "-c", "exit 1") // args are ignored
			select {
			case <-r.done:
				t.Fatalf("Run(%s) returned %v before its context ended", ref, r.err)
			case <-time.After(50 * time.Millisecond):
			}
			if err := r.stop(t); err != nil {
				t.Fatalf("Run(%s) after cancel: got %v, want nil", ref, err)
			}
			if got := r.stdout.String(); got != "" {
				t.Errorf("Run(%s) wrote %q, want nothing", ref, got)
			}
		})
	}
}

// TestServerStopsPromptly stops each server with an idle keep-alive
// connection and a request in flight that would wait an hour, and checks
// that Run returns nil in time and leaves no goroutine behind.
func TestServerStopsPromptly(t *testing.T) {
	for _, ref := range []string{"whoami", "nginx", "elasticsearch"} {
		t.Run(ref, func(t *testing.T) {
			before := runtime.NumGoroutine()
			r := startImage(t, ref)
			client := &http.Client{Transport: &http.Transport{}}
			resp, err := client.Get(r.url + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close() // leaves an idle keep-alive connection

			inflight := make(chan error, 1)
			go func() {
				resp, err := client.Get(r.url + "/?wait=1h")
				if err == nil {
					resp.Body.Close()
				}
				inflight <- err
			}()
			time.Sleep(100 * time.Millisecond) // let the request reach the handler

			if err := r.stop(t); err != nil {
				t.Fatalf("Run(%s) after cancel: got %v, want nil", ref, err)
			}
			select {
			case err := <-inflight:
				if err != nil { // the sleep was too short: it never reached the handler
					t.Logf("request in flight failed (%v); the shutdown was not tested with it", err)
				}
			case <-time.After(stopDeadline):
				t.Fatalf("request in flight still pending after Run returned")
			}
			client.CloseIdleConnections()
			if _, err := client.Get(r.url + "/"); err == nil {
				t.Errorf("GET after stop succeeded, want connection refused")
			}
			client.CloseIdleConnections()
			waitGoroutines(t, before)
		})
	}
}

// waitGoroutines fails unless the goroutine count drops back to at most
// want within stopDeadline.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(stopDeadline)
	for {
		got := runtime.NumGoroutine()
		if got <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("got %d goroutines after stop, want <= %d:\n%s", got, want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunErrors(t *testing.T) {
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)

	whoami, _ := Lookup("containous/whoami")
	tests := []struct {
		name    string
		img     Image
		args    []string
		wantErr string
	}{
		{name: "zero image", img: Image{}, wantErr: `unknown image ""`},
		{name: "made-up image", img: Image{Name: "postgres", Ref: "postgres"}, wantErr: `unknown image "postgres"`},
		{name: "port not a number", img: whoami, args: []string{"--port", "http"}, wantErr: `invalid --port "http"`},
		{name: "port too big", img: whoami, args: []string{"--port=65536"}, wantErr: `invalid --port "65536"`},
		{name: "negative port", img: whoami, args: []string{"-port", "-1"}, wantErr: `invalid --port "-1"`},
		{name: "tls unsupported", img: whoami, args: []string{"--cert", "x.pem"}, wantErr: "flag provided but not defined: -cert"},
		{name: "port in use", img: whoami, args: []string{"--port", busyPort}, wantErr: "whoami: listen on :" + busyPort + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), stopDeadline)
			defer cancel()
			err := Run(ctx, tt.img, tt.args, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run(%q, %q) = %v, want an error containing %q", tt.img.Name, tt.args, err, tt.wantErr)
			}
			if ctx.Err() != nil {
				t.Errorf("Run returned only after its context ended; want at once")
			}
		})
	}
}

func TestRunListenHookError(t *testing.T) {
	img, _ := Lookup("nginx:1.14-alpine")
	boom := errors.New("permission denied")
	opts := runOptions{listen: func(context.Context, string) (net.Listener, error) { return nil, boom }}
	err := run(context.Background(), img, nil, nil, nil, opts)
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "nginx: listen on :80: ") {
		t.Fatalf("got %v, want nginx: listen on :80: wrapping %v", err, boom)
	}
}

func TestRunAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, ref := range Names() {
		img, _ := Lookup(ref)
		var out bytes.Buffer
		if err := Run(ctx, img, nil, &out, &out); err != nil || out.Len() != 0 {
			t.Errorf("Run(%s) with a done context = %v, wrote %q; want nil, nothing", ref, err, out.String())
		}
	}
}

func TestWhoamiHelp(t *testing.T) {
	img, _ := Lookup("whoami")
	var out bytes.Buffer
	if err := Run(context.Background(), img, []string{"--help"}, &out, nil); err != nil {
		t.Fatalf("Run(whoami --help) = %v, want nil", err)
	}
	for _, want := range []string{"Usage of whoami:", "-port", "-name"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage %q lacks %q", out.String(), want)
		}
	}
}
