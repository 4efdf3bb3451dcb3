package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

// service logs: a manager publishes a log subscription naming this node's
// tasks (mesh/records); the node reads their output files and pushes them
// to the manager's cluster API with one long POST per subscription, as
// Docker's workers push logs over their session. Workers listen on no
// port, so the node opens the connection. The push ends when every task
// has given its tail (without follow), or when the subscription goes
// (its manager withdrew it, died, or let it expire).

// logSubCheck is how often subscriptions are looked at without a change
// in their table: for their expiry.
const logSubCheck = 5 * time.Second

// PushLogsFunc sends a node's records for log subscription id to the
// manager at addr, reading body (JSON lines of api.LogPush) until it ends
// or ctx does.
type PushLogsFunc func(ctx context.Context, addr netip.AddrPort, id string, body io.Reader) error

// logPusher answers the log subscriptions that name this node's tasks.
// Only its run goroutine touches its maps.
type logPusher struct {
	db      records.DB
	nodeID  string
	logPath func(taskID string) string
	ended   func(taskID string) bool // the task will write no more here
	push    PushLogsFunc
	log     *slog.Logger
	now     func() time.Time

	running  map[string]*subPushes // by subscription ID
	answered map[string]bool       // subscriptions without follow whose pushes ended, while their entry lasts
	finished chan string           // subscription IDs of which a push ended
	wg       sync.WaitGroup
}

// subPushes are the pushes of one subscription: one at first, then one
// more each time a followed service gives this node a new task.
type subPushes struct {
	ctx    context.Context
	cancel context.CancelFunc // ends them all
	pushed map[string]bool    // the tasks pushed, by ID
	active int
}

func newLogPusher(db records.DB, nodeID string, logPath func(string) string, ended func(string) bool,
	push PushLogsFunc, log *slog.Logger) *logPusher {
	return &logPusher{db: db, nodeID: nodeID, logPath: logPath, ended: ended, push: push, log: log, now: time.Now,
		running: map[string]*subPushes{}, answered: map[string]bool{}, finished: make(chan string)}
}

// run answers subscriptions until ctx ends, then waits for its pushes.
func (p *logPusher) run(ctx context.Context) {
	defer p.wg.Wait()
	changes := p.db.Watch(ctx, records.TableLogSubs)
	t := time.NewTicker(logSubCheck)
	defer t.Stop()
	follow := map[string]bool{} // by subscription ID, as last seen
	for {
		for _, sub := range p.sync(ctx) {
			follow[sub.ID] = sub.Follow
		}
		select {
		case <-ctx.Done():
			for _, sp := range p.running {
				sp.cancel()
			}
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil // ctx ended: the case above comes next
			}
		case <-t.C:
		case id := <-p.finished:
			sp, ok := p.running[id]
			if !ok {
				continue
			}
			// Without follow a subscription is answered once; a followed
			// one may give this node new tasks until it goes.
			if sp.active--; sp.active == 0 && !follow[id] {
				sp.cancel()
				delete(p.running, id)
				p.answered[id] = true
			}
		}
		for id := range follow {
			if _, ok := p.running[id]; !ok {
				delete(follow, id)
			}
		}
	}
}

// sync starts a push for the tasks of this node that each live
// subscription names and no push reads yet, and stops the pushes of
// subscriptions that went. It returns the live subscriptions.
func (p *logPusher) sync(ctx context.Context) []records.LogSub {
	var live []records.LogSub
	for _, sub := range records.LogSubs(p.db) {
		if len(sub.Tasks[p.nodeID]) == 0 || !p.now().Before(sub.Expires) {
			continue
		}
		live = append(live, sub)
		if p.answered[sub.ID] {
			continue
		}
		sp := p.running[sub.ID]
		if sp == nil {
			sctx, cancel := context.WithCancel(ctx)
			sp = &subPushes{ctx: sctx, cancel: cancel, pushed: map[string]bool{}}
			p.running[sub.ID] = sp
		}
		var ids []string
		for _, id := range sub.Tasks[p.nodeID] {
			if !sp.pushed[id] {
				sp.pushed[id] = true
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		sp.active++
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pushSub(sp.ctx, sub, ids)
			select {
			case p.finished <- sub.ID:
			case <-ctx.Done():
			}
		}()
	}
	isLive := map[string]bool{}
	for _, sub := range live {
		isLive[sub.ID] = true
	}
	for id, sp := range p.running {
		if !isLive[id] {
			sp.cancel()
			delete(p.running, id)
		}
	}
	for id := range p.answered {
		if !isLive[id] {
			delete(p.answered, id)
		}
	}
	return live
}

// pushSub streams tasks ids of the subscription to its manager until
// they are all read (without follow) or ctx ends.
func (p *logPusher) pushSub(ctx context.Context, sub records.LogSub, ids []string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var mu sync.Mutex // one record at a time on the pipe
	enc := json.NewEncoder(pw)
	send := func(rec api.LogPush) error {
		mu.Lock()
		defer mu.Unlock()
		return enc.Encode(rec)
	}
	var tasks sync.WaitGroup
	for _, id := range ids {
		tasks.Add(1)
		go func() {
			defer tasks.Done()
			p.copyTask(ctx, sub, id, send)
		}()
	}
	go func() {
		tasks.Wait()
		pw.Close() // the push's body ends: the manager counts this node done
	}()
	p.log.Info("pushing task output to a manager", "subscription", sub.ID, "manager", sub.Manager,
		"tasks", len(ids), "tail", sub.Tail, "follow", sub.Follow)
	err := p.push(ctx, sub.Manager, sub.ID, pr)
	cancel()
	pr.CloseWithError(io.ErrClosedPipe) // a task still writing stops
	tasks.Wait()
	// 410: the subscription ended first, as a request does when its
	// client goes.
	if err != nil && ctx.Err() == nil && api.StatusCode(err) != http.StatusGone {
		p.log.Warn("push task output to a manager", "subscription", sub.ID, "manager", sub.Manager, "err", err)
	}
	p.log.Info("task output push ended", "subscription", sub.ID)
}

// copyTask sends one task's output, line by line.
func (p *logPusher) copyTask(ctx context.Context, sub records.LogSub, id string, send func(api.LogPush) error) {
	tail := sub.Tail
	if slices.Contains(sub.Whole, id) {
		tail = -1
	}
	lr := &task.LogReader{Path: p.logPath(id), Tail: tail, Follow: sub.Follow, Ended: func() bool { return p.ended(id) }}
	if err := lr.Open(); err != nil {
		_ = send(api.LogPush{Task: id, Err: err.Error()})
		return
	}
	if !lr.Exists() && p.ended(id) {
		_ = send(api.LogPush{Task: id, Err: "this node no longer keeps its output"})
		return
	}
	lw := &lineWriter{task: id, send: send}
	if err := lr.CopyTo(ctx, lw); err == nil {
		_ = lw.flush()
	}
}

// lineWriter cuts a task's output into records of one line each, at most
// api.MaxLogLine bytes: a longer line goes in pieces.
type lineWriter struct {
	task    string
	send    func(api.LogPush) error
	partial []byte // the start of a line whose newline has not come yet
}

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		end := i
		if i < 0 {
			end = len(b)
		}
		w.partial = append(w.partial, b[:end]...)
		for len(w.partial) > api.MaxLogLine {
			if err := w.send(api.LogPush{Task: w.task, Line: string(w.partial[:api.MaxLogLine])}); err != nil {
				return 0, err
			}
			w.partial = w.partial[api.MaxLogLine:]
		}
		if i < 0 {
			break
		}
		if err := w.send(api.LogPush{Task: w.task, Line: string(w.partial)}); err != nil {
			return 0, err
		}
		w.partial = w.partial[:0]
		b = b[i+1:]
	}
	return n, nil
}

// flush sends a last line that has no newline.
func (w *lineWriter) flush() error {
	if len(w.partial) == 0 {
		return nil
	}
	err := w.send(api.LogPush{Task: w.task, Line: string(w.partial)})
	w.partial = nil
	return err
}

// TaskEnded says whether a task will write no more on this node: its
// process ended, or it is no longer this node's current task. Safe from
// any goroutine.
func (a *Agent) TaskEnded(id string) bool {
	st := records.TaskStatuses(a.cfg.DB)[id].State
	if api.Terminal(st) || st == api.TaskShutdown {
		return true
	}
	t, ok := a.desired.Current().Tasks[id]
	return !ok || !t.Current() || t.NodeID != a.cfg.NodeID
}
