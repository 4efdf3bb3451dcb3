//go:build linux

package lb

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/meshd/meshd/internal/nlsub"
	"golang.org/x/sys/unix"
)

// Why an iptables-restore that deletes is not waited for to the end:
// iptables-nft's commit takes effect when the kernel acknowledges its
// batch, but a deleted rule or chain is freed later, after an RCU grace
// period, and a process closing an nftables netlink socket waits for
// that freeing (nf_tables' NETLINK_URELEASE handler flushes its destroy
// work). So an iptables-restore that removed a service spent most of its
// life exiting: 12-27 ms in BenchmarkAddService here (a 6.18 kernel,
// HZ=250), against about 2 ms for one that added it. The rules were gone
// from the packet path long before. A data plane's payloads go to a
// process it keeps (kept_linux.go), whose commits are counted the same
// way; restore is for the rest. lb/doc.go ("When a change is in") says
// what is left.
//
// nftables announces each commit to its multicast group, last in the
// commit, as a new generation naming the process that made it
// (NFT_MSG_NEWGEN, NFTA_GEN_PROC_PID). iptables-restore commits once per
// table (per COMMIT line). restore listens in the namespace while the
// child runs: once it has seen a generation from the child for every
// COMMIT of the payload, every table is in, and it returns without
// waiting for the exit. Whatever else happens (a table that committed
// nothing, a lost notification, iptables-legacy, a child in another PID
// namespace) leaves the count short, and restore waits for the exit as
// before, error and output included.

// restore runs argv (iptables-restore) in netns with payload on stdin,
// as run does, and returns early, with early true, once the child has
// committed commits tables; the child is then reaped in the background.
// out is its stdout and stderr, when it was waited for.
func (nsExec) restore(ctx context.Context, netns string, payload []byte, commits int, argv ...string) (out []byte, early bool, err error) {
	p, err := startRestore(netns, commits > 0, argv...)
	if err != nil {
		return nil, false, err
	}
	p.send(payload, true)
	if p.await(ctx, commits, 0) {
		lingering.run(p.reap)
		return nil, true, nil
	}
	if ctx.Err() != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
	lingering.run(p.reap)
	if ctx.Err() != nil {
		return p.out.Bytes(), false, ctx.Err()
	}
	return p.out.Bytes(), false, p.waitErr
}

// restoreProc is one iptables-restore child, started in a namespace
// while a socket there follows nftables' announcements, so that its
// commits can be counted before it exits. restore runs one per payload;
// a keeper (kept_linux.go) writes payload after payload to one.
type restoreProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	wrote   chan error    // the last send's end
	out     bytes.Buffer  // stdout and stderr: read once exited is closed
	watch   *os.File      // nil: nothing is counted
	gens    chan struct{} // one per generation the child committed
	lost    chan struct{} // closed when the count ends: watch closed or failed
	exited  chan struct{} // closed once the child is reaped
	waitErr error         // the exit's, once exited is closed
}

// startRestore starts argv in netns, with a watch if watched (best
// effort: without the socket nothing is counted).
func startRestore(netns string, watched bool, argv ...string) (*restoreProc, error) {
	p := &restoreProc{gens: make(chan struct{}, 64), lost: make(chan struct{}), exited: make(chan struct{})}
	// Not CommandContext: a child that committed is left to exit on its
	// own, and a kept one outlives the Apply that starts it.
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	start := func() error {
		if watched {
			p.watch, _ = nlsub.Open(unix.NETLINK_NETFILTER, 1<<(nlsub.NFTablesGroup-1))
		}
		return p.cmd.Start()
	}
	if err := inNetNS(netns, start); err != nil {
		if p.watch != nil {
			closeLater(p.watch)
		}
		_ = p.stdin.Close()
		return nil, err
	}
	ownProcs.started(p.cmd.Process.Pid)
	go func() {
		p.waitErr = p.cmd.Wait()
		ownProcs.exited(p.cmd.Process.Pid, time.Now())
		close(p.exited)
	}()
	if p.watch != nil {
		go p.count()
	} else {
		close(p.lost)
	}
	return p, nil
}

// send writes payload to the child's stdin in the background, and
// closes it after if last; p.wrote says when it is done.
func (p *restoreProc) send(payload []byte, last bool) {
	p.wrote = make(chan error, 1)
	go func() {
		_, err := p.stdin.Write(payload)
		if last {
			_ = p.stdin.Close()
		}
		p.wrote <- err
	}()
}

// await says whether the child committed n more tables; false, once it
// has exited, its count has ended, ctx is done or patience (if not 0)
// has run out first, or at once for n 0.
func (p *restoreProc) await(ctx context.Context, n int, patience time.Duration) bool {
	var late <-chan time.Time
	if patience > 0 {
		t := time.NewTimer(patience)
		defer t.Stop()
		late = t.C
	}
	for range n {
		select {
		case <-p.gens:
		case <-p.exited:
			return false
		case <-p.lost:
			return false
		case <-late:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return n > 0
}

// gone says whether the child has exited.
func (p *restoreProc) gone() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// reap waits for the child's exit and closes its watch: both wait for
// what its commits deleted to be freed, so they run in the background
// (lingering).
func (p *restoreProc) reap() {
	<-p.exited
	if p.watch != nil {
		_ = p.watch.Close()
	}
}

// closeLater closes the watch in the background: its release, like the
// child's, waits for the deleted objects' freeing. Its reader ends with
// it.
func closeLater(watch *os.File) {
	lingering.run(func() { _ = watch.Close() })
}

// count forwards the child's generations to gens until the watch is
// closed or fails (ENOBUFS: notifications were lost, and the count with
// them).
func (p *restoreProc) count() {
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

// gensBy counts the new-generation messages of pid in a datagram of
// nftables notifications.
func gensBy(b []byte, pid int) (int, error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		by, gen, err := nlsub.CommitPID(m)
		if err != nil {
			return n, err
		}
		if gen && by == pid {
			n++
		}
	}
	return n, nil
}
