package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/capture"
	"golang.org/x/net/bpf"
)

// maxCaptures bounds the captures a node serves at once: each holds a
// socket and a buffer of up to api.MaxSnapLen bytes per hop.
const maxCaptures = 4

// capture serves meshctl capture, on the local socket alone: it reads
// no state, but it sees the traffic of every namespace on the node, so
// the socket's root-only permission is its gate. The sockets are opened
// before the answer starts, so a hop that cannot be opened is a plain
// error; then the stream says Listening, carries the packets and ends
// with the counts.
func (s *Server) capture(r *http.Request) (any, error) {
	if s.cfg.Capture == nil {
		return nil, api.Errorf(http.StatusNotImplemented, "this meshd does not capture packets")
	}
	var req api.CaptureRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	paths := make([]string, len(req.Hops))
	for i, h := range req.Hops {
		p, err := s.hopNamespace(h.Namespace)
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	if s.captures.Add(1) > maxCaptures {
		s.captures.Add(-1)
		return nil, api.Errorf(http.StatusTooManyRequests, "%d captures are running on this node: at most %d at once", maxCaptures, maxCaptures)
	}
	st := &captureStream{s: s, req: req, lim: capture.Limits{Count: req.Count, Duration: req.Duration}}
	if st.lim.Count == 0 {
		st.lim.Count = api.MaxCaptureCount
	}
	if st.lim.Duration == 0 {
		st.lim.Duration = api.MaxCaptureDuration
	}
	if err := st.open(paths); err != nil {
		s.captures.Add(-1)
		return nil, err
	}
	return st, nil
}

// hopNamespace finds the namespace file of a hop on this node: "" for
// the node's own, a name ns ls lists, or a task or container that runs
// here, as exec names them.
func (s *Server) hopNamespace(ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	dir, names, err := s.cfg.Node.Namespaces()
	if err != nil {
		return "", err
	}
	if slices.Contains(names, ref) {
		return filepath.Join(dir, ref), nil
	}
	self := s.cfg.Node.Info()
	var own []api.Task
	for _, t := range s.taskView(s.cfg.Node.Objects()) {
		if t.NodeID == self.NodeID && t.Standalone == nil {
			own = append(own, t)
		}
	}
	t, err := api.MatchContainer(append(own, s.standaloneTasks()...), ref)
	if api.StatusCode(err) == http.StatusNotFound {
		return "", api.NotFound("no namespace or task %s on %s (see meshctl ns ls and ps)", api.Quote(ref), self.NodeName)
	} else if err != nil {
		return "", err
	}
	if t.Status.Sandbox == "" || t.Status.State != api.TaskRunning {
		return "", api.Conflict("task %s has no sandbox on %s (%s)", t.Name(), self.NodeName, t.Status.State)
	}
	return t.Status.Sandbox, nil
}

// captureStream is one capture: its sockets, open, and how to stream it.
type captureStream struct {
	s     *Server
	req   api.CaptureRequest
	lim   capture.Limits
	srcs  []capture.Source
	heard []api.CaptureListening
}

// open opens a socket per hop, or none.
func (c *captureStream) open(paths []string) error {
	snap := c.req.SnapLen
	if snap == 0 {
		snap = api.MaxSnapLen
	}
	filter := make([]bpf.RawInstruction, len(c.req.Filter))
	for i, in := range c.req.Filter {
		filter[i] = bpf.RawInstruction{Op: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	for i, h := range c.req.Hops {
		src, err := c.s.cfg.Capture.Open(paths[i], h.Interface, snap, filter)
		if err != nil {
			for _, open := range c.srcs {
				_ = open.Close()
			}
			where := h.Namespace
			if where == "" {
				where = c.s.cfg.Node.Info().NodeName
			}
			if errors.Is(err, capture.ErrNoInterface) {
				return api.NotFound("no interface %s in %s", api.Quote(h.Interface), api.Quote(where))
			}
			return api.Invalid("capture on %s in %s: %v", api.Quote(h.Interface), api.Quote(where), err)
		}
		c.srcs = append(c.srcs, src)
		c.heard = append(c.heard, api.CaptureListening{Hop: i, Namespace: paths[i], Interface: h.Interface,
			LinkType: api.LinkTypeEthernet, SnapLen: snap})
	}
	return nil
}

func (c *captureStream) stream(w http.ResponseWriter, r *http.Request) {
	defer c.s.captures.Add(-1)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // bounded by the capture's own limits
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	if enc.Encode(api.CaptureRecord{Listening: c.heard}) != nil || rc.Flush() != nil {
		for _, src := range c.srcs {
			_ = src.Close()
		}
		return
	}
	reason, stats := capture.Run(r.Context(), c.srcs, c.lim, func(hop int, p capture.Packet) error {
		rec := api.CapturedPacket{Hop: hop, Time: p.Time, Length: p.Length, Data: p.Data}
		if err := enc.Encode(api.CaptureRecord{Packet: &rec}); err != nil {
			return err
		}
		return rc.Flush()
	})
	end := api.CaptureEnd{Reason: reason}
	for i, st := range stats {
		end.Hops = append(end.Hops, api.CaptureStats{Hop: i, Received: st.Received, Dropped: st.Dropped})
	}
	_ = enc.Encode(api.CaptureRecord{End: &end}) // the client may be gone
}
