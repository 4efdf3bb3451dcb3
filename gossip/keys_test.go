package gossip

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// TestKeyRotation rotates the gossip key in the managers' three steps
// and checks that entries still spread after each, and that a node with
// only the retired key is shut out at the end.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	log := testLogger(t)
	dbs := newCluster(t, log, 2, stable, func(c *Config) { c.SecretKey = oldKey })
	for step, keys := range [][][]byte{{oldKey, newKey}, {newKey, oldKey}, {newKey}} {
		for _, db := range dbs {
			if err := db.SetKeys(keys); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		val := fmt.Sprint("v", step)
		if err := dbs[0].Put("networks", "", "ovnet", []byte(val)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, fmt.Sprint("entry spread after step ", step), func() error {
			return sameEverywhere(dbs, "networks", "", "ovnet", val)
		})
	}
	stale := newNode(t, log, "stale", stable, func(c *Config) { c.SecretKey = oldKey })
	if n, err := stale.Join([]string{addrOf(dbs[0])}); err == nil {
		t.Errorf("a node with the retired key joined %d members", n)
	}
	if err := dbs[0].SetKeys(nil); err == nil {
		t.Error("SetKeys(nil) accepted")
	}
}
