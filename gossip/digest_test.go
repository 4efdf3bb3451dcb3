package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
)

// digestOf returns the digests of a store holding records, in that order.
func digestOf(records ...Entry) []TableDigest {
	s := storeWith(records...)
	return digests(s.entries(func(e Entry) bool { return !e.Deleted }))
}

func entry(table, scope, key, owner string, ltime uint64, value string) Entry {
	return Entry{Table: table, Scope: scope, Key: key, Owner: owner, LTime: ltime, Value: []byte(value), Deleted: value == ""}
}

func TestDigests(t *testing.T) {
	base := []Entry{entry("a", "", "k1", "n1", 1, "x"), entry("a", "net", "k2", "n2", 2, "y"), entry("b", "", "k1", "n1", 3, "z")}
	want := digestOf(base...)
	if len(want) != 2 || want[0].Table != "a" || want[0].Entries != 2 || want[1].Table != "b" || want[1].Entries != 1 {
		t.Fatalf("digests of %v: got %+v, want a with 2 entries, b with 1", base, want)
	}
	tests := []struct {
		name    string
		entries []Entry
		same    []bool // per table of base: the digest is base's
	}{
		{"another arrival order", []Entry{base[2], base[1], base[0]}, []bool{true, true}},
		{"a tombstone is left out", append([]Entry{entry("a", "", "k0", "n1", 4, "")}, base...), []bool{true, true}},
		{"another value", []Entry{base[0], entry("a", "net", "k2", "n2", 2, "Y"), base[2]}, []bool{false, true}},
		{"another version of the same value", []Entry{base[0], base[1], entry("b", "", "k1", "n1", 4, "z")}, []bool{true, false}},
		{"another owner", []Entry{entry("a", "", "k1", "n3", 1, "x"), base[1], base[2]}, []bool{false, true}},
		{"another scope", []Entry{base[0], entry("a", "net2", "k2", "n2", 2, "y"), base[2]}, []bool{false, true}},
		{"fields do not run together", []Entry{entry("a", "", "k1n", "1", 1, "x"), base[1], base[2]}, []bool{false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := digestOf(tc.entries...)
			if len(got) != len(want) {
				t.Fatalf("got %+v, want %d tables", got, len(want))
			}
			for i, same := range tc.same {
				if (got[i].Digest == want[i].Digest) != same {
					t.Errorf("table %s: digest %s vs %s: same is %v, want %v", got[i].Table, got[i].Digest, want[i].Digest, !same, same)
				}
			}
		})
	}
	if got := digestOf(); got != nil {
		t.Errorf("an empty store: got %+v, want none", got)
	}
}

// TestDigestsConverge: two replicas that gossip agree on their digests.
func TestDigestsConverge(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 2)
	for i, db := range dbs {
		if err := db.Put("tasks", "", db.LocalName(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "digests agree", func() error {
		d1, d2 := dbs[0].Digests(), dbs[1].Digests()
		if diff := cmp.Diff(d1, d2); diff != "" {
			return fmt.Errorf("node1 vs node2 (-+):\n%s", diff)
		}
		if len(d1) != 1 || d1[0].Entries != 2 {
			return fmt.Errorf("got %+v, want one table of 2 entries", d1)
		}
		return nil
	})
}
