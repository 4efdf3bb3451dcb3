package gossip

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/ratelog"
	"github.com/meshd/meshd/internal/testutil"
)

// TestMemberChanged: node1's callback hears each member join once and
// node3 die, with the state it had before. node1 suspects node3 first
// when its own probe of node3 failed before the others' verdict reached
// it, so the suspect step is optional here (TestSuspectThenDead has it).
// The joins may come in any order: memberlist answers a joiner's
// push-pull before merging it, so node2's Join can return before node1
// has heard of node2, and node3's state can reach node1 first.
func TestMemberChanged(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	record := func(c *Config) {
		if c.Name != "node1" {
			return
		}
		c.MemberChanged = func(ch MemberChange) {
			mu.Lock()
			defer mu.Unlock()
			line := fmt.Sprintf("%s new=%v %v->%v", ch.Name, ch.New, ch.Old, ch.State)
			switch line {
			case "node3 new=false alive->suspect":
				return
			case "node3 new=false suspect->dead":
				line = "node3 new=false alive->dead"
			}
			seen = append(seen, line)
		}
	}
	dbs := newCluster(t, testLogger(t), 3, record) // newNode names the node before the mods run
	if err := dbs[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	joins := []string{
		"node1 new=true alive->alive",
		"node2 new=true alive->alive",
		"node3 new=true alive->alive",
	}
	death := "node3 new=false alive->dead"
	testutil.Eventually(t, 10*time.Second, "node3's death reported", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != len(joins)+1 || seen[len(joins)] != death {
			return fmt.Errorf("got %q, want the three joins, then %q", seen, death)
		}
		if got := slices.Sorted(slices.Values(seen[:len(joins)])); !slices.Equal(got, joins) {
			return fmt.Errorf("joins %q, want %q in any order", seen[:len(joins)], joins)
		}
		return nil
	})
}

// TestSuspectThenDead: with two members, only node1 probes node2, so
// node2's death shows on node1 as suspect first, then dead.
func TestSuspectThenDead(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	record := func(c *Config) {
		if c.Name != "node1" {
			return
		}
		c.MemberChanged = func(ch MemberChange) {
			mu.Lock()
			defer mu.Unlock()
			if !ch.New {
				seen = append(seen, fmt.Sprintf("%s %v->%v", ch.Name, ch.Old, ch.State))
			}
		}
	}
	dbs := newCluster(t, testLogger(t), 2, record)
	if err := dbs[1].Shutdown(); err != nil {
		t.Fatal(err)
	}
	want := []string{"node2 alive->suspect", "node2 suspect->dead"}
	testutil.Eventually(t, 10*time.Second, "node2 suspected, then dead", func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(seen, want) {
			return fmt.Errorf("got %q, want %q", seen, want)
		}
		return nil
	})
	if got := dbs[0].NumAlive(); got != 1 {
		t.Errorf("NumAlive = %d, want 1", got)
	}
}

// TestSuspectAnswered: a suspect member that answers a probe is alive
// again; an answer from an alive member changes nothing, and a member
// only becomes suspect from alive.
func TestSuspectAnswered(t *testing.T) {
	var seen []string
	dbs := newCluster(t, testLogger(t), 2, stable, func(c *Config) {
		if c.Name == "node1" {
			c.MemberChanged = func(ch MemberChange) {
				if !ch.New {
					seen = append(seen, fmt.Sprintf("%s %v->%v", ch.Name, ch.Old, ch.State))
				}
			}
		}
	})
	db := dbs[0]
	db.memberAnswered("node2")
	db.memberSuspect("node2")
	db.memberSuspect("node2")
	if got := stateOf(db, "node2"); got != StateSuspect {
		t.Errorf("state = %v, want suspect", got)
	}
	if got := db.NumAlive(); got != 2 {
		t.Errorf("NumAlive with a suspect = %d, want 2", got)
	}
	db.memberAnswered("node2")
	db.memberSuspect("nobody")
	want := []string{"node2 alive->suspect", "node2 suspect->alive"}
	if !slices.Equal(seen, want) {
		t.Errorf("got %q, want %q", seen, want)
	}
}

// TestLogWriterSuspect: memberlist's failed-probe line names the member.
func TestLogWriterSuspect(t *testing.T) {
	var got []string
	w := logWriter{l: testLogger(t), limit: ratelog.New(time.Minute), suspect: func(n string) { got = append(got, n) }}
	for _, line := range []string{
		"[INFO] memberlist: Suspect node-4.b has failed, no acks received",
		"[WARN] memberlist: Refuting a suspect message (from: node2)",
		"[INFO] memberlist: Marking node3 as failed, suspect timeout reached (0 peer confirmations)",
	} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"node-4.b"}; !slices.Equal(got, want) {
		t.Errorf("suspects %q, want %q", got, want)
	}
}
