package lab

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeSwarmLab lays out a lab of n nodes in a temporary directory, without
// namespaces or daemons: FormSwarm needs only the sockets, which the test
// serves with fakeSwarmd.
func fakeSwarmLab(t *testing.T, n int) *Lab {
	t.Helper()
	l, err := newLab(Options{Nodes: n, MeshdPath: "/bin/meshd"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range l.Nodes() {
		if err := os.MkdirAll(nd.RunDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// serve starts node's fake daemon after delay.
func serve(t *testing.T, l *Lab, name string, delay time.Duration) {
	t.Helper()
	n, _ := l.Node(name)
	start := func() {
		srv, err := serveFakeSwarmd(n.Name, n.RunDir)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { srv.Close() })
	}
	if delay == 0 {
		start()
		return
	}
	done := make(chan struct{})
	time.AfterFunc(delay, func() { start(); close(done) })
	t.Cleanup(func() { <-done })
}

func TestFormSwarm(t *testing.T) {
	l := fakeSwarmLab(t, 4)
	serve(t, l, "node1", 0)
	serve(t, l, "node2", 0)
	// node3's daemon has not made its socket yet when its turn comes.
	serve(t, l, "node3", 300*time.Millisecond)
	serve(t, l, "node4", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var progress strings.Builder
	if err := FormSwarm(ctx, l, 2, &progress); err != nil {
		t.Fatalf("FormSwarm: %v", err)
	}
	got := map[string][]string{}
	for _, n := range l.Nodes() {
		got[n.Name] = calls(t, n)
	}
	want := map[string][]string{
		"node1": {"init 192.168.33.10", "join-token manager", "join-token worker"},
		"node2": {"join 192.168.33.10:2377 manager"},
		"node3": {"join 192.168.33.10:2377 worker"},
		"node4": {"join 192.168.33.10:2377 worker"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", diff)
	}
	wantProgress := "node1: swarm init --advertise-addr 192.168.33.10: swarm initialized\n" +
		"node2: swarm join --token <manager token> 192.168.33.10:2377: joined as a manager\n" +
		"node3: swarm join --token <worker token> 192.168.33.10:2377: joined as a worker\n" +
		"node4: swarm join --token <worker token> 192.168.33.10:2377: joined as a worker\n"
	if diff := cmp.Diff(wantProgress, progress.String()); diff != "" {
		t.Errorf("progress mismatch (-want +got):\n%s", diff)
	}
}

// TestFormSwarmOneNode checks that a lone manager asks for no token.
func TestFormSwarmOneNode(t *testing.T) {
	l := fakeSwarmLab(t, 1)
	serve(t, l, "node1", 0)
	if err := FormSwarm(context.Background(), l, 1, nil); err != nil {
		t.Fatalf("FormSwarm: %v", err)
	}
	n, _ := l.Node("node1")
	if diff := cmp.Diff([]string{"init 192.168.33.10"}, calls(t, n)); diff != "" {
		t.Errorf("requests mismatch (-want +got):\n%s", diff)
	}
}

func TestFormSwarmErrors(t *testing.T) {
	t.Run("socket never there", func(t *testing.T) {
		l := fakeSwarmLab(t, 2)
		serve(t, l, "node1", 0)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := FormSwarm(ctx, l, 1, nil)
		var ne *NodeError
		if !errors.As(err, &ne) || ne.Node != "node2" || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "cannot reach meshd") {
			t.Errorf("got error %v, want node2's deadline, with the last dial error", err)
		}
	})
	t.Run("refusal is not retried", func(t *testing.T) {
		l := fakeSwarmLab(t, 2)
		serve(t, l, "node1", 0)
		serve(t, l, "node2", 0)
		if err := FormSwarm(context.Background(), l, 1, nil); err != nil {
			t.Fatalf("first FormSwarm: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := FormSwarm(ctx, l, 1, nil)
		want := `node1: swarm init: This node is already part of a swarm. Use "meshctl swarm leave" to leave this swarm and join another one.`
		if err == nil || err.Error() != want {
			t.Errorf("second FormSwarm: got error %v, want %q", err, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("second FormSwarm took %v, want an answer at once", d)
		}
	})
	t.Run("managers out of range", func(t *testing.T) {
		l := fakeSwarmLab(t, 2)
		for _, m := range []int{0, 3} {
			if err := FormSwarm(context.Background(), l, m, nil); err == nil || !strings.Contains(err.Error(), "want 1 to 2") {
				t.Errorf("FormSwarm with %d managers: got error %v, want one naming the range", m, err)
			}
		}
	})
}
