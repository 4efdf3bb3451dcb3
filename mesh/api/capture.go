package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// meshctl capture: a node opens a packet socket on each hop asked of it
// (an interface in its own namespace, in a namespace of its run dir, or in
// a task's sandbox) and streams what they see as JSON lines: one
// [CaptureRecord] with Listening once every socket is open, one per
// packet, and one with End. meshctl merges the streams of several nodes
// into one pcapng file. The route is served on the root-only local socket
// alone: it is read-only, but it sees traffic.

// Bounds of a capture. A capture always ends: after its count, its
// duration, or when the client goes away, whichever comes first.
const (
	// MaxCaptureHops bounds the hops of one request.
	MaxCaptureHops = 16
	// MaxSnapLen is the most of a packet that is kept (and the default):
	// libpcap's MAXIMUM_SNAPLEN, room for a merged offload segment.
	MaxSnapLen = 262144
	// MaxCaptureCount bounds the packets of one capture (and is the
	// default count).
	MaxCaptureCount = 1_000_000
	// MaxCaptureDuration bounds how long one capture lasts (and is the
	// default duration).
	MaxCaptureDuration = time.Hour
	// MaxBPFInstructions is the kernel's limit on a classic BPF program
	// (BPF_MAXINSNS).
	MaxBPFInstructions = 4096
	// MaxCaptureRecord bounds one encoded record: a packet of
	// MaxSnapLen bytes in base64, and the rest.
	MaxCaptureRecord = MaxSnapLen*4/3 + 4<<10
)

// LinkTypeEthernet is the pcap link type of every hop: Ethernet
// (DLT_EN10MB), which veths, bridges, VXLAN devices and lo all are.
const LinkTypeEthernet = 1

// CaptureHop is an interface on the answering node: in the node's own
// namespace (Namespace empty), in a namespace of its run dir (ns ls:
// ingress_sbox, 1-<netid>, lb_<netid>) or in a task's or container's
// sandbox (a name, ID or ID prefix as exec takes them).
type CaptureHop struct {
	Namespace string `json:"Namespace,omitempty"`
	Interface string `json:"Interface"`
}

// BPFInstruction is one instruction of a classic BPF program, the four
// numbers of a line of `tcpdump -ddd`.
type BPFInstruction struct {
	Op uint16 `json:"Op"`
	Jt uint8  `json:"Jt"`
	Jf uint8  `json:"Jf"`
	K  uint32 `json:"K"`
}

// CaptureRequest asks a node to capture at some of its hops.
type CaptureRequest struct {
	Hops []CaptureHop `json:"Hops"`
	// Filter is a classic BPF program for Ethernet frames, attached to
	// every hop's socket (the kernel checks it); empty captures all.
	Filter []BPFInstruction `json:"Filter,omitempty"`
	// SnapLen is how many bytes of each packet are kept; 0 is MaxSnapLen.
	SnapLen int `json:"SnapLen,omitempty"`
	// Count ends the capture after that many packets over all its hops;
	// 0 is MaxCaptureCount.
	Count int `json:"Count,omitempty"`
	// Duration ends the capture after that long; 0 is
	// MaxCaptureDuration.
	Duration time.Duration `json:"Duration,omitempty"`
}

// CheckSizes refuses a request over the bounds above.
func (r CaptureRequest) CheckSizes() error {
	switch {
	case len(r.Hops) == 0:
		return Invalid("capture: no hop")
	case len(r.Hops) > MaxCaptureHops:
		return Invalid("too many hops: %d, at most %d", len(r.Hops), MaxCaptureHops)
	case len(r.Filter) > MaxBPFInstructions:
		return Invalid("filter of %d instructions: at most %d", len(r.Filter), MaxBPFInstructions)
	case r.SnapLen < 0 || r.SnapLen > MaxSnapLen:
		return Invalid("snapshot length %d: want 1 to %d bytes", r.SnapLen, MaxSnapLen)
	case r.Count < 0 || r.Count > MaxCaptureCount:
		return Invalid("count %d: want 1 to %d packets", r.Count, MaxCaptureCount)
	case r.Duration < 0 || r.Duration > MaxCaptureDuration:
		return Invalid("duration %s: at most %s", r.Duration, MaxCaptureDuration)
	}
	for _, h := range r.Hops {
		if h.Interface == "" {
			return Invalid("capture: a hop without an interface")
		}
		if err := checkLens(sizeCheck{"namespace", h.Namespace, MaxRefLen}, sizeCheck{"interface", h.Interface, MaxRefLen}); err != nil {
			return err
		}
	}
	return nil
}

// CaptureRecord is one line of a capture stream: exactly one field is
// set.
type CaptureRecord struct {
	Listening []CaptureListening `json:"Listening,omitempty"`
	Packet    *CapturedPacket    `json:"Packet,omitempty"`
	End       *CaptureEnd        `json:"End,omitempty"`
}

// CaptureListening says that a hop's socket is open, and where.
type CaptureListening struct {
	Hop       int    `json:"Hop"`       // its index in the request
	Namespace string `json:"Namespace"` // the namespace file, "" for the node's own
	Interface string `json:"Interface"`
	LinkType  int    `json:"LinkType"`
	SnapLen   int    `json:"SnapLen"`
}

// CapturedPacket is one packet seen at one hop.
type CapturedPacket struct {
	Hop    int       `json:"Hop"`
	Time   time.Time `json:"Time"`   // the kernel's receive time
	Length int       `json:"Length"` // on the wire; Data may be shorter
	Data   []byte    `json:"Data"`
}

// CaptureEnd closes a stream: why, and each hop's counts.
type CaptureEnd struct {
	Reason string         `json:"Reason"` // a CaptureEnd constant, or what failed
	Hops   []CaptureStats `json:"Hops"`
}

// Why a capture ended, in [CaptureEnd.Reason].
const (
	CaptureEndCount    = "count"
	CaptureEndDuration = "duration"
	CaptureEndCanceled = "canceled" // the client went away
)

// CaptureStats are one hop's counts: the packets it passed on, and those
// its socket dropped for want of room.
type CaptureStats struct {
	Hop      int    `json:"Hop"`
	Received uint64 `json:"Received"`
	Dropped  uint64 `json:"Dropped"`
}

// Capture runs a capture on the answering node and passes each record to
// fn, the Listening one first, until the End record (nil), fn's error
// (returned), or ctx's end (nil).
func (c *Client) Capture(ctx context.Context, req CaptureRequest, fn func(CaptureRecord) error) error {
	const path = "/v1/capture"
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	stream, err := c.stream(ctx, http.MethodPost, path, "application/json", bytes.NewReader(body))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer stream.Close()
	return readCapture(ctx, stream, fn)
}

// readCapture decodes a capture stream, each line at most
// MaxCaptureRecord bytes.
func readCapture(ctx context.Context, body io.Reader, fn func(CaptureRecord) error) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), MaxCaptureRecord)
	for sc.Scan() {
		var rec CaptureRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("read capture: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
		if rec.End != nil {
			return nil
		}
	}
	switch err := sc.Err(); {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("read capture: %w", err)
	}
	return errors.New("read capture: the stream ended before its end record")
}
