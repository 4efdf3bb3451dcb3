package mesh

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/events"
	"github.com/meshd/meshd/mesh/records"
)

func TestMemberEvent(t *testing.T) {
	meta, err := records.EncodeMeta(records.NodeMeta{Name: "node2", Role: "worker", Addr: netip.MustParseAddr("192.168.33.11")})
	if err != nil {
		t.Fatal(err)
	}
	m := gossip.Member{Name: "zdmlglriwe5dyidfi6rjv7epo", Addr: "192.168.33.11", Meta: meta}
	d := &Daemon{events: events.New(0)}
	for _, ch := range []gossip.MemberChange{
		{Member: withState(m, gossip.StateAlive), New: true},
		{Member: withState(m, gossip.StateSuspect), Old: gossip.StateAlive},
		{Member: withState(m, gossip.StateAlive), Old: gossip.StateSuspect},
		{Member: withState(m, gossip.StateSuspect), Old: gossip.StateAlive},
		{Member: withState(m, gossip.StateDead), Old: gossip.StateSuspect},
		{Member: withState(m, gossip.StateAlive), Old: gossip.StateDead},
		{Member: withState(m, gossip.StateLeft), Old: gossip.StateAlive},
	} {
		d.memberEvent(ch)
	}
	var got []string
	for _, e := range d.events.Events(events.Query{}) {
		e.Time = time.Time{} // stamped by the log: not what is tested
		got = append(got, e.String())
	}
	want := []string{
		"0001-01-01T00:00:00.000000000Z node join zdmlglriwe5dyidfi6rjv7epo (addr=192.168.33.11, name=node2, state.new=alive)",
		"0001-01-01T00:00:00.000000000Z node suspect zdmlglriwe5dyidfi6rjv7epo (addr=192.168.33.11, name=node2, state.new=suspect, state.old=alive)",
		"0001-01-01T00:00:00.000000000Z node alive zdmlglriwe5dyidfi6rjv7epo (addr=192.168.33.11, name=node2, state.new=alive, state.old=suspect)",
		"0001-01-01T00:00:00.000000000Z node suspect zdmlglriwe5dyidfi6rjv7epo (addr=192.168.33.11, name=node2, state.new=suspect, state.old=alive)",
		"0001-01-01T00:00:00.000000000Z node down zdmlglriwe5dyidfi6rjv7epo (addr=192.168.33.11, name=node2, state.new=dead, state.old=suspect)",
		"0001-01-01T00:00:00.000000000Z node join zdmlglriwe5dyidfi6rjv7epo (addr=192.168.33.11, name=node2, state.new=alive, state.old=dead)",
		"0001-01-01T00:00:00.000000000Z node leave zdmlglriwe5dyidfi6rjv7epo (addr=192.168.33.11, name=node2, state.new=left, state.old=alive)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func withState(m gossip.Member, s gossip.MemberState) gossip.Member {
	m.State = s
	return m
}
