//go:build linux

package lb

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Why a data plane keeps one iptables-restore running: a fresh process
// loads each extension a payload names (MARK, mark, DNAT...) when it
// first reads a rule with it, and checks the kernel's revision of it
// over a netlink socket of its own, which it then closes. A removal of
// a service under 65 services deletes mangle's marks, commits, and only
// then reads nat's "-m mark" jump: that socket's close waits for the
// marks' freeing, a grace period (restore_linux.go says why): 15.4 ms
// under strace here, where BenchmarkAddService's removal took 14.9 ms.
// A process kept from one change to the next has every extension
// loaded after its first payloads and never closes a socket between
// tables, nor at the end; it also saves the 1 ms of starting one. Each costs 3 MB resident, 0.7 MB of it proportional
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
	proc   *restoreProc // nil: none running
	lines  int          // written to proc's stdin before the current payload
	closed bool
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
	k.drop()
}

// drop ends the kept process, if any: its stdin closed, it exits, and
// it is reaped in the background.
func (k *keeper) drop() {
	if k.proc != nil {
		_ = k.proc.stdin.Close()
		lingering.run(k.proc.reap)
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
// iptables-restore cannot be followed by its commits. out is the
// process's output when it ended.
func (k *keeper) apply(ctx context.Context, netns string, payload []byte, argv ...string) (out []byte, err error) {
	n, everyTableChanges := commits(payload)
	if n == 0 || !everyTableChanges {
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
		k.drop()
	}
	if k.proc == nil {
		p, err := startKept(ctx, netns, argv...)
		if errors.Is(err, errLegacy) {
			k.closed = true // its commits cannot be followed
		}
		if err != nil {
			return nil, errNotKept
		}
		k.proc, k.lines = p, 0
	}
	if !bytes.HasSuffix(payload, []byte("\n")) {
		// The next payload must not run on from this one's last line.
		payload = append(append([]byte(nil), payload...), '\n')
	}
	p, base := k.proc, k.lines
	k.lines += bytes.Count(payload, []byte("\n"))
	p.send(payload, false)
	if p.await(ctx, n, keptPatience) {
		<-p.wrote // it has read the last COMMIT: the write is done
		return nil, nil
	}
	// A process whose stdin is open exits by itself only on a failed
	// line. Otherwise the count was lost or late: once the payload is
	// in the pipe, its end is, and the exit says how the payload went.
	failed := p.gone()
	switch {
	case ctx.Err() != nil:
		_ = p.cmd.Process.Kill()
	case !failed:
		<-p.wrote
	}
	k.drop()
	<-p.exited
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case p.waitErr != nil:
		err = p.waitErr
	case failed:
		err = errors.New("exited before every table was in")
	}
	return payloadLines(p.out.Bytes(), base), err
}

// startKept starts iptables-restore in netns with its stdin kept open,
// and its watch. Only iptables-nft's commits can be counted.
func startKept(ctx context.Context, netns string, argv ...string) (*restoreProc, error) {
	version, _, err := nsExec{}.run(ctx, netns, nil, argv[0], "--version")
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(version, []byte("nf_tables")) {
		return nil, errLegacy
	}
	p, err := startRestore(netns, true, argv...)
	if err != nil {
		return nil, err
	}
	if p.watch == nil {
		_ = p.stdin.Close()
		lingering.run(p.reap)
		return nil, errors.New("no watch on nftables")
	}
	return p, nil
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
