package apiserver

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/images"
	"github.com/meshd/meshd/mesh/records"
)

// Tasks as docker's containers: inspect, ps's ports, logs.

// visibleTasks are the tasks a task or container reference resolves
// among: the cluster's on a manager, the node's own elsewhere.
func (s *Server) visibleTasks(st records.Objects) []api.Task {
	ownOnly := s.manager() != nil
	self := s.cfg.Node.Info().NodeID
	var out []api.Task
	for _, t := range taskView(st, s.cfg.Node.TaskStatuses()) {
		if !ownOnly || t.NodeID == self {
			out = append(out, t)
		}
	}
	return out
}

// container is docker inspect of a task's container.
func (s *Server) container(r *http.Request) (any, error) {
	st := s.cfg.Node.Objects()
	t, err := api.MatchContainer(s.visibleTasks(st), r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	return newContainer(t, st.Services[t.ServiceID]), nil
}

// newContainer is api.NewContainer with the command line a container of
// a built-in image runs, as docker inspect shows it.
func newContainer(t api.Task, svc api.Service) api.Container {
	c := api.NewContainer(t, svc)
	if path, args, ok := images.CommandLine(t.Image, t.Args); ok {
		c.Path, c.Args = path, args
	}
	return c
}

// containers are this node's tasks as containers, its ended ones
// included (ps -a).
func (s *Server) containers(*http.Request) (any, error) {
	st := s.cfg.Node.Objects()
	self := s.cfg.Node.Info().NodeID
	out := []api.Container{}
	for _, t := range taskView(st, s.cfg.Node.TaskStatuses()) {
		if t.NodeID == self {
			out = append(out, newContainer(t, st.Services[t.ServiceID]))
		}
	}
	return out, nil
}

// Logs.

// maxTail bounds logs --tail: the lines are found by reading the file
// backwards, and a count above this is a typo.
const maxTail = 1_000_000

// logPoll is how often a followed log is read for more output.
const logPoll = 200 * time.Millisecond

// streamer is a handler's answer that is not JSON: it writes the whole
// response itself.
type streamer interface {
	stream(w http.ResponseWriter, r *http.Request)
}

// taskLogs is docker logs of a task this node runs: its output file,
// from the last tail lines ("all" or empty: from the start), followed
// until the task ends or the client goes when follow is set.
func (s *Server) taskLogs(r *http.Request) (any, error) {
	q := r.URL.Query()
	tail := -1
	if v := q.Get("tail"); v != "" && v != "all" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxTail {
			return nil, api.Invalid("invalid tail %s: want a number of lines from 0 to %d, or all", api.Quote(v), maxTail)
		}
		tail = n
	}
	follow, _ := strconv.ParseBool(q.Get("follow"))
	st := s.cfg.Node.Objects()
	t, err := api.MatchContainer(s.visibleTasks(st), r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	if self := s.cfg.Node.Info(); t.NodeID != self.NodeID {
		return nil, api.Conflict("task %s runs on %s: its output is there", t.Name(), t.NodeName)
	}
	path := s.cfg.Node.TaskLogPath(t.ID)
	if path == "" {
		return nil, api.ErrNotInSwarm
	}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && t.Current():
		f = nil // not started yet: nothing so far
	case errors.Is(err, fs.ErrNotExist):
		return nil, api.NotFound("task %s has ended and this node no longer keeps its output", t.Name())
	case err != nil:
		return nil, err
	}
	ls := &logStream{s: s, taskID: t.ID, path: path, f: f, follow: follow}
	if f != nil && tail >= 0 {
		off, err := tailOffset(f, tail)
		if err != nil {
			f.Close()
			return nil, err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return ls, nil
}

// logStream writes a task's output as it is, without framing.
type logStream struct {
	s      *Server
	taskID string
	path   string
	f      *os.File // nil until the task has written its first byte
	follow bool
}

func (l *logStream) stream(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if l.f != nil {
			l.f.Close()
		}
	}()
	rc := http.NewResponseController(w)
	// A followed log lasts as long as the task; the write deadline would
	// cut it. It fails only on a writer without deadlines.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	for {
		ended := l.ended() // before reading: whatever it wrote is in the file by now
		if l.f == nil {
			if f, err := os.Open(l.path); err == nil {
				l.f = f
			}
		}
		if l.f != nil {
			if _, err := io.Copy(w, l.f); err != nil {
				return // the client went away
			}
		}
		_ = rc.Flush()
		if !l.follow || ended {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(logPoll):
		}
	}
}

// ended says whether the task will write no more: its process ended, or
// it is no longer this node's current task.
func (l *logStream) ended() bool {
	st := l.s.cfg.Node.TaskStatuses()[l.taskID].State
	if api.Terminal(st) || st == api.TaskShutdown {
		return true
	}
	t, ok := l.s.cfg.Node.Objects().Tasks[l.taskID]
	return !ok || !t.Current() || t.NodeID != l.s.cfg.Node.Info().NodeID
}

// tailOffset is where the last n lines of f start; a last line without
// its newline counts as a line.
func tailOffset(f *os.File, n int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if n == 0 || size == 0 {
		return size, nil
	}
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	end, seen := size, 0
	skipLast := true // the newline that ends the last line starts no line
	for end > 0 {
		start := max(0, end-chunk)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				skipLast = false
				continue
			}
			if skipLast {
				skipLast = false
				continue
			}
			if seen++; seen == n {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}
