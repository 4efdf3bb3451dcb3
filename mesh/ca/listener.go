package ca

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// Listener serves TLS on ln with at most maxHandshakes handshakes under
// way at once, each bounded by timeout: connections that have not
// authenticated yet cannot pile up. A connection over the bound is
// closed at once; one whose handshake fails or times out is closed.
// Accept returns only connections whose handshake succeeded.
func Listener(ln net.Listener, conf *tls.Config, maxHandshakes int, timeout time.Duration) net.Listener {
	l := &handshakeListener{Listener: ln, conf: conf, timeout: timeout, slots: make(chan struct{}, maxHandshakes),
		ready: make(chan net.Conn), done: make(chan struct{})}
	go l.loop()
	return l
}

type handshakeListener struct {
	net.Listener
	conf    *tls.Config
	timeout time.Duration
	slots   chan struct{}
	ready   chan net.Conn
	done    chan struct{}
	once    sync.Once
	err     error // why the accept loop ended; set before done is closed
}

func (l *handshakeListener) loop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.err = err
			l.once.Do(func() { close(l.done) })
			return
		}
		select {
		case l.slots <- struct{}{}:
		default:
			c.Close() // too many handshakes under way
			continue
		}
		go func() {
			defer func() { <-l.slots }()
			tc := tls.Server(c, l.conf)
			ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
			err := tc.HandshakeContext(ctx)
			cancel()
			if err != nil {
				c.Close()
				return
			}
			select {
			case l.ready <- tc:
			case <-l.done:
				tc.Close()
			}
		}()
	}
}

func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *handshakeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
