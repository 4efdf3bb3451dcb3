package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// fakeServiceLogs answers service logs with a stream of recs after a
// header of replicas, as a manager's would be, or with err.
type fakeServiceLogs struct {
	replicas int
	recs     []api.LogRecord
	err      error
	got      []string // ref, tail, follow of each call
}

func (f *fakeServiceLogs) ServiceLogs(_ context.Context, ref string, o api.ServiceLogsOptions) (*api.LogStream, error) {
	f.got = append(f.got, ref, o.Tail, map[bool]string{true: "follow", false: "no follow"}[o.Follow])
	if f.err != nil {
		return nil, f.err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	_ = enc.Encode(api.LogsHeader{Replicas: f.replicas})
	for _, r := range f.recs {
		_ = enc.Encode(r)
	}
	return api.NewLogStream(io.NopCloser(&b))
}

// webLogs are web's three tasks, one per node, each with its first line.
func webLogs() []api.LogRecord {
	return []api.LogRecord{
		{TaskID: "udlzvsraha1xe2n1k9u6hq4bv", TaskName: "web.1", Slot: 1, NodeName: "node1", Line: "listening on :80"},
		{TaskID: "k2q8tyz0m3c5wq2v7r1n9p0aa", TaskName: "web.2", Slot: 2, NodeName: "node2", Line: "listening on :80"},
		{TaskID: "7bf2yu0qv9x1l3k5j7h9g2d4s", TaskName: "web.3", Slot: 3, NodeName: "node3", Line: "listening on :80"},
		{TaskID: "udlzvsraha1xe2n1k9u6hq4bv", TaskName: "web.1", Slot: 1, NodeName: "node1", Line: "GET / 200"},
	}
}

func TestServiceLogsGolden(t *testing.T) {
	ten := append(webLogs(), api.LogRecord{TaskID: "q0w9e8r7t6y5u4i3o2p1a0s9d", TaskName: "web.10", Slot: 10, NodeName: "node1", Line: "listening on :80"})
	for _, tt := range []struct {
		name string
		fake *fakeServiceLogs
		opts serviceLogsOptions
	}{
		{"service-logs", &fakeServiceLogs{replicas: 3, recs: webLogs()}, serviceLogsOptions{target: "web", tail: "all"}},
		{"service-logs-no-task-ids", &fakeServiceLogs{replicas: 3, recs: webLogs()}, serviceLogsOptions{target: "web", tail: "all", noTaskIDs: true}},
		{"service-logs-no-trunc", &fakeServiceLogs{replicas: 3, recs: webLogs()}, serviceLogsOptions{target: "web", tail: "all", noTrunc: true}},
		{"service-logs-task", &fakeServiceLogs{recs: webLogs()[1:2]}, serviceLogsOptions{target: "web.2", tail: "1"}},
		// Docker pads after the node name so that web.1 and web.10 line up.
		{"service-logs-padding", &fakeServiceLogs{replicas: 10, recs: ten}, serviceLogsOptions{target: "web", tail: "all"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := runServiceLogs(context.Background(), tt.fake, &out, &errOut, tt.opts); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if errOut.Len() != 0 {
				t.Errorf("got stderr %q, want none", errOut.String())
			}
			golden(t, tt.name, out.String())
		})
	}
}

func TestServiceLogsCommand(t *testing.T) {
	ctx := context.Background()
	t.Run("warning on stderr", func(t *testing.T) {
		f := &fakeServiceLogs{replicas: 3, recs: append(webLogs()[:1], api.LogRecord{Warning: "node node3 did not answer within 10s: its tasks' output is missing"})}
		var out, errOut bytes.Buffer
		if err := runServiceLogs(ctx, f, &out, &errOut, serviceLogsOptions{target: "web", tail: "-3", follow: true}); err != nil {
			t.Fatal(err)
		}
		if want := "warning: node node3 did not answer within 10s: its tasks' output is missing\n"; errOut.String() != want {
			t.Errorf("got stderr %q, want %q", errOut.String(), want)
		}
		if strings.Count(out.String(), "\n") != 1 {
			t.Errorf("got %q, want one line", out.String())
		}
		// A negative tail is all, as docker has it.
		if strings.Join(f.got, " ") != "web all follow" {
			t.Errorf("asked %q, want web all follow", f.got)
		}
	})
	for _, tt := range []struct {
		name string
		fake *fakeServiceLogs
		opts serviceLogsOptions
		want string
	}{
		{"worker", &fakeServiceLogs{err: api.ErrNotManager}, serviceLogsOptions{target: "web"},
			"This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."},
		{"no such", &fakeServiceLogs{err: api.NotFound("no such task or service: nosuch")}, serviceLogsOptions{target: "nosuch"},
			"no such task or service: nosuch"},
		{"bad tail", &fakeServiceLogs{}, serviceLogsOptions{target: "web", tail: "x"}, `invalid value for --tail: "x"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runServiceLogs(ctx, tt.fake, &out, &out, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q, want nothing", out.String())
			}
		})
	}
}
