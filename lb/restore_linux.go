//go:build linux

package lb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"syscall"

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

// nftables' generation message and the attribute naming its process
// (linux/netfilter/nf_tables.h), behind nfnetlink's 4-byte header.
const (
	nftMsgNewGen   = 15
	nftaGenProcPID = 2
	nfgenmsgLen    = 4
)

// restore runs argv (iptables-restore) in netns with payload on stdin,
// as run does, and returns early, with early true, once the child has
// committed commits tables; the child is then reaped in the background.
func (nsExec) restore(ctx context.Context, netns string, payload []byte, commits int, argv ...string) (stdout, stderr []byte, early bool, err error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	var watch *os.File
	start := func() error {
		if commits > 0 {
			// Best effort: without the socket the exit is waited for.
			watch, _ = nlsub.Open(unix.NETLINK_NETFILTER, 1<<(nlsub.NFTablesGroup-1))
		}
		return cmd.Start()
	}
	if err = inNetNS(netns, start); err != nil {
		if watch != nil {
			closeLater(watch)
		}
		return nil, nil, false, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if watch == nil {
		err = <-exited
		return out.Bytes(), errOut.Bytes(), false, err
	}
	allIn := make(chan struct{})
	go func() {
		if countGens(watch, cmd.Process.Pid, commits) {
			close(allIn)
		}
	}()
	select {
	case err = <-exited:
		closeLater(watch)
		return out.Bytes(), errOut.Bytes(), false, err
	case <-allIn:
		closeLater(watch)
		// The exit status can only say what the generations said: every
		// table is in. The process still owns out and errOut.
		lingering.run(func() { <-exited })
		return nil, nil, true, nil
	}
}

// closeLater closes the watch in the background: its release, like the
// child's, waits for the deleted objects' freeing. Its reader ends with
// it.
func closeLater(watch *os.File) {
	lingering.run(func() { _ = watch.Close() })
}

// countGens reads f until it has seen n new generations committed by
// pid, and then reports true; false when f is closed or fails first
// (ENOBUFS: notifications were lost, and the count with them).
func countGens(f *os.File, pid, n int) bool {
	buf := make([]byte, 64<<10)
	seen := 0
	for {
		m, err := f.Read(buf)
		if err != nil {
			return false
		}
		c, err := gensBy(buf[:m], pid)
		if err != nil {
			return false
		}
		if seen += c; seen >= n {
			return true
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
		if m.Header.Type != nlsub.NFTablesSubsys<<8|nftMsgNewGen || len(m.Data) < nfgenmsgLen {
			continue
		}
		attrs := m.Data[nfgenmsgLen:]
		for len(attrs) >= unix.SizeofNlAttr {
			l := int(binary.NativeEndian.Uint16(attrs))
			typ := binary.NativeEndian.Uint16(attrs[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
			if l < unix.SizeofNlAttr || l > len(attrs) {
				return n, errors.New("nftables generation: bad attribute")
			}
			if typ == nftaGenProcPID && l == unix.SizeofNlAttr+4 && int(binary.BigEndian.Uint32(attrs[unix.SizeofNlAttr:])) == pid {
				n++
			}
			attrs = attrs[min(len(attrs), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
		}
	}
	return n, nil
}
