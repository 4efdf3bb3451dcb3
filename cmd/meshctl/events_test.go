package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// fakeEvents answers the events of a node that saw node3 die, a task start
// and its backend added, and the host's rules repaired.
type fakeEvents struct{ got api.EventsOptions }

var eventsFixture = []api.Event{
	{Time: testNow.Add(-2 * time.Minute), Type: api.EventTask, Action: "running", ID: "p7b0d3zr5n6h2qk4mbz5d8v1x",
		Attributes: map[string]string{"name": "www.1", "service": "www", "state": "running"}},
	{Time: testNow.Add(-2*time.Minute + 1500*time.Millisecond), Type: api.EventBackend, Action: "added", ID: "p7b0d3zr5n6h2qk4mbz5d8v1x",
		Attributes: map[string]string{"network": "ingress", "network.id": "x6hso2k2vbsl0rz2x0bibl0v4", "service": "www", "task": "www.1"}},
	{Time: testNow.Add(-time.Minute), Type: api.EventNode, Action: "down", ID: "zdmlglriwe5dyidfi6rjv7epo",
		Attributes: map[string]string{"addr": "192.168.33.12", "name": "node3", "state.new": "dead", "state.old": "alive"}},
	{Time: testNow.Add(-123456789 * time.Nanosecond), Type: api.EventDrift, Action: "repaired", ID: "w1iwqdd1bn9n8m8lq7s3g2fvo",
		Attributes: map[string]string{"kind": "rules", "netns": "host"}},
}

func (f *fakeEvents) Events(_ context.Context, o api.EventsOptions, fn func(api.Event) error) error {
	f.got = o
	types, err := api.ParseEventFilters(o.Filters)
	if err != nil {
		return err
	}
	for _, e := range eventsFixture {
		if len(types) > 0 && !slices.Contains(types, e.Type) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func TestEventsGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts eventsOptions
	}{
		{"events", eventsOptions{until: "0s"}},
		{"events-filter", eventsOptions{until: "0s", filter: []string{"type=node", "type=drift"}}},
		{"events-format", eventsOptions{until: "0s", format: `{{.Type}} {{.Action}} {{index .Attributes "name"}}`}},
		{"events-json", eventsOptions{until: "0s", format: "{{json .}}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := runEvents(context.Background(), &fakeEvents{}, &out, tc.opts); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			golden(t, tc.name, out.String())
		})
	}
}

func TestEventsOptions(t *testing.T) {
	f := &fakeEvents{}
	opts := eventsOptions{since: "10m", until: "2026-12-04T12:00:00Z", filter: []string{"type=task"}}
	if err := runEvents(context.Background(), f, &bytes.Buffer{}, opts); err != nil {
		t.Fatal(err)
	}
	want := api.EventsOptions{Since: "10m", Until: "2026-12-04T12:00:00Z", Filters: []string{"type=task"}}
	if f.got.Since != want.Since || f.got.Until != want.Until || !slices.Equal(f.got.Filters, want.Filters) {
		t.Errorf("sent %+v, want %+v", f.got, want)
	}
	for _, tc := range []struct {
		opts eventsOptions
		err  string
	}{
		{eventsOptions{since: "yesterday"}, "--since: time \"yesterday\""},
		{eventsOptions{until: "-1m"}, "--until: time \"-1m\""},
		{eventsOptions{filter: []string{"type=container"}}, "type is one of backend, drift, node, task"},
		{eventsOptions{filter: []string{"name=x"}}, "want type=VALUE"},
	} {
		err := checkEventsOptions(tc.opts, testNow)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: got %v, want an error with %q", tc.opts, err, tc.err)
		}
	}
	if err := runEvents(context.Background(), f, &bytes.Buffer{}, eventsOptions{format: "{{.Bogus"}); err == nil {
		t.Error("a broken template: no error")
	}
}
