package apiserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/events"
)

// eventsClient serves a server with log l on a unix socket, as meshd
// does, and returns a client of it.
func eventsClient(t *testing.T, l *events.Log) *api.Client {
	t.Helper()
	return serveLocal(t, Config{Node: fakeNode{}, Swarm: fakeSwarm{}, Events: l}, time.Minute)
}

// serveLocal serves a server of cfg's local API on a unix socket of the
// test's, with writeTimeout, and returns a client of it.
func serveLocal(t *testing.T, cfg Config, writeTimeout time.Duration) *api.Client {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "meshd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.LocalHandler(), WriteTimeout: writeTimeout}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return api.NewClient(sock)
}

func TestEventsQuery(t *testing.T) {
	l := events.New(0)
	now := time.Now()
	for i, typ := range []string{"node", "task", "drift", "node"} {
		l.Add(events.Event{Time: now.Add(time.Duration(i-10) * time.Minute), Type: typ, Action: "x", ID: typ + string(rune('0'+i))})
	}
	c := eventsClient(t, l)
	tests := []struct {
		name string
		o    api.EventsOptions
		want []string
		err  string
	}{
		{name: "all until now", o: api.EventsOptions{Until: "0s"}, want: []string{"node0", "task1", "drift2", "node3"}},
		{name: "since a duration", o: api.EventsOptions{Since: "8m30s", Until: "0s"}, want: []string{"drift2", "node3"}},
		{name: "until unix seconds", o: api.EventsOptions{Until: strconv.FormatInt(now.Add(-9*time.Minute-time.Second).Unix(), 10)}, want: []string{"node0"}},
		{name: "filter", o: api.EventsOptions{Until: "0s", Filters: []string{"type=node"}}, want: []string{"node0", "node3"}},
		{name: "bad filter", o: api.EventsOptions{Until: "0s", Filters: []string{"type=nodes"}}, err: "type is one of"},
		{name: "bad since", o: api.EventsOptions{Since: "soon"}, err: "want RFC 3339"},
		{name: "until before since", o: api.EventsOptions{Since: "1m", Until: "2m"}, err: "is before since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := c.Events(context.Background(), tt.o, func(e api.Event) error { got = append(got, e.ID); return nil })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestEventsFollow: without until the answer goes on with new events
// until the client ends it.
func TestEventsFollow(t *testing.T) {
	l := events.New(0)
	l.Add(events.Event{Type: "node", Action: "join", ID: "old"})
	c := eventsClient(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errStop := errors.New("stop")
	var got []string
	err := c.Events(ctx, api.EventsOptions{Since: "1h"}, func(e api.Event) error {
		got = append(got, e.ID)
		if e.ID == "old" {
			l.Add(events.Event{Type: "task", Action: "running", ID: "new"})
			return nil
		}
		return errStop
	})
	if !errors.Is(err, errStop) || !slices.Equal(got, []string{"old", "new"}) {
		t.Errorf("got %v, %v; want [old new] and the callback's error", got, err)
	}
}

// TestEventsOnlyNew: with neither since nor until, as docker events, only
// what comes after the request.
func TestEventsOnlyNew(t *testing.T) {
	l := events.New(0)
	l.Add(events.Event{Type: "node", Action: "join", ID: "old"})
	c := eventsClient(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The client cannot tell when the server has subscribed: add new
	// events until one arrives.
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				l.Add(events.Event{Type: "task", Action: "running", ID: "new"})
			}
		}
	}()
	errStop := errors.New("stop")
	var first string
	err := c.Events(ctx, api.EventsOptions{}, func(e api.Event) error { first = e.ID; return errStop })
	if !errors.Is(err, errStop) || first != "new" {
		t.Errorf("first event %q (%v), want new", first, err)
	}
}
