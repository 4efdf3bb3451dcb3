package apiserver

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// service logs, as Docker's: the manager meshctl asks (any manager) reads
// no file itself. It publishes a log subscription naming each node's
// tasks (mesh/records), every node named pushes those tasks' output to
// this manager's cluster port (mesh/agent), and the records it accepts go
// to meshctl as JSON lines, which meshctl formats. A node may push only
// the tasks the manager's state gives it.

// Bounds of service logs on one manager.
const (
	maxLogSubs = 32 // service logs requests served at once
	// logLinesPerSecond is what one request takes from the nodes at most,
	// all together: a task printing faster is slowed down, through its
	// node's push, not dropped.
	logLinesPerSecond = 5000
	// logSubTTL is how long a subscription counts without being
	// refreshed, for a manager that died: the request refreshes it every
	// third of that.
	logSubTTL = time.Minute
)

// logAnswerWithin is how long a node has to start pushing: then a warning
// names it, and a request without follow stops waiting for it. Tests
// shorten it.
var logAnswerWithin = 10 * time.Second

// logNewTasksEvery is how often a followed service is looked at for new
// tasks.
const logNewTasksEvery = time.Second

// logPushPrefix is the cluster route nodes push to, followed by the
// subscription ID. Its body is a stream: it is read line by line (each
// bounded by api.MaxLogRecord), not whole as other bodies are.
const logPushPrefix = "/v1/cluster/logs/"

func isLogPush(path string) bool { return strings.HasPrefix(path, logPushPrefix) }

// clusterBodies caps the cluster port's bodies (see LimitBody), except a
// log push's, which is a stream.
func clusterBodies(mux http.Handler) http.Handler {
	limited := LimitBody(mux, maxBody)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isLogPush(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		limited.ServeHTTP(w, r)
	})
}

// logHub holds the subscriptions this manager serves. Its zero value is
// ready.
type logHub struct {
	mu   sync.Mutex // guards subs
	subs map[string]*logSub
}

// logSub is one service logs request: the tasks it reads, and the
// records the nodes pushed, on their way to meshctl.
type logSub struct {
	id     string
	out    chan api.LogRecord
	done   chan struct{} // closed when the request ends
	budget *lineBudget

	mu sync.Mutex // guards the fields below
	// tasks are the tasks read, by ID: those the request found, and those
	// a followed service started since.
	tasks    map[string]api.Task
	answered map[string]bool // nodes that started pushing, by ID
	finished map[string]bool // nodes that pushed all they had
	changed  chan struct{}   // holds a token after answered or finished changed
}

func (h *logHub) add(tasks map[string]api.Task) (*logSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxLogSubs {
		return nil, api.Errorf(http.StatusTooManyRequests, "this manager already serves %d service logs: try again later", maxLogSubs)
	}
	if h.subs == nil {
		h.subs = map[string]*logSub{}
	}
	sub := &logSub{id: api.NewID(), tasks: tasks, out: make(chan api.LogRecord, 256), done: make(chan struct{}),
		budget: newLineBudget(logLinesPerSecond), answered: map[string]bool{}, finished: map[string]bool{},
		changed: make(chan struct{}, 1)}
	h.subs[sub.id] = sub
	return sub, nil
}

func (h *logHub) get(id string) (*logSub, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub, ok := h.subs[id]
	return sub, ok
}

func (h *logHub) has(id string) bool {
	_, ok := h.get(id)
	return ok
}

func (h *logHub) remove(sub *logSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[sub.id] == sub {
		delete(h.subs, sub.id)
		close(sub.done)
	}
}

// byNode are task IDs by the node that runs them.
func byNode(tasks map[string]api.Task) map[string][]string {
	out := map[string][]string{}
	for id, t := range tasks {
		out[t.NodeID] = append(out[t.NodeID], id)
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

// task is one of the subscription's tasks.
func (sub *logSub) task(id string) (api.Task, bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	t, ok := sub.tasks[id]
	return t, ok
}

// names says whether the subscription reads a task of node.
func (sub *logSub) names(node string) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, t := range sub.tasks {
		if t.NodeID == node {
			return true
		}
	}
	return false
}

// add takes the tasks of tasks it does not read yet, and returns their IDs.
func (sub *logSub) add(tasks map[string]api.Task) []string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var added []string
	for id, t := range tasks {
		if _, ok := sub.tasks[id]; !ok {
			sub.tasks[id] = t
			added = append(added, id)
		}
	}
	slices.Sort(added)
	return added
}

// mark records that node answered (finished: and pushed everything).
func (sub *logSub) mark(node string, finished bool) {
	sub.mu.Lock()
	sub.answered[node] = true
	if finished {
		sub.finished[node] = true
	}
	sub.mu.Unlock()
	select {
	case sub.changed <- struct{}{}:
	default:
	}
}

// pending are the nodes that have not finished, and among them those
// that never answered.
func (sub *logSub) pending() (unfinished, silent []string) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for node := range byNode(sub.tasks) {
		if !sub.finished[node] {
			unfinished = append(unfinished, node)
		}
		if !sub.answered[node] {
			silent = append(silent, node)
		}
	}
	slices.Sort(unfinished)
	slices.Sort(silent)
	return unfinished, silent
}

// serviceLogs is docker service logs: the output of a service's current
// tasks, or of one task, from the nodes that run them. A manager's read.
func (s *Server) serviceLogs(r *http.Request) (any, error) {
	if err := s.manager(); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	tail, err := parseTail(q.Get("tail"))
	if err != nil {
		return nil, err
	}
	follow, _ := strconv.ParseBool(q.Get("follow"))
	db, addr := s.cfg.Node.LogSubs()
	if db == nil {
		return nil, api.ErrNotManager
	}
	tasks, replicas, service, err := s.logTasks(r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	sub, err := s.logs.add(tasks)
	if err != nil {
		return nil, err
	}
	s.sweepLogSubs(db)
	ls := records.LogSub{ID: sub.id, Manager: addr, Tasks: byNode(tasks), Tail: tail, Follow: follow, Expires: time.Now().Add(logSubTTL)}
	if err := records.PutLogSub(db, ls); err != nil {
		s.logs.remove(sub)
		return nil, fmt.Errorf("publish log subscription: %w", err)
	}
	if !follow {
		service = ""
	}
	return &logsStream{s: s, db: db, entry: ls, sub: sub, replicas: replicas, service: service}, nil
}

// logTasks are the tasks ref names: a service's current tasks that have
// a node, with the service's replica count and ID, or one task (by ID,
// ID prefix or name www.1), as docker service logs takes either.
func (s *Server) logTasks(ref string) (tasks map[string]api.Task, replicas int, serviceID string, err error) {
	st := s.cfg.Node.Objects()
	view := s.taskView(st)
	tasks = map[string]api.Task{}
	if serviceID, err = st.ServiceID(ref); err == nil {
		for _, t := range view {
			if t.ServiceID == serviceID && t.Current() && t.NodeID != "" {
				tasks[t.ID] = t
			}
		}
		if svc := st.Services[serviceID]; svc.Mode != api.ModeGlobal {
			replicas = svc.Replicas
		}
		return tasks, replicas, serviceID, nil
	}
	if api.StatusCode(err) != http.StatusNotFound {
		return nil, 0, "", err
	}
	all := map[string]api.Task{}
	for _, t := range view {
		all[t.ID] = t
	}
	id, err := records.Resolve("task", all, currentName, ref)
	switch {
	case api.StatusCode(err) == http.StatusNotFound:
		return nil, 0, "", api.NotFound("no such task or service: %s", api.Clip(ref))
	case err != nil:
		return nil, 0, "", err
	case all[id].NodeID == "":
		return nil, 0, "", api.Conflict("task %s has no node yet: it has no output", all[id].Name())
	}
	tasks[id] = all[id]
	return tasks, 0, "", nil
}

// sweepLogSubs withdraws this manager's subscriptions that no request
// serves: left by an earlier run of meshd.
func (s *Server) sweepLogSubs(db records.DB) {
	for _, e := range records.LogSubs(db) {
		if e.Owner == db.LocalName() && !s.logs.has(e.ID) {
			_ = records.DeleteLogSub(db, e.ID) // the next sweep tries again
		}
	}
}

// logsStream writes a service logs answer: the header, then the records
// as they come, until every node has pushed its tail (without follow) or
// the client goes.
type logsStream struct {
	s        *Server
	db       records.DB
	entry    records.LogSub
	sub      *logSub
	replicas int
	// service is the ID of a followed service, whose new tasks are added
	// as they come, as docker follows them; "" for a task or without
	// follow.
	service string
}

func (l *logsStream) stream(w http.ResponseWriter, r *http.Request) {
	defer func() {
		l.s.logs.remove(l.sub)
		if err := records.DeleteLogSub(l.db, l.sub.id); err != nil {
			l.s.log.Warn("withdraw log subscription", "id", l.sub.id, "err", err)
		}
	}()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a follow lasts as long as the client
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	if enc.Encode(api.LogsHeader{Replicas: l.replicas}) != nil {
		return
	}
	_ = rc.Flush()
	refresh := time.NewTicker(logSubTTL / 3)
	defer refresh.Stop()
	answerBy := time.NewTimer(logAnswerWithin)
	defer answerBy.Stop()
	var newTasks <-chan time.Time
	if l.service != "" {
		nt := time.NewTicker(logNewTasksEvery)
		defer nt.Stop()
		newTasks = nt.C
	}
	waiting := true // for the nodes that never answered
	for {
		if !l.entry.Follow && l.complete(waiting) {
			l.drain(enc)
			_ = rc.Flush()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case rec := <-l.sub.out:
			if enc.Encode(rec) != nil {
				return
			}
			l.drain(enc)
			_ = rc.Flush()
		case <-l.sub.changed:
		case <-answerBy.C:
			waiting = false
			_, silent := l.sub.pending()
			for _, node := range silent {
				if enc.Encode(api.LogRecord{Warning: l.silentWarning(node)}) != nil {
					return
				}
			}
			_ = rc.Flush()
		case <-refresh.C:
			l.entry.Expires = time.Now().Add(logSubTTL)
			if err := records.PutLogSub(l.db, l.entry); err != nil {
				l.s.log.Warn("refresh log subscription", "id", l.sub.id, "err", err)
			}
		case <-newTasks:
			l.followNewTasks()
		}
	}
}

// followNewTasks adds the followed service's tasks that started since the
// request (a restart, a scale, an update) to the subscription: the entry
// then names the service's current tasks, the new ones read from their
// start.
func (l *logsStream) followNewTasks() {
	cur, _, _, err := l.s.logTasks(l.service)
	if err != nil {
		return // the service went: what its tasks still write comes
	}
	added := l.sub.add(cur)
	if len(added) == 0 {
		return
	}
	whole := map[string]bool{}
	for _, id := range append(l.entry.Whole, added...) {
		if _, ok := cur[id]; ok {
			whole[id] = true
		}
	}
	l.entry.Tasks, l.entry.Whole = byNode(cur), slices.Sorted(maps.Keys(whole))
	l.entry.Expires = time.Now().Add(logSubTTL)
	if err := records.PutLogSub(l.db, l.entry); err != nil {
		l.s.log.Warn("add tasks to log subscription", "id", l.sub.id, "err", err)
	}
}

// complete says whether every node has pushed all it had; once waiting
// is over, the nodes that never answered do not count.
func (l *logsStream) complete(waiting bool) bool {
	unfinished, silent := l.sub.pending()
	if waiting {
		return len(unfinished) == 0
	}
	return len(unfinished) == len(silent)
}

// drain writes the records already received.
func (l *logsStream) drain(enc *json.Encoder) {
	for {
		select {
		case rec := <-l.sub.out:
			if enc.Encode(rec) != nil {
				return
			}
		default:
			return
		}
	}
}

func (l *logsStream) silentWarning(node string) string {
	name := node
	l.sub.mu.Lock()
	for _, t := range l.sub.tasks {
		if t.NodeID == node && t.NodeName != "" {
			name = t.NodeName
		}
	}
	l.sub.mu.Unlock()
	return fmt.Sprintf("node %s did not answer within %s: its tasks' output is missing", name, logAnswerWithin)
}
