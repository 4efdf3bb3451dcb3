package portmux

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

func TestSplitsByFirstByte(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(ln, Config{Magic: 0xF2, SniffTimeout: 200 * time.Millisecond, MaxPending: 4})
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	echo := func(l net.Listener, prefix string) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, prefix+line)
			}()
		}
	}
	go echo(m.Default(), "default:")
	go echo(m.Magic(), "magic:")
	for _, tt := range []struct{ send, want string }{
		{"GET / HTTP/1.1\n", "default:GET / HTTP/1.1\n"},
		{"\xf2raft\n", "magic:raft\n"},
		{"x\n", "default:x\n"},
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, tt.send)
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != tt.want {
			t.Errorf("sent %q: got %q, want %q", tt.send, got, tt.want)
		}
	}
	// A client that sends nothing is dropped after the sniff timeout.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a silent client got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("a silent client was not dropped within the sniff timeout")
	}
	c.Close()
	m.Default().Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if _, err := m.Magic().Accept(); err == nil {
		t.Error("Accept after Close succeeded")
	}
}
