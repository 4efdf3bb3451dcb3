package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
)

// msgType is the first byte of every message this package hands memberlist.
// The rest is JSON of a wireMessage.
//
// These values and the JSON field names below MUST NOT change: nodes running
// different versions of meshd have to understand each other.
type msgType byte

const (
	// msgUpdate carries new versions after a write. It is gossiped, or sent
	// reliably to every member when it is too big for a gossip packet.
	msgUpdate msgType = 1
	// msgAnnounce carries the sender's own entries. A node sends it reliably
	// to every node it sees join; the receiver answers with msgReply.
	msgAnnounce msgType = 2
	// msgReply carries the sender's own entries, answering msgAnnounce.
	msgReply msgType = 3
	// msgState carries every entry the sender holds: memberlist push/pull.
	msgState msgType = 4
	// msgLeaving says the sender is about to leave gracefully, so that its
	// departure is recorded as "left" rather than "dead".
	msgLeaving msgType = 5
)

func (t msgType) String() string {
	switch t {
	case msgUpdate:
		return "update"
	case msgAnnounce:
		return "announce"
	case msgReply:
		return "reply"
	case msgState:
		return "state"
	case msgLeaving:
		return "leaving"
	}
	return fmt.Sprintf("msgType(%d)", byte(t))
}

// message is a decoded message.
type message struct {
	Type    msgType
	From    string // sending node
	Entries []Entry
}

type wireMessage struct {
	From    string      `json:"from"`
	Entries []wireEntry `json:"entries,omitempty"`
}

type wireEntry struct {
	Table   string `json:"table"`
	Scope   string `json:"scope,omitempty"`
	Key     string `json:"key"`
	Value   []byte `json:"value,omitempty"`
	Owner   string `json:"owner"`
	LTime   uint64 `json:"ltime"`
	Deleted bool   `json:"deleted,omitempty"`
}

var errEmptyMessage = errors.New("gossip: empty message")

func encodeMessage(m message) ([]byte, error) {
	w := wireMessage{From: m.From, Entries: make([]wireEntry, len(m.Entries))}
	for i, e := range m.Entries {
		w.Entries[i] = wireEntry(e)
		if e.Deleted {
			w.Entries[i].Value = nil // tombstones travel without their value
		}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	return append([]byte{byte(m.Type)}, body...), nil
}

// decodeMessage parses and validates a message from the network. It never
// panics; anything malformed is an error and nothing of it is used.
func decodeMessage(b []byte) (message, error) {
	if len(b) == 0 {
		return message{}, errEmptyMessage
	}
	m := message{Type: msgType(b[0])}
	if m.Type < msgUpdate || m.Type > msgLeaving {
		return message{}, fmt.Errorf("gossip: unknown message type %d", b[0])
	}
	var w wireMessage
	if err := json.Unmarshal(b[1:], &w); err != nil {
		return message{}, fmt.Errorf("decode %s message: %w", m.Type, err)
	}
	if err := validName("sender", w.From, false); err != nil {
		return message{}, fmt.Errorf("decode %s message: %w", m.Type, err)
	}
	m.From = w.From
	if len(w.Entries) > 0 {
		m.Entries = make([]Entry, len(w.Entries))
	}
	for i, we := range w.Entries {
		e := Entry(we)
		if e.Deleted {
			e.Value = nil
		}
		if err := e.validate(); err != nil {
			return message{}, fmt.Errorf("decode %s message from %s: entry %d: %w", m.Type, m.From, i, err)
		}
		m.Entries[i] = e
	}
	return m, nil
}
