package gossip

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzMessage feeds arbitrary bytes to the decoder and whatever decodes into
// a store, as a peer (or anyone who can reach an unencrypted cluster) can.
// Nothing may panic, a decoded message must survive re-encoding, and the
// store must stay within its invariants.
func FuzzMessage(f *testing.F) {
	seeds := []message{
		{Type: msgUpdate, From: "a", Entries: []Entry{{Table: "t", Key: "k", Value: []byte("v"), Owner: "a", LTime: 3}}},
		{Type: msgState, From: "b", Entries: []Entry{
			{Table: "t", Scope: "net", Key: "k", Owner: "me", LTime: 9},
			{Table: "t", Key: "k", Owner: "b", LTime: 4, Deleted: true},
		}},
		{Type: msgLeaving, From: "c"},
	}
	for _, m := range seeds {
		b, err := encodeMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x01{\"from\":\"x\",\"entries\":[{}]}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		again, err := encodeMessage(m)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		m2, err := decodeMessage(again)
		if err != nil {
			t.Fatalf("decode re-encoded %q: %v", again, err)
		}
		if diff := cmp.Diff(m, m2); diff != "" {
			t.Fatalf("re-encoding changed the message (-first +second):\n%s", diff)
		}
		s := storeWith(Entry{Table: "t", Key: "k", Value: []byte("mine"), Owner: "me", LTime: 5})
		for _, e := range m.Entries {
			o, _ := s.merge(e, e.Owner != "dead", t0)
			for _, g := range o.gossip {
				if g.Owner != "me" || g.LTime > s.clock {
					t.Fatalf("gossip %v from store of me at clock %d", g, s.clock)
				}
			}
		}
		for k, r := range s.records {
			if k != keyOf(r.Entry) || r.LTime > s.clock || r.Owner == "dead" || (r.Deleted && r.Value != nil) {
				t.Fatalf("bad record %v under %v at clock %d", r.Entry, k, s.clock)
			}
		}
	})
}
