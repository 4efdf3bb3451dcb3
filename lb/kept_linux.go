//go:build linux

package lb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/meshd/meshd/internal/nlsub"
	"golang.org/x/sys/unix"
)

// Why a data plane keeps one iptables-restore running: a fresh process
// loads each extension a payload names (MARK, mark, DNAT...) when it
// first reads a rule with it, and checks the kernel's revision of it
// over a netlink socket of its own, which it then closes. A removal of
// a service under 65 services deletes mangle's marks, commits, and only
// then reads nat's "-m mark" jump: that socket's close waits for the
// marks' freeing, a grace period (restore_linux.go says why), 13-15 ms
// of a removal's 15 ms here. A process kept from one change to the next
// has every extension loaded after its first payloads and never closes
// a socket between tables, nor at the end; it also saves the 1 ms of
// starting one. Each costs 3 MB resident, 0.7 MB of it proportional
// (smaps_rollup's Pss, four in a lab) and 0.35 MB dirty of its own.
//
// The kept process reads payload after payload on its stdin, which
// stays open; Apply counts its commits on nftables' multicast group as
// restore does, and returns once every table is in. A payload whose
// count could fall short by design (a table that may commit nothing, a
// set to destroy after the rules, iptables-legacy) goes to a process of
// its own instead. When the count is lost (ENOBUFS) or does not come
// within keptPatience, Apply closes the kept process's stdin and waits
// for its exit, error and output included, as for a process of its own;
// the next Apply starts a new one. A failed line ends the process too.

// keptPatience bounds the wait for a count that should come within a
// few milliseconds; past it the exit is waited for, which always comes.
const keptPatience = 5 * time.Second

// keeper holds the iptables-restore process kept for one namespace.
type keeper struct {
	mu     sync.Mutex
	proc   *keptProc // nil: none running
	closed bool
}

// keptProc is one running iptables-restore and what Apply watches of it.
type keptProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  syncBuffer
	watch   *os.File
	gens    chan struct{} // one per generation the process committed
	lost    chan struct{} // closed when the watch fails: the count is lost
	exited  chan struct{} // closed once the process is reaped
	waitErr error         // the exit's, once exited is closed
	lines   int           // written to stdin before the current payload
}

// keepers are the keepers not closed yet, for WaitBackground.
var keepers = struct {
	sync.Mutex
	m map[*keeper]bool
}{m: map[*keeper]bool{}}

func newKeeper() *keeper {
	k := &keeper{}
	keepers.Lock()
	keepers.m[k] = true
	keepers.Unlock()
	return k
}

// closeKeepers closes every keeper, for WaitBackground.
func closeKeepers() {
	keepers.Lock()
	ks := make([]*keeper, 0, len(keepers.m))
	for k := range keepers.m {
		ks = append(ks, k)
	}
	keepers.Unlock()
	for _, k := range ks {
		k.close()
	}
}

// close ends the kept process (its stdin closed, it exits; it is
// reaped in the background) and keeps Apply from starting another.
func (k *keeper) close() {
	keepers.Lock()
	delete(keepers.m, k)
	keepers.Unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	if k.proc != nil {
		k.proc.end()
		k.proc = nil
	}
}

var (
	// errNotKept says the payload is for a process of its own.
	errNotKept = errors.New("not for the kept process")
	// errLegacy says iptables-restore is iptables-legacy, which does
	// not commit through nftables.
	errLegacy = errors.New("iptables-restore is not iptables-nft")
)

// apply writes payload to the kept process in netns, starting one if
// none runs, and returns once it has committed every table. It returns
// errNotKept, having done nothing, when the payload or the namespace's
// iptables-restore cannot be followed by its commits.
func (k *keeper) apply(ctx context.Context, netns string, payload []byte, argv ...string) (stderr []byte, err error) {
	n := commits(payload)
	if n == 0 || !everyTableChanges(payload) {
		return nil, errNotKept
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, errNotKept
	}
	if k.proc != nil && k.proc.gone() {
		// Ended between payloads (killed by hand, say): not this
		// payload's failure.
		k.proc.end()
		k.proc = nil
	}
	if k.proc == nil {
		p, err := startKept(ctx, netns, argv...)
		if errors.Is(err, errLegacy) {
			k.closed = true // its commits cannot be followed
		}
		if err != nil {
			return nil, errNotKept
		}
		k.proc = p
	}
	if !bytes.HasSuffix(payload, []byte("\n")) {
		// The next payload must not run on from this one's last line.
		payload = append(append([]byte(nil), payload...), '\n')
	}
	p := k.proc
	p.stderr.Reset()
	base := p.lines
	p.lines += bytes.Count(payload, []byte("\n"))
	wrote := make(chan error, 1)
	go func() {
		_, err := p.stdin.Write(payload)
		wrote <- err
	}()
	patience := time.NewTimer(keptPatience)
	defer patience.Stop()
	for seen := 0; seen < n; seen++ {
		var ended bool // stdin closed by Apply: a clean exit is a success
		select {
		case <-p.gens:
			continue
		case <-p.exited:
			// A process whose stdin is open exits only on a failed line.
		case <-p.lost:
			ended = true
		case <-patience.C:
			ended = true
		case <-ctx.Done():
			_ = p.cmd.Process.Kill()
		}
		var werr error
		if ended {
			// The payload must be in the pipe before its end is.
			werr = <-wrote
		}
		k.proc = nil
		p.end()
		<-p.exited
		err := p.waitErr
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case werr != nil && err == nil:
			err = fmt.Errorf("write payload: %w", werr)
		case err == nil && !ended:
			err = fmt.Errorf("exited after %d of %d tables", seen, n)
		}
		return payloadLines(p.stderr.Bytes(), base), err
	}
	<-wrote // it has read the last COMMIT: the write is done
	return nil, nil
}

// startKept starts iptables-restore in netns with its stdin kept open,
// and its watch. Only iptables-nft's commits can be counted.
func startKept(ctx context.Context, netns string, argv ...string) (*keptProc, error) {
	version, _, err := nsExec{}.run(ctx, netns, nil, argv[0], "--version")
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(version, []byte("nf_tables")) {
		return nil, errLegacy
	}
	p := &keptProc{gens: make(chan struct{}, 64), lost: make(chan struct{}), exited: make(chan struct{})}
	// Not CommandContext: the process outlives the Apply that starts it.
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	start := func() error {
		w, err := nlsub.Open(unix.NETLINK_NETFILTER, 1<<(nlsub.NFTablesGroup-1))
		if err != nil {
			return err
		}
		p.watch = w
		return p.cmd.Start()
	}
	if err := inNetNS(netns, start); err != nil {
		if p.watch != nil {
			closeLater(p.watch)
		}
		p.stdin.Close()
		return nil, err
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	go p.count()
	return p, nil
}

// count forwards the process's generations to gens until the watch is
// closed or fails.
func (p *keptProc) count() {
	defer close(p.lost)
	buf := make([]byte, 64<<10)
	pid := p.cmd.Process.Pid
	for {
		m, err := p.watch.Read(buf)
		if err != nil {
			return
		}
		c, err := gensBy(buf[:m], pid)
		if err != nil {
			return
		}
		for range c {
			select {
			case p.gens <- struct{}{}:
			case <-p.exited:
				return
			}
		}
	}
}

// gone says whether the process has exited.
func (p *keptProc) gone() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// end closes the process's stdin, which ends it, and reaps it and
// closes its watch in the background (both closes wait for what its
// commits deleted to be freed).
func (p *keptProc) end() {
	_ = p.stdin.Close()
	lingering.run(func() {
		<-p.exited
		_ = p.watch.Close()
	})
}

// lineNumber is how iptables-restore points at a line of its input.
var lineNumber = regexp.MustCompile(`line [0-9]+`)

// payloadLines rewrites the line numbers in the kept process's output,
// counted from its first payload, as numbers in the current one, which
// started after line base.
func payloadLines(out []byte, base int) []byte {
	return lineNumber.ReplaceAllFunc(out, func(m []byte) []byte {
		n, err := strconv.Atoi(string(m[len("line "):]))
		if err != nil || n <= base {
			return m
		}
		return []byte("line " + strconv.Itoa(n-base))
	})
}

// everyTableChanges says whether each table of an iptables-restore
// payload holds a command that changes something when it succeeds (an
// append, insert, delete, replace or chain deletion), so that each
// COMMIT is a new generation. A table of chain declarations alone may
// commit nothing: the chains may be there, empty.
func everyTableChanges(payload []byte) bool {
	changes := true
	for _, line := range bytes.Split(payload, []byte("\n")) {
		line = bytes.TrimSpace(line)
		switch {
		case bytes.HasPrefix(line, []byte("*")):
			changes = false
		case len(line) > 3 && line[0] == '-' && bytes.IndexByte([]byte("AIDRX"), line[1]) >= 0 && line[2] == ' ':
			changes = true
		case string(line) == "COMMIT" && !changes:
			return false
		}
	}
	return true
}

// syncBuffer is a bytes.Buffer the process's stderr may write to while
// Apply reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	s.b.Reset()
	s.mu.Unlock()
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}
