package gossip

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// TestMemberChanged: node1's callback hears each member join once and
// node3 die, with the state it had before.
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
			seen = append(seen, fmt.Sprintf("%s new=%v %v->%v", ch.Name, ch.New, ch.Old, ch.State))
		}
	}
	dbs := newCluster(t, testLogger(t), 3, record) // newNode names the node before the mods run
	if err := dbs[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"node1 new=true alive->alive",
		"node2 new=true alive->alive",
		"node3 new=true alive->alive",
		"node3 new=false alive->dead",
	}
	testutil.Eventually(t, 10*time.Second, "node3's death reported", func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(seen, want) {
			return fmt.Errorf("got %q, want %q", seen, want)
		}
		return nil
	})
}
