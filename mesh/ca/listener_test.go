package ca

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

func TestListenerBoundsHandshakes(t *testing.T) {
	root, _ := NewRoot("c1", time.Now())
	cert, key := issueFor(t, root, "m1", api.RoleManager)
	id, err := NewIdentity(cert, key, [][]byte{root.CertDER})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listener(raw, id.ServerConfig(false), 2, 500*time.Millisecond)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	// Two silent clients hold both slots; a third is closed at once.
	var silent []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	third, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := third.Read(make([]byte, 1)); err == nil || time.Since(start) > 400*time.Millisecond {
		t.Errorf("a connection over the bound: read %v after %s, want closed at once", err, time.Since(start))
	}
	// The silent ones are closed at the handshake timeout, and a real
	// client gets through afterwards.
	for _, c := range silent {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a silent connection got data")
		}
	}
	conf := id.ClientConfig()
	tc, err := tls.Dial("tcp", raw.Addr().String(), conf)
	if err != nil {
		t.Fatalf("a client after the silent ones: %v", err)
	}
	defer tc.Close()
	io.WriteString(tc, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo: %q %v", buf, err)
	}
}
