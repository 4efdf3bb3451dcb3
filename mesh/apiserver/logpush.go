package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
)

// The nodes' side of service logs on a manager: their pushes, checked
// against the subscription they answer (see logs.go).

// pushLogs takes a node's records for a subscription of this manager
// (cluster port, any node's certificate): JSON lines of api.LogPush,
// for the tasks the subscription gives that node only.
func (s *Server) pushLogs(r *http.Request) (any, error) {
	peer, _ := r.Context().Value(peerKey{}).(ca.Peer)
	id := r.PathValue("id")
	sub, ok := s.logs.get(id)
	if !ok {
		return nil, api.NotFound("no log subscription %s on this manager", api.Clip(id))
	}
	if peer.NodeID == "" || !sub.names(peer.NodeID) {
		return nil, api.Errorf(http.StatusForbidden, "node %s runs no task of log subscription %s", api.Clip(peer.NodeID), id)
	}
	return logPush{sub: sub, node: peer.NodeID}, nil
}

// errLogSubEnded answers a push whose subscription ended meanwhile.
var errLogSubEnded = api.Errorf(http.StatusGone, "the log subscription has ended")

// logPush reads one node's push.
type logPush struct {
	sub  *logSub
	node string
}

func (p logPush) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The push lasts as long as the subscription: the server's read and
	// write deadlines would cut it.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	p.sub.mark(p.node, false)
	// Whatever ends the push, the node has given all it will: a request
	// without follow stops waiting for it.
	defer p.sub.mark(p.node, true)
	if err := p.receive(r); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// receive forwards the records until the body ends; a record for a task
// of another node ends the push with a refusal.
func (p logPush) receive(r *http.Request) error {
	br := bufio.NewReaderSize(r.Body, 64<<10)
	for {
		line, err := api.ReadLine(br, api.MaxLogRecord)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return api.Invalid("read log records: %s", oneLine(err.Error()))
		}
		var push api.LogPush
		if err := decodeJSON(bytes.NewReader(line), &push); err != nil {
			return err
		}
		rec, err := p.record(push)
		if err != nil {
			return err
		}
		if err := p.sub.budget.wait(r.Context(), p.sub.done); err != nil {
			return errLogSubEnded
		}
		select {
		case p.sub.out <- rec:
		case <-p.sub.done:
			return errLogSubEnded
		case <-r.Context().Done():
			return errLogSubEnded
		}
	}
}

// record checks a pushed record against the subscription and gives it
// the task's context.
func (p logPush) record(push api.LogPush) (api.LogRecord, error) {
	t, ok := p.sub.task(push.Task)
	if !ok || t.NodeID != p.node {
		return api.LogRecord{}, api.Errorf(http.StatusForbidden, "task %s is not node %s's in this log subscription",
			api.Clip(push.Task), api.Clip(p.node))
	}
	rec := api.LogRecord{TaskID: t.ID, TaskName: t.Name(), Slot: t.Slot, NodeName: t.NodeName}
	if push.Err != "" {
		rec.Warning = fmt.Sprintf("%s on %s: %s", t.Name(), t.NodeName, oneLine(push.Err))
		return rec, nil
	}
	rec.Line = api.Cut(push.Line, api.MaxLogLine)
	return rec, nil
}

// lineBudget lets through at most rate lines a second, with a burst of
// a second's worth: a token bucket.
type lineBudget struct {
	rate float64

	mu     sync.Mutex // guards the fields below
	tokens float64
	last   time.Time
}

func newLineBudget(rate float64) *lineBudget {
	return &lineBudget{rate: rate, tokens: rate, last: time.Now()}
}

// wait takes one line from the budget, waiting for it if need be; it
// fails when ctx ends or stop is closed first.
func (b *lineBudget) wait(ctx context.Context, stop <-chan struct{}) error {
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errLogSubEnded
		case <-time.After(need):
		}
	}
}
