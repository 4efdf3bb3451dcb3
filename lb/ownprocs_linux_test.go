//go:build linux

package lb

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nlsub"
	"github.com/meshd/meshd/internal/nsfile"
	"golang.org/x/sys/unix"
)

// TestOwnProcessClaimsOurCommits: every nftables commit the planes' kept
// iptables-restore, a one-off one and nft make is announced with a process
// OwnProcess claims (so the drift watch skips it), and a commit by hand
// with one it does not.
func TestOwnProcessClaimsOurCommits(t *testing.T) {
	ns := newNamespaces(t, "own")["own"]
	var watch *os.File
	if err := nsfile.Do(ns, func() (err error) {
		watch, err = nlsub.Open(unix.NETLINK_NETFILTER, 1<<(nlsub.NFTablesGroup-1))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	ctx := context.Background()
	add := []byte("*nat\n:T-OWN - [0:0]\n-A T-OWN -j RETURN\n-A OUTPUT -p tcp --dport 9 -j T-OWN\nCOMMIT\n")
	del := []byte("*nat\n-D OUTPUT -p tcp --dport 9 -j T-OWN\n-F T-OWN\n-X T-OWN\nCOMMIT\n")
	kept := IPTables{NetNS: ns}.Keep()
	defer kept.Close()
	once := IPTables{NetNS: ns}
	for _, step := range []struct {
		r       IPTables
		payload []byte
	}{{kept, add}, {kept, del}, {once, add}, {once, del}} {
		if err := step.r.Apply(ctx, step.payload); err != nil {
			t.Fatal(err)
		}
	}
	// The flowtable's nft runs as the readers do, through nsExec.
	if _, stderr, err := (nsExec{}).run(ctx, ns, nil, "nft", "add", "table", "inet", "own"); err != nil {
		t.Fatalf("nft add table: %v: %s", err, stderr)
	}
	hand := exec.Command("nsenter", "--net="+ns, "iptables", "-t", "nat", "-N", "T-HAND")
	if out, err := hand.CombinedOutput(); err != nil {
		t.Fatalf("iptables -N by hand: %v: %s", err, out)
	}

	// Five commits of ours, then the one by hand, in that order.
	var pids []int
	buf := make([]byte, 64<<10)
	_ = watch.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(pids) < 6 {
		n, err := watch.Read(buf)
		if err != nil {
			t.Fatalf("after commits by %v: %v", pids, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if pid, gen, err := nlsub.CommitPID(m); err != nil {
				t.Fatal(err)
			} else if gen {
				pids = append(pids, pid)
			}
		}
	}
	for i, pid := range pids[:5] {
		if !OwnProcess(pid) {
			t.Errorf("commit %d, by our process %d: not claimed", i, pid)
		}
	}
	if pids[5] != hand.Process.Pid || OwnProcess(pids[5]) {
		t.Errorf("the commit by hand came from %d (iptables %d), claimed %v", pids[5], hand.Process.Pid, OwnProcess(pids[5]))
	}
	if OwnProcess(os.Getpid()) || OwnProcess(0) {
		t.Error("claims this process, or pid 0")
	}
}
