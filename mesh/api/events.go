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
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Types of events (meshctl events --filter type=...). The set is closed: a
// filter naming another is refused.
const (
	EventNode    = "node"
	EventTask    = "task"
	EventBackend = "backend"
	EventDrift   = "drift"
)

// EventTypes lists every event type, sorted.
var EventTypes = []string{EventBackend, EventDrift, EventNode, EventTask}

// Event is one thing that happened, as the node that reports it saw it:
// a node going down, a task changing state, a backend added or drained,
// drift repaired. GET /v1/events streams them, one JSON object a line.
type Event struct {
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"`   // one of EventTypes
	Action     string            `json:"action"` // e.g. "down", "running", "added", "repaired"
	ID         string            `json:"id"`     // the node, task or service it is about
	Attributes map[string]string `json:"attributes,omitempty"`
}

// eventTimeFormat is docker events's: RFC 3339 with nanoseconds always
// printed, so that lines align.
const eventTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// String is Docker's text shape for an event:
// "2026-12-04T12:00:00.123456789Z node down ID (name=node2, state.new=dead)",
// attributes sorted by key.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Time.UTC().Format(eventTimeFormat))
	b.WriteString(" " + e.Type + " " + e.Action + " " + e.ID)
	if len(e.Attributes) > 0 {
		keys := make([]string, 0, len(e.Attributes))
		for k := range e.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(" (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k + "=" + e.Attributes[k])
		}
		b.WriteString(")")
	}
	return b.String()
}

// MaxEventFilters bounds the filters of one events request.
const MaxEventFilters = 16

// EventsOptions select events. Since and Until are as docker events takes
// them: RFC 3339, Unix seconds (with an optional fraction), or a Go
// duration meaning that long ago; "" is unbounded. Without Until the
// answer follows new events until the caller ends it. Filters are
// "type=VALUE".
type EventsOptions struct {
	Since, Until string
	Filters      []string
}

// ParseEventTime reads a --since or --until value relative to now; see
// [EventsOptions]. "" is the zero time.
func ParseEventTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) > 64 {
		return time.Time{}, Invalid("time %q: too long", Clip(s))
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, Invalid("time %q: want RFC 3339, Unix seconds or a duration such as 10m", s)
}

// ParseEventFilters reads filters "type=VALUE" into the types they allow
// (none: all).
func ParseEventFilters(fs []string) ([]string, error) {
	if len(fs) > MaxEventFilters {
		return nil, Invalid("%d filters: at most %d", len(fs), MaxEventFilters)
	}
	var types []string
	for _, f := range fs {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != "type" {
			return nil, Invalid("filter %q: want type=VALUE", Clip(f))
		}
		if !slices.Contains(EventTypes, v) {
			return nil, Invalid("filter %q: type is one of %s", Clip(f), strings.Join(EventTypes, ", "))
		}
		types = append(types, v)
	}
	return types, nil
}

// Events streams the node's events that o selects to fn, oldest first,
// until the answer ends (with Until), fn returns an error (returned), or
// ctx ends (nil).
func (c *Client) Events(ctx context.Context, o EventsOptions, fn func(Event) error) error {
	q := url.Values{}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	if o.Until != "" {
		q.Set("until", o.Until)
	}
	for _, f := range o.Filters {
		q.Add("filters", f)
	}
	body, err := c.stream(ctx, http.MethodGet, "/v1/events?"+q.Encode(), "", nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer body.Close()
	dec := json.NewDecoder(bufio.NewReader(body))
	for {
		var e Event
		switch err := dec.Decode(&e); {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			return fmt.Errorf("read events: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
