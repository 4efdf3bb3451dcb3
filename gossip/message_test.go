package gossip

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMessageRoundTrip(t *testing.T) {
	tests := []message{
		{Type: msgUpdate, From: "node1", Entries: []Entry{
			{Table: "endpoint_table", Scope: "net1", Key: "ep1", Value: []byte{0, 1, 2, 255}, Owner: "node1", LTime: 7},
		}},
		{Type: msgState, From: "node2", Entries: []Entry{
			{Table: "t", Key: "a", Owner: "node1", LTime: 1},
			{Table: "t", Key: "b", Owner: "node2", LTime: 9, Deleted: true},
		}},
		{Type: msgAnnounce, From: "node3"},
		{Type: msgReply, From: "node3"},
		{Type: msgLeaving, From: "node3"},
	}
	for _, want := range tests {
		t.Run(want.Type.String(), func(t *testing.T) {
			b, err := encodeMessage(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("decode %q: %v", b, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTombstoneTravelsWithoutValue(t *testing.T) {
	b, err := encodeMessage(message{Type: msgUpdate, From: "n", Entries: []Entry{
		{Table: "t", Key: "k", Value: []byte("secret"), Owner: "n", LTime: 2, Deleted: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "value") {
		t.Errorf("encoded tombstone %s carries a value", b)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, msg, err string
	}{
		{"empty", "", "empty message"},
		{"unknown type", "\x09{}", "unknown message type 9"},
		{"type zero", "\x00{}", "unknown message type 0"},
		{"not json", "\x01{", "decode update message"},
		{"no sender", `` + "\x01" + `{"entries":[]}`, "empty sender"},
		{"no table", "\x01" + `{"from":"n","entries":[{"key":"k","owner":"n","ltime":1}]}`, "empty table"},
		{"no key", "\x01" + `{"from":"n","entries":[{"table":"t","owner":"n","ltime":1}]}`, "empty key"},
		{"no owner", "\x01" + `{"from":"n","entries":[{"table":"t","key":"k","ltime":1}]}`, "empty owner"},
		{"reserved scope", "\x01" + `{"from":"n","entries":[{"table":"t","scope":"*","key":"k","owner":"n","ltime":1}]}`, "reserved"},
		{"ltime zero", "\x01" + `{"from":"n","entries":[{"table":"t","key":"k","owner":"n","ltime":0}]}`, "ltime 0 out of range"},
		{"ltime huge", "\x01" + `{"from":"n","entries":[{"table":"t","key":"k","owner":"n","ltime":18446744073709551615}]}`, "out of range"},
		{"bad value", "\x01" + `{"from":"n","entries":[{"table":"t","key":"k","owner":"n","ltime":1,"value":"!!"}]}`, "illegal base64"},
		{"long name", "\x01" + `{"from":"` + strings.Repeat("n", 600) + `"}`, "sender is 600 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeMessage([]byte(tc.msg))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("decode = %+v, %v; want an error containing %q", m, err, tc.err)
			}
		})
	}
}
