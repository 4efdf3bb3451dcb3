package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpdumpProc is a tcpdump running in the background (startTcpdump).
type tcpdumpProc struct {
	cmd    *exec.Cmd
	stderr *listenWriter
	done   chan struct{} // closed once the process ended; err is then set
	err    error
}

// listenWriter keeps what tcpdump writes on stderr, safe to read while
// it writes, and closes listening at its "listening on" line.
type listenWriter struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan struct{}
	once      sync.Once
}

func (w *listenWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "listening on") {
		w.once.Do(func() { close(w.listening) })
	}
	return len(p), nil
}

func (w *listenWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startTcpdump runs argv, a tcpdump command line (maybe behind nsenter,
// ip netns exec or meshctl lab exec, which keep its stderr), with its
// stdout to stdout (nil: discarded), and returns once tcpdump says
// "listening on": its socket is bound, so every packet after that is
// captured. A fixed sleep before the traffic would be a guess, and a
// slow machine (the VM suite) loses the race. The process is killed at
// the end of the test if it still runs.
func startTcpdump(t testing.TB, stdout io.Writer, argv ...string) (*tcpdumpProc, error) {
	t.Helper()
	p := &tcpdumpProc{
		cmd:    exec.Command(argv[0], argv[1:]...),
		stderr: &listenWriter{listening: make(chan struct{})},
		done:   make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	select {
	case <-p.stderr.listening:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s ended before listening: %v\n%s", strings.Join(argv, " "), p.err, p.stderr)
	case <-time.After(15 * time.Second * timeScale()):
		return nil, fmt.Errorf("%s not listening after 15s:\n%s", strings.Join(argv, " "), p.stderr)
	}
}

// wait waits for tcpdump to end by itself (-c, or timeout(1) around it).
func (p *tcpdumpProc) wait() error {
	<-p.done
	return p.err
}

// stop interrupts tcpdump as Ctrl-C does, so that it writes out what it
// holds, and waits for it to end.
func (p *tcpdumpProc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	<-p.done
}
