//go:build linux

package lb

import (
	"context"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestRestoreReturnsAtCommit runs iptables-restore in a namespace through
// restore: it must return as soon as every table of the payload is
// committed (early), with the rules already in or out, and fall back to
// the child's exit, error and output included, whenever the count of
// commits cannot be trusted.
func TestRestoreReturnsAtCommit(t *testing.T) {
	ns := newNamespaces(t, "sbox")["sbox"]
	ctx := context.Background()
	argv := []string{"iptables-restore", "--noflush", "-w"}
	add := "*filter\n:T-F - [0:0]\n-A T-F -j ACCEPT\n-A INPUT -p tcp --dport 9 -j T-F\nCOMMIT\n" +
		"*nat\n:T-N - [0:0]\n-A T-N -j RETURN\n-A OUTPUT -p tcp --dport 9 -j T-N\nCOMMIT\n"
	del := "*filter\n-D INPUT -p tcp --dport 9 -j T-F\n-F T-F\n-X T-F\nCOMMIT\n" +
		"*nat\n-D OUTPUT -p tcp --dport 9 -j T-N\n-F T-N\n-X T-N\nCOMMIT\n"
	for _, tc := range []struct {
		name, payload string
		early         string   // "yes", "no", or "" for either
		err           string   // in the error's output; "" for none
		in, out       []string // in iptables-save right after the return
	}{
		// The child exits right after committing what it adds: either way.
		{name: "add two tables", payload: add, in: []string{"-A T-F -j ACCEPT", "-A OUTPUT -p tcp -m tcp --dport 9 -j T-N"}},
		// What it deletes is freed a grace period later, which its exit
		// waits for: restore must not.
		{name: "delete two tables", payload: del, early: "yes", out: []string{"T-F", "T-N"}},
		// A table that changes nothing commits nothing: the count falls
		// short, and the exit is waited for.
		{name: "an empty table", payload: "*mangle\nCOMMIT\n" + add, early: "no", in: []string{"-A T-F -j ACCEPT"}},
		// The first table commits, the second fails: one generation of
		// two, and the child's error.
		{name: "the second table fails", payload: "*filter\n-D INPUT -p tcp --dport 9 -j T-F\nCOMMIT\n" +
			"*nat\n-D OUTPUT -p tcp --dport 99 -j T-N\nCOMMIT\n", early: "no", err: "line 5 failed",
			out: []string{"-A INPUT -p tcp -m tcp --dport 9 -j T-F"}, in: []string{"-A OUTPUT -p tcp -m tcp --dport 9 -j T-N"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, _ := commits([]byte(tc.payload))
			out, early, err := nsExec{}.restore(ctx, ns, []byte(tc.payload), n, argv...)
			if tc.early != "" && early != (tc.early == "yes") {
				t.Errorf("early = %v, want %s", early, tc.early)
			}
			if tc.err == "" && err != nil {
				t.Fatalf("restore: %v: %s", err, out)
			}
			if tc.err != "" && (err == nil || !strings.Contains(string(out), tc.err)) {
				t.Fatalf("restore: err %v, output %q; want a failure saying %q", err, out, tc.err)
			}
			checkHolds(t, "right after restore, iptables-save", saveText(t, IPTables{NetNS: ns}), tc.in, tc.out)
		})
	}
}

func TestGensBy(t *testing.T) {
	two := append(testutil.NFTCommit(42, 1), testutil.NFTCommit(7, 2)...)
	two = append(two, testutil.NFTCommit(42, 3)...)
	if n, err := gensBy(two, 42); n != 2 || err != nil {
		t.Errorf("gensBy(42) = %d, %v; want 2", n, err)
	}
	if n, err := gensBy(two, 9); n != 0 || err != nil {
		t.Errorf("gensBy(9) = %d, %v; want 0", n, err)
	}
	bad := testutil.NFTCommit(42, 1)
	binary.NativeEndian.PutUint16(bad[unix.SizeofNlMsghdr+4:], 200) // an attribute past the message
	if _, err := gensBy(bad, 42); err == nil {
		t.Error("gensBy took an attribute longer than its message")
	}
	if n, _ := gensBy(testutil.NFTCommit(42, 1)[:20], 42); n != 0 {
		t.Error("gensBy counted a truncated message")
	}
}

func FuzzGensBy(f *testing.F) {
	f.Add(testutil.NFTCommit(42, 1))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = gensBy(b, 42) })
}

// TestBackground: wait returns once every run has returned, also when
// new work starts while it waits.
func TestBackground(t *testing.T) {
	b := newBackground()
	b.wait() // nothing running: returns at once
	release := make(chan struct{})
	var finished atomic.Int32
	for range 3 {
		b.run(func() { <-release; finished.Add(1) })
	}
	waited := make(chan int32)
	go func() { b.wait(); waited <- finished.Load() }()
	b.run(func() { <-release; finished.Add(1) }) // while wait waits
	close(release)
	if n := <-waited; n != 4 {
		t.Errorf("wait returned with %d of 4 finished", n)
	}
}
