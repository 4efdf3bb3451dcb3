//go:build linux

package lb

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
)

// keptPID is the pid of k's running process, 0 for none.
func keptPID(k *keeper) int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil {
		return 0
	}
	return k.proc.cmd.Process.Pid
}

// TestKeptRestore drives one kept iptables-restore in a namespace through
// a sequence of payloads: each Apply must return with its rules in, the
// process must stay from one payload to the next, and whatever it cannot
// follow (a failed line, a table that may commit nothing, a lost count)
// must end it, or bypass it, with the outcome a process of its own would
// give. Close must end it.
func TestKeptRestore(t *testing.T) {
	ns := newNamespaces(t, "sbox")["sbox"]
	ctx := context.Background()
	kept := IPTables{NetNS: ns}.Keep()
	k := kept.kept
	t.Cleanup(func() { _ = kept.Close() })
	add := "*filter\n:T-F - [0:0]\n-A T-F -j ACCEPT\n-A INPUT -p tcp --dport 9 -m comment --comment t -j T-F\nCOMMIT\n" +
		"*nat\n:T-N - [0:0]\n-A T-N -j RETURN\n-A OUTPUT -p tcp --dport 9 -m mark --mark 0x9 -j T-N\nCOMMIT\n"
	del := "*filter\n-D INPUT -p tcp --dport 9 -m comment --comment t -j T-F\n-F T-F\n-X T-F\nCOMMIT\n" +
		"*nat\n-D OUTPUT -p tcp --dport 9 -m mark --mark 0x9 -j T-N\n-F T-N\n-X T-N\nCOMMIT\n"
	inRule, natRule := `-A INPUT -p tcp -m tcp --dport 9 -m comment --comment t -j T-F`, `-A OUTPUT -p tcp -m tcp --dport 9 -m mark --mark 0x9 -j T-N`
	var pid int
	for _, step := range []struct {
		name, payload string
		before        func()
		err           string   // in the error; "" for none
		proc          string   // afterwards: "same" process, "new", "none"
		in, out       []string // in iptables-save right after the return
	}{
		{name: "first payload starts it", payload: add, proc: "new", in: []string{inRule, natRule}},
		{name: "two tables out, same process", payload: del, proc: "same", out: []string{"T-F", "T-N"}},
		{name: "two tables in, same process", payload: add, proc: "same", in: []string{inRule, natRule}},
		// Killed between payloads, it is not the next payload's failure.
		{name: "a process killed meanwhile is replaced", payload: del, proc: "new", out: []string{"T-F", "T-N"},
			before: func() { _ = k.proc.cmd.Process.Kill(); <-k.proc.exited }},
		{name: "two tables in again", payload: add, proc: "same", in: []string{inRule, natRule}},
		// The first table commits, the second fails: the process exits
		// with its error; the first table's change stays, as ever.
		{name: "a failed line ends it", payload: "*filter\n-D INPUT -p tcp --dport 9 -m comment --comment t -j T-F\nCOMMIT\n" +
			"*nat\n-D OUTPUT -p tcp --dport 99 -j T-N\nCOMMIT\n", err: "line 5 failed", proc: "none",
			out: []string{inRule}, in: []string{natRule}},
		{name: "the next payload starts another", payload: "*filter\n-A INPUT -p tcp --dport 9 -m comment --comment t -j T-F\nCOMMIT\n",
			proc: "new", in: []string{inRule}},
		// A table of declarations alone may commit nothing: a process of
		// its own takes the payload, and the kept one stays.
		{name: "a table that may commit nothing bypasses it", payload: "*mangle\n:T-M - [0:0]\nCOMMIT\n",
			proc: "same", in: []string{":T-M - [0:0]"}},
		// With the count lost, Apply ends the process and waits for its
		// exit, which says the payload went in.
		{name: "a lost count waits for the exit", payload: del, before: func() { _ = k.proc.watch.Close() },
			proc: "none", out: []string{"T-F", "T-N"}},
	} {
		if step.before != nil {
			step.before()
		}
		err := kept.Apply(ctx, []byte(step.payload))
		switch {
		case step.err == "" && err != nil:
			t.Fatalf("%s: %v", step.name, err)
		case step.err != "" && (err == nil || !strings.Contains(err.Error(), step.err)):
			t.Fatalf("%s: err %v, want one saying %q", step.name, err, step.err)
		}
		now := keptPID(k)
		switch {
		case step.proc == "none" && now != 0,
			step.proc == "same" && (now == 0 || now != pid),
			step.proc == "new" && (now == 0 || now == pid):
			t.Fatalf("%s: process %d after %d, want %s", step.name, now, pid, step.proc)
		}
		if now != 0 {
			pid = now
		}
		checkHolds(t, step.name+": iptables-save", saveText(t, IPTables{NetNS: ns}), step.in, step.out)
	}

	if err := kept.Apply(ctx, []byte(add)); err != nil {
		t.Fatal(err)
	}
	pid = keptPID(k)
	_ = kept.Close()
	lingering.wait()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kept process %d after Close: kill 0 = %v, want ESRCH", pid, err)
	}
	// Closed, it takes nothing: payloads get processes of their own.
	if err := kept.Apply(ctx, []byte(del)); err != nil {
		t.Fatal(err)
	}
	if keptPID(k) != 0 {
		t.Error("a closed keeper started a process")
	}
}

func TestCommits(t *testing.T) {
	for _, tc := range []struct {
		payload string
		n       int
		every   bool // every table changes something
	}{
		{"*nat\n-A X -j Y\nCOMMIT\n", 1, true},
		{"*nat\n:X - [0:0]\n-X X\nCOMMIT\n*mangle\n-D P -j MARK --set-mark 1\nCOMMIT\n", 2, true},
		{"*filter\n-I INPUT 1 -j X\nCOMMIT\n*nat\n-R X 1 -j Y\nCOMMIT\n", 2, true},
		{"*nat\n:X - [0:0]\nCOMMIT\n", 1, false},                 // declarations alone
		{"*nat\n-A X -j Y\nCOMMIT\n*mangle\nCOMMIT\n", 2, false}, // an empty table
		{"*nat\n-F X\nCOMMIT\n", 1, false},                       // a flush of an empty chain changes nothing
		{"*nat\n-Ax\nCOMMIT\n", 1, false},
		{"*nat\n-A X -j Y\nCOMMIT\n*filter\n COMMIT \n# COMMIT\n", 2, false},
		{"", 0, true},
	} {
		if n, every := commits([]byte(tc.payload)); n != tc.n || every != tc.every {
			t.Errorf("commits(%q) = %d, %v; want %d, %v", tc.payload, n, every, tc.n, tc.every)
		}
	}
}

// TestPlaneKeepsOneRestore: a data plane built on the real rules writes
// every sync to one iptables-restore, which its Close ends.
func TestPlaneKeepsOneRestore(t *testing.T) {
	ns := newNamespaces(t, "sbox")["sbox"]
	dp, err := NewDataPlane(ModeIPTables, ns, WithConntrack(NewFakeConntrack()), WithSysctls(&FakeSysctls{AnyKey: true}))
	if err != nil {
		t.Fatal(err)
	}
	k := dp.(*plane).rules.rules.(IPTables).kept
	ctx := context.Background()
	pid := 0
	for i := range 4 {
		sb := ingressSandbox()
		for j := range 1 + i%2 {
			sb.Services = append(sb.Services, benchService(j))
		}
		if err := dp.Sync(ctx, sb); err != nil {
			t.Fatal(err)
		}
		now := keptPID(k)
		if now == 0 || (pid != 0 && now != pid) {
			t.Fatalf("sync %d: iptables-restore %d, before %d: want one kept", i, now, pid)
		}
		pid = now
	}
	if err := dp.Close(); err != nil {
		t.Fatal(err)
	}
	lingering.wait()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("iptables-restore %d after Close: kill 0 = %v, want ESRCH", pid, err)
	}
}
