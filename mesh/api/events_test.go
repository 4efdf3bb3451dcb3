package api

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 123456789, time.UTC)

func TestEventString(t *testing.T) {
	e := Event{Time: t0, Type: EventNode, Action: "down", ID: "zdmlglriwe5dyidfi6rjv7epo",
		Attributes: map[string]string{"state.old": "alive", "name": "node2", "state.new": "dead"}}
	want := "2026-12-04T12:00:00.123456789Z node down zdmlglriwe5dyidfi6rjv7epo (name=node2, state.new=dead, state.old=alive)"
	if got := e.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e.Attributes, e.Time = nil, t0.Truncate(time.Second)
	if got, want := e.String(), "2026-12-04T12:00:00.000000000Z node down zdmlglriwe5dyidfi6rjv7epo"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseEventTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: "", want: time.Time{}},
		{in: "2026-12-04T11:00:00Z", want: time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC)},
		{in: "1796382000", want: time.Unix(1796382000, 0)},
		{in: "1796382000.5", want: time.Unix(1796382000, 5e8)},
		{in: "10m", want: t0.Add(-10 * time.Minute)},
		{in: "-10m", err: "want RFC 3339"},
		{in: "yesterday", err: "want RFC 3339"},
		{in: strings.Repeat("1", 65), err: "too long"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseEventTime(tc.in, t0)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseEventFilters(t *testing.T) {
	got, err := ParseEventFilters([]string{"type=node", "type=drift"})
	if err != nil || !slices.Equal(got, []string{"node", "drift"}) {
		t.Errorf("got %v, %v; want [node drift]", got, err)
	}
	for _, bad := range [][]string{{"type=nodes"}, {"name=x"}, {"type"}, slices.Repeat([]string{"type=node"}, MaxEventFilters+1)} {
		if _, err := ParseEventFilters(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
