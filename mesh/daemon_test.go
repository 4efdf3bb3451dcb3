package mesh

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestPrepareRunDir(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string) // nil: the dir does not exist
		gid      int
		wantMode os.FileMode
		wantErr  string
	}{
		{name: "new", gid: -1, wantMode: 0o700},
		{name: "new, with a socket group", gid: os.Getgid(), wantMode: 0o710},
		{name: "meshd's from before, too open", setup: func(t *testing.T, dir string) {
			mkdir(t, dir, 0o755)
			writeFile(t, filepath.Join(dir, lockName))
		}, gid: -1, wantMode: 0o700},
		{name: "meshd's from before, now with a socket group", setup: func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			writeFile(t, filepath.Join(dir, lockName))
		}, gid: os.Getgid(), wantMode: 0o710},
		{name: "someone else's is left alone", setup: func(t *testing.T, dir string) { mkdir(t, dir, 0o755) }, gid: -1, wantMode: 0o755},
		{name: "writable by every user", setup: func(t *testing.T, dir string) { mkdir(t, dir, 0o777) }, gid: -1,
			wantErr: "is writable by every user"},
		{name: "sticky and writable by every user, as /tmp", setup: func(t *testing.T, dir string) {
			mkdir(t, dir, 0o777|os.ModeSticky)
			writeFile(t, filepath.Join(dir, lockName))
		}, gid: -1, wantErr: "is writable by every user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			err := prepareRunDir(dir, tt.gid)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.wantMode {
				t.Errorf("mode %v, want %v", got, tt.wantMode)
			}
			if gid := int(fi.Sys().(*syscall.Stat_t).Gid); tt.gid >= 0 && gid != tt.gid {
				t.Errorf("group %d, want %d", gid, tt.gid)
			}
		})
	}
}

func TestSocketModes(t *testing.T) {
	tests := []struct {
		name     string
		gid      int
		wantMode os.FileMode
	}{
		{"root only", -1, 0o600},
		{"shared with a group", os.Getgid(), 0o660},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), socketName)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			log := slog.New(slog.DiscardHandler)
			if err := serveLocal(ctx, &wg, log, sock, http.NotFoundHandler(), tt.gid); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(sock)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.wantMode {
				t.Errorf("socket mode %v, want %v", got, tt.wantMode)
			}
			if gid := int(fi.Sys().(*syscall.Stat_t).Gid); tt.gid >= 0 && gid != tt.gid {
				t.Errorf("socket group %d, want %d", gid, tt.gid)
			}
		})
	}
}

func TestNewHTTPServerLimits(t *testing.T) {
	s := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"ReadHeaderTimeout", s.ReadHeaderTimeout, 5 * time.Second},
		{"ReadTimeout", s.ReadTimeout, 10 * time.Second},
		{"WriteTimeout", s.WriteTimeout, 30 * time.Second},
		{"IdleTimeout", s.IdleTimeout, 60 * time.Second},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if s.MaxHeaderBytes != 64<<10 || s.ErrorLog == nil {
		t.Errorf("MaxHeaderBytes %d, ErrorLog %v; want 64 KiB and a logger", s.MaxHeaderBytes, s.ErrorLog)
	}
}

// TestHTTPErrorLogIsRateLimited writes the server's error line for a
// hundred failed TLS handshakes from one host, on as many ports: one line
// comes out.
func TestHTTPErrorLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	s := newHTTPServer(http.NotFoundHandler(), slog.New(slog.NewTextHandler(&buf, nil)))
	for i := range 100 {
		s.ErrorLog.Printf("http: TLS handshake error from 10.0.0.9:%d: EOF", 40000+i)
	}
	s.ErrorLog.Printf("http: TLS handshake error from 10.0.0.10:40000: EOF")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "10.0.0.9:40000") || !strings.Contains(lines[1], "10.0.0.10:40000") {
		t.Errorf("log:\n%s\nwant one line per host", buf.String())
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
