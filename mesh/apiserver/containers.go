package apiserver

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/images"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

// Tasks as docker's containers: inspect, ps's ports, logs.

// visibleTasks are the tasks a task or container reference resolves
// among: the cluster's on a manager, the node's own elsewhere.
func (s *Server) visibleTasks(st records.Objects) []api.Task {
	ownOnly := s.manager() != nil
	self := s.cfg.Node.Info().NodeID
	var out []api.Task
	for _, t := range s.taskView(st) {
		// Another node's standalone containers are its own (see tasks).
		if (!ownOnly && t.Standalone == nil) || t.NodeID == self {
			out = append(out, t)
		}
	}
	return append(out, s.standaloneTasks()...)
}

// container is docker inspect of a task's container.
func (s *Server) container(r *http.Request) (any, error) {
	st := s.cfg.Node.Objects()
	t, err := api.MatchContainer(s.visibleTasks(st), r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	return newContainer(s.withLocalLinks(t), st.Services[t.ServiceID]), nil
}

// taskView is taskView of st with this node's statuses, and the exit
// status its agent saw when it stopped the process of an ended task of
// this node, where the cluster's records have none: the managers write a
// task's shutdown before its node ends the process. A service task an
// update replaced then shows Exited (0) in ps -a, or (143), as docker
// shows the container of such a task.
func (s *Server) taskView(st records.Objects) []api.Task {
	out := taskView(st, s.cfg.Node.TaskStatuses())
	self := s.cfg.Node.Info().NodeID
	for i, t := range out {
		if t.Current() || t.NodeID != self {
			continue
		}
		if _, known := api.ContainerExitCode(t); known {
			continue
		}
		if code, stopped := s.cfg.Node.StoppedTask(t.ID); stopped && code != nil {
			out[i].Status.ExitCode = code
		}
	}
	return out
}

// withLocalLinks adds to a task of this node its connections to the
// node's bridge networks, which the cluster's records do not hold, and
// to an engine container its overlays.
func (s *Server) withLocalLinks(t api.Task) api.Task {
	if s.cfg.Containers == nil || t.NodeID != s.cfg.Node.Info().NodeID {
		return t
	}
	links := s.cfg.Containers.TaskLinks(t.ID)
	if t.Standalone != nil {
		links = s.cfg.Containers.Overlays(t.ContainerID()) // an engine container's
	}
	if len(links) > 0 {
		t.Networks = append(slices.Clone(t.Networks), links...)
	}
	return t
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
	for _, t := range s.taskView(st) {
		if t.NodeID == self {
			out = append(out, newContainer(s.withLocalLinks(t), st.Services[t.ServiceID]))
		}
	}
	for _, t := range s.standaloneTasks() {
		out = append(out, newContainer(t, api.Service{}))
	}
	return out, nil
}

// Logs.

// streamer is a handler's answer that is not JSON: it writes the whole
// response itself.
type streamer interface {
	stream(w http.ResponseWriter, r *http.Request)
}

// parseTail reads a tail query value: "all" or empty is every line (-1).
func parseTail(v string) (int, error) {
	if v == "" || v == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > api.MaxTail {
		return 0, api.Invalid("invalid tail %s: want a number of lines from 0 to %d, or all", api.Quote(v), api.MaxTail)
	}
	return n, nil
}

// taskLogs is docker logs of a task this node runs: its output file,
// from the last tail lines ("all" or empty: from the start), followed
// until the task ends or the client goes when follow is set.
func (s *Server) taskLogs(r *http.Request) (any, error) {
	q := r.URL.Query()
	tail, err := parseTail(q.Get("tail"))
	if err != nil {
		return nil, err
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
	path, ended := s.cfg.Node.TaskLogPath(t.ID), func() bool { return s.cfg.Node.TaskEnded(t.ID) }
	if t.Standalone != nil && s.cfg.Containers != nil && s.cfg.Containers.TaskLogPath(t.ID) != "" { // the local engine's
		path = s.cfg.Containers.TaskLogPath(t.ID)
		ended = func() bool { e, _ := s.cfg.Containers.Ended(t.ID); return e }
	}
	if path == "" {
		return nil, api.ErrNotInSwarm
	}
	lr := &task.LogReader{Path: path, Tail: tail, Follow: follow, Ended: ended}
	if err := lr.Open(); err != nil {
		return nil, err
	}
	if !lr.Exists() && !t.Current() {
		return nil, api.NotFound("task %s has ended and this node no longer keeps its output", t.Name())
	}
	return logStream{lr}, nil
}

// logStream writes a task's output as it is, without framing.
type logStream struct{ lr *task.LogReader }

func (l logStream) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// A followed log lasts as long as the task; the write deadline would
	// cut it. It fails only on a writer without deadlines.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	l.lr.Flush = func() { _ = rc.Flush() }
	_ = l.lr.CopyTo(r.Context(), w) // an error is the client gone
}
