package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// service logs: a manager gathers its tasks' output from the nodes that
// run them and streams it to meshctl as JSON lines: a [LogsHeader], then
// [LogRecord]s.

// MaxTail bounds a --tail count: the lines are found by reading the file
// backwards, and a count above this is a typo.
const MaxTail = 1_000_000

// MaxLogLine bounds one line of a task's output as service logs carries
// it: a longer line comes as several records.
const MaxLogLine = 16 << 10

// MaxLogRecord bounds one encoded record: a line of MaxLogLine bytes,
// each escaped (\u00XX), and the rest.
const MaxLogRecord = 6*MaxLogLine + 4<<10

// LogsHeader opens a service logs stream.
type LogsHeader struct {
	// Replicas is the service's replica count (0 for a global service or
	// a single task): docker pads a task's context by its width.
	Replicas int `json:"Replicas"`
}

// LogRecord is one line of a task's output, or a warning about a node
// that did not answer.
type LogRecord struct {
	TaskID   string `json:"TaskID,omitempty"`
	TaskName string `json:"TaskName,omitempty"` // www.1, or www.<node ID> for a global service
	Slot     int    `json:"Slot,omitempty"`
	NodeName string `json:"NodeName,omitempty"`
	Line     string `json:"Line,omitempty"` // without its newline
	Warning  string `json:"Warning,omitempty"`
}

// LogPush is one record a node pushes to a manager for a log
// subscription: a line of a task's output, or why it has none.
type LogPush struct {
	Task string `json:"Task"`
	Line string `json:"Line,omitempty"`
	Err  string `json:"Err,omitempty"`
}

// LogStream reads a service logs stream.
type LogStream struct {
	Header LogsHeader
	body   io.ReadCloser
	r      *bufio.Reader
}

// NewLogStream reads the header of a stream and returns it, ready for
// Next.
func NewLogStream(body io.ReadCloser) (*LogStream, error) {
	s := &LogStream{body: body, r: bufio.NewReaderSize(body, 64<<10)}
	if err := s.decode(&s.Header); err != nil {
		body.Close()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read logs header: %w", err)
	}
	return s, nil
}

// Next returns the next record; io.EOF at the end of the stream.
func (s *LogStream) Next() (LogRecord, error) {
	var rec LogRecord
	err := s.decode(&rec)
	return rec, err
}

// Close ends the stream.
func (s *LogStream) Close() error { return s.body.Close() }

func (s *LogStream) decode(v any) error {
	line, err := ReadLine(s.r, MaxLogRecord)
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

// ReadLine reads one newline-terminated line of at most max bytes, without
// its newline; a last line without one is returned whole, then io.EOF.
func ReadLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max+1 {
			return nil, fmt.Errorf("line over %d bytes", max)
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// ServiceLogsOptions are service logs' choices.
type ServiceLogsOptions struct {
	Tail   string // the last N lines of each task, or "all"/""
	Follow bool
}

// ServiceLogs streams the output of a service's tasks, or of one task,
// from every node that runs them (a manager's read). The caller closes
// the stream; ctx ends a follow.
func (c *Client) ServiceLogs(ctx context.Context, ref string, o ServiceLogsOptions) (*LogStream, error) {
	q := url.Values{}
	if o.Tail != "" {
		q.Set("tail", o.Tail)
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	body, err := c.stream(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(ref)+"/logs?"+q.Encode(), "", nil)
	if err != nil {
		return nil, err
	}
	return NewLogStream(body)
}

// PushLogs sends a node's records for log subscription id to the manager
// (cluster port, with this node's certificate): body is JSON lines of
// [LogPush], read until it ends or ctx does.
func (c *Client) PushLogs(ctx context.Context, id string, body io.Reader) error {
	resp, err := c.stream(ctx, http.MethodPost, "/v1/cluster/logs/"+url.PathEscape(id), "application/x-ndjson", body)
	if err != nil {
		return err
	}
	return resp.Close()
}

// stream sends a request whose body or answer is a stream, with c's HTTP
// client less its timeout, which would cut it (ctx bounds it), and
// returns the answer's body for the caller to read and close. A refusal
// comes back as the error the answer holds.
func (c *Client) stream(ctx context.Context, method, path, contentType string, body io.Reader) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.sendError(method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, DecodeResponse(resp, nil)
	}
	return resp.Body, nil
}
