package gossip

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// linesHandler keeps the messages of the records it is given and says
// when one contains a string.
type linesHandler struct {
	mu    sync.Mutex
	lines []string
	watch string
	seen  chan struct{} // closed at the first line containing watch
}

func (h *linesHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *linesHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *linesHandler) WithGroup(string) slog.Handler            { return h }

func (h *linesHandler) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, line)
	if strings.Contains(line, h.watch) && h.seen != nil {
		close(h.seen)
		h.seen = nil
	}
	return nil
}

func (h *linesHandler) matching(s string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, l := range h.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestBogusPacketsDoNotFloodTheLog sends 1000 datagrams no key decrypts
// to a node's gossip port from one address: memberlist logs an error for
// each, which must come out as one line. A datagram from a second address
// then shows that the node has read every earlier one (it reads its UDP
// socket in order) and that another source is still logged.
func TestBogusPacketsDoNotFloodTheLog(t *testing.T) {
	seen := make(chan struct{})
	h := &linesHandler{watch: "from=127.0.0.2:", seen: seen}
	db := newNode(t, slog.New(h), "target", func(c *Config) { c.SecretKey = make([]byte, 32) })
	ip, port := db.LocalAddr()
	to := &net.UDPAddr{IP: net.ParseIP(ip), Port: port}
	flood, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	for i := range 1000 {
		if _, err := flood.WriteTo([]byte("bogus datagram "+strconv.Itoa(i)), to); err != nil {
			t.Fatal(err)
		}
	}
	other, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("a second loopback address (127.0.0.2): %v", err)
	}
	defer other.Close()
	// Resent until logged: a datagram on loopback may still be dropped
	// when the node's socket buffer is full.
	deadline := time.After(10 * time.Second)
	for logged := false; !logged; {
		if _, err := other.WriteTo([]byte("bogus"), to); err != nil {
			t.Fatal(err)
		}
		select {
		case <-seen:
			logged = true
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("the datagram from 127.0.0.2 was never logged")
		}
	}
	if lines := h.matching("from=127.0.0.1:"); len(lines) != 1 {
		t.Errorf("1000 bogus datagrams from one address made %d log lines, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

func TestLogKey(t *testing.T) {
	tests := []struct {
		msg, want string
	}{
		{"Decrypt packet failed: No installed keys could decrypt the message from=10.0.0.9:40000", "ERROR|10.0.0.9|Decrypt packet failed"},
		{"Decrypt packet failed: No installed keys could decrypt the message from=10.0.0.9:40001", "ERROR|10.0.0.9|Decrypt packet failed"},
		{"Failed to receive: EOF from=[fd00::1]:7946", "ERROR|fd00::1|Failed to receive"},
		{"Too many pending push/pull requests", "ERROR||Too many pending push/pull requests"},
	}
	for _, tt := range tests {
		if got := logKey(slog.LevelError, tt.msg); got != tt.want {
			t.Errorf("logKey(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
