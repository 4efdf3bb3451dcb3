package apiserver

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/events"
)

// events is docker events for this node: what it saw happen, from its
// in-memory log. With until it answers the events kept in [since, until]
// (waiting for until if it is still ahead); without, it follows new ones
// until the client goes. As dockerd, with neither since nor until it
// answers only the events that come after the request.
func (s *Server) events(r *http.Request) (any, error) {
	q := r.URL.Query()
	if len(q["since"]) > 1 || len(q["until"]) > 1 {
		return nil, api.Invalid("since and until may be given once")
	}
	now := time.Now()
	since, err := api.ParseEventTime(q.Get("since"), now)
	if err != nil {
		return nil, err
	}
	until, err := api.ParseEventTime(q.Get("until"), now)
	if err != nil {
		return nil, err
	}
	if !until.IsZero() && until.Before(since) {
		return nil, api.Invalid("until %s is before since %s", until.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	types, err := api.ParseEventFilters(q["filters"])
	if err != nil {
		return nil, err
	}
	return &eventsStream{log: s.cfg.Events, q: events.Query{Since: since, Until: until, Types: types}}, nil
}

type eventsStream struct {
	log *events.Log // nil: no events, the stream still answers
	q   events.Query
}

func (e *eventsStream) stream(w http.ResponseWriter, r *http.Request) {
	past, sub := e.log.Subscribe(e.q)
	defer sub.Close()
	if e.q.Since.IsZero() && e.q.Until.IsZero() {
		past = nil
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a follow lasts as long as the client
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, ev := range past {
		if enc.Encode(ev) != nil {
			return
		}
	}
	_ = rc.Flush()
	var end <-chan time.Time // an until still ahead
	if !e.q.Until.IsZero() {
		wait := time.Until(e.q.Until)
		if wait <= 0 {
			return
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		end = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case ev, ok := <-sub.C():
			if !ok || enc.Encode(ev) != nil {
				return
			}
			_ = rc.Flush()
		}
	}
}
