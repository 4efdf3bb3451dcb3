package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

// captureAPI is what capture needs of a node: its capture stream.
type captureAPI interface {
	Capture(ctx context.Context, req api.CaptureRequest, fn func(api.CaptureRecord) error) error
}

var _ captureAPI = (*api.Client)(nil)

type captureOptions struct {
	hops     []hop
	nodes    []string // the hops' nodes, in order
	write    string   // -w FILE, "-" for stdout; empty prints text
	filter   string   // -f: a tcpdump expression
	count    int
	duration time.Duration
	snapLen  int
}

func newCaptureCommand(c *cli) *cobra.Command {
	var opts captureOptions
	cmd := &cobra.Command{
		Use:   "capture [OPTIONS] HOP [HOP...]",
		Short: "Capture packets at several hops of the mesh at once, into one pcapng",
		Long: "Captures at each HOP, NODE:INTERFACE or NODE:NAMESPACE:INTERFACE, at once: NAMESPACE is one\n" +
			"that ns ls lists (ingress_sbox, 1-<netid>, lb_<netid>) or a task (www.1, a container\n" +
			"ID or name), none for the node's own. Each node's meshd opens the packet sockets in\n" +
			"its namespaces (nothing runs in the task) and the packets are merged in time order.\n" +
			"With -w FILE they go to one pcapng file with an interface per hop, named as typed\n" +
			"(-w - streams it: meshctl capture -w - … | wireshark -k -i -); without, one line\n" +
			"each. -f takes tcpdump's filter language, compiled by tcpdump -ddd here. In the\n" +
			"lab every node is reachable; elsewhere only the node meshctl talks to.\n" +
			"It ends after -c packets, --duration, or Ctrl-C, and at most after " + api.MaxCaptureDuration.String() + ".",
		Example: "  meshctl capture -w mesh.pcapng -c 20 -f 'tcp port 8888 or udp port 4789' \\\n" +
			"      node3:eth0 node3:ingress_sbox:eth0 node1:www.1:eth0",
		Args: cobra.MinimumNArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			var err error
			if opts.hops, opts.nodes, err = parseHops(args); err != nil {
				return err
			}
			return checkCaptureOptions(opts)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.capture(cmd.Context(), opts)
		},
	}
	cmd.DisableFlagsInUseLine = true
	f := cmd.Flags()
	f.StringVarP(&opts.write, "write", "w", "", "Write a pcapng file (- for stdout) instead of printing the packets")
	f.StringVarP(&opts.filter, "filter", "f", "", "Capture only what this tcpdump expression matches (needs tcpdump)")
	f.IntVarP(&opts.count, "count", "c", 0, fmt.Sprintf("Stop after this many packets (at most %d)", api.MaxCaptureCount))
	f.DurationVar(&opts.duration, "duration", 0, "Stop after this long (such as 10s)")
	f.IntVarP(&opts.snapLen, "snapshot-length", "s", api.MaxSnapLen, "Keep this many bytes of each packet")
	return cmd
}

// checkCaptureOptions refuses what meshd would, before asking it.
func checkCaptureOptions(o captureOptions) error {
	switch {
	case o.count < 0 || o.count > api.MaxCaptureCount:
		return fmt.Errorf("-c %d: want 1 to %d packets", o.count, api.MaxCaptureCount)
	case o.duration < 0 || o.duration > api.MaxCaptureDuration:
		return fmt.Errorf("--duration %s: at most %s", o.duration, api.MaxCaptureDuration)
	case o.snapLen < 1 || o.snapLen > api.MaxSnapLen:
		return fmt.Errorf("-s %d: want 1 to %d bytes", o.snapLen, api.MaxSnapLen)
	}
	return nil
}

// capture finds each node's meshd, compiles the filter, opens the
// output and runs the capture.
func (c *cli) capture(ctx context.Context, opts captureOptions) error {
	nodes, err := c.captureNodes(ctx, opts.nodes)
	if err != nil {
		return err
	}
	var prog []api.BPFInstruction
	if opts.filter != "" {
		if prog, err = compileFilter(ctx, opts.filter, opts.snapLen); err != nil {
			return err
		}
	}
	switch opts.write {
	case "":
		return runCapture(ctx, nodes, &textSink{w: c.out}, c.errOut, opts, prog)
	case "-":
		return runCapture(ctx, nodes, &pcapngSink{w: c.out, flushEach: true}, c.errOut, opts, prog)
	}
	f, err := os.Create(opts.write)
	if err != nil {
		return err
	}
	err = runCapture(ctx, nodes, &pcapngSink{w: f}, c.errOut, opts, prog)
	return errors.Join(err, f.Close())
}

// captureNodes returns the meshd of each node: in the lab, every node's
// socket; elsewhere (--socket, $MESHD_SOCKET, no lab) the one meshd
// meshctl talks to, which must be the node every hop names: another
// machine's socket is root's on that machine, and captures are not
// served on the cluster port.
func (c *cli) captureNodes(ctx context.Context, names []string) (map[string]captureAPI, error) {
	out := map[string]captureAPI{}
	if c.socket == "" && os.Getenv("MESHD_SOCKET") == "" {
		if l, err := lab.Load(c.labRoot, c.labPrefix); err == nil {
			for _, n := range names {
				sock := l.Socket(n)
				if sock == "" {
					return nil, fmt.Errorf("hop on %s: no such node in the lab", n)
				}
				out[n] = api.NewClient(sock)
			}
			return out, nil
		}
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	info, err := cl.Info(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n != info.NodeName && n != info.NodeID {
			return nil, fmt.Errorf("hop on %s: meshctl talks to %s; capture on %s with that machine's meshctl", n, info.NodeName, n)
		}
		out[n] = cl
	}
	return out, nil
}

// captureEvent is what a node's stream goroutine hands runCapture.
type captureEvent struct {
	node string
	rec  api.CaptureRecord
	err  error // the stream failed
}

// runCapture runs one capture per node at once and merges their packets
// into sink in time order, until every stream ends, the count is
// reached, or ctx ends. It prints tcpdump's lines to status: which hops
// listen, then the counts.
func runCapture(ctx context.Context, nodes map[string]captureAPI, sink captureSink, status io.Writer, opts captureOptions, prog []api.BPFInstruction) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	index := map[string][]int{} // a node's hops, as indexes into opts.hops
	for i, h := range opts.hops {
		index[h.node] = append(index[h.node], i)
	}
	events := make(chan captureEvent)
	var wg sync.WaitGroup
	for _, n := range opts.nodes {
		req := api.CaptureRequest{Filter: prog, SnapLen: opts.snapLen, Count: opts.count, Duration: opts.duration}
		for _, i := range index[n] {
			req.Hops = append(req.Hops, api.CaptureHop{Namespace: opts.hops[i].namespace, Interface: opts.hops[i].iface})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			send := func(ev captureEvent) error {
				select {
				case events <- ev:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			err := nodes[n].Capture(ctx, req, func(rec api.CaptureRecord) error { return send(captureEvent{node: n, rec: rec}) })
			if err != nil && ctx.Err() == nil {
				_ = send(captureEvent{node: n, err: err})
			}
		}()
	}
	go func() { wg.Wait(); close(events) }()
	m := &capturing{opts: opts, sink: sink, status: status, index: index, merge: merger{window: mergeWindow},
		stats: make([]api.CaptureStats, len(opts.hops)), stop: cancel}
	return m.run(ctx, events)
}

// capturing is the state of runCapture's loop.
type capturing struct {
	opts      captureOptions
	sink      captureSink
	status    io.Writer
	index     map[string][]int
	merge     merger
	stats     []api.CaptureStats
	stop      context.CancelFunc // ends every stream
	listening map[string]bool
	started   bool // every node listens; the sink has its hops
	written   int
	err       error // the first failure
}

func (m *capturing) run(ctx context.Context, events <-chan captureEvent) error {
	m.listening = map[string]bool{}
	tick := time.NewTimer(time.Hour)
	defer tick.Stop()
	for events != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			m.handle(ev)
		case <-tick.C:
		}
		if m.started && m.err == nil {
			m.write(m.merge.ready(time.Now()))
		}
		if next := m.merge.next(); !next.IsZero() {
			tick.Reset(time.Until(next))
		}
	}
	if !m.started {
		if m.err == nil && ctx.Err() == nil {
			m.err = errors.New("capture: the nodes ended their streams before listening")
		}
		return m.err
	}
	if m.err == nil {
		m.write(m.merge.drain())
	}
	if err := m.sink.finish(m.stats, time.Now()); err != nil && m.err == nil {
		m.err = err
	}
	m.printCounts()
	return m.err
}

// handle takes one record or failure of a node's stream.
func (m *capturing) handle(ev captureEvent) {
	hops := m.index[ev.node]
	switch {
	case ev.err != nil:
		m.fail(fmt.Errorf("%s: %w", ev.node, ev.err))
	case ev.rec.Listening != nil:
		m.listening[ev.node] = true
		if len(m.listening) == len(m.index) && m.err == nil {
			m.begin(ev.rec.Listening[0].SnapLen)
		}
	case ev.rec.Packet != nil:
		if p := ev.rec.Packet; p.Hop >= 0 && p.Hop < len(hops) {
			m.merge.push(hops[p.Hop], *p, time.Now())
		}
	case ev.rec.End != nil:
		for _, st := range ev.rec.End.Hops {
			if st.Hop >= 0 && st.Hop < len(hops) {
				m.stats[hops[st.Hop]] = api.CaptureStats{Hop: hops[st.Hop], Received: st.Received, Dropped: st.Dropped}
			}
		}
		if r := ev.rec.End.Reason; r != api.CaptureEndCount && r != api.CaptureEndDuration && r != api.CaptureEndCanceled {
			m.fail(fmt.Errorf("%s: capture ended: %s", ev.node, r))
		}
	}
}

// begin starts the sink once every hop listens, and says so as tcpdump
// does: after this line, traffic is seen.
func (m *capturing) begin(snapLen int) {
	specs := make([]string, len(m.opts.hops))
	for i, h := range m.opts.hops {
		specs[i] = h.spec
	}
	if err := m.sink.startHops(m.opts.hops, snapLen, m.opts.filter); err != nil {
		m.fail(err)
		return
	}
	m.started = true
	fmt.Fprintf(m.status, "listening on %s, link-type EN10MB (Ethernet), snapshot length %d bytes\n", strings.Join(specs, ", "), snapLen)
}

// write writes packets up to the count, which, once reached, ends the
// capture.
func (m *capturing) write(pkts []heldPacket) {
	for _, p := range pkts {
		if m.opts.count > 0 && m.written >= m.opts.count {
			break
		}
		if err := m.sink.packet(p.hop, p.pkt); err != nil {
			m.fail(err)
			return
		}
		m.written++
	}
	if len(pkts) > 0 {
		if err := m.sink.flush(); err != nil {
			m.fail(err)
		}
	}
	if m.opts.count > 0 && m.written >= m.opts.count {
		m.stop()
	}
}

func (m *capturing) fail(err error) {
	if m.err == nil {
		m.err = err
	}
	m.stop()
}

// printCounts prints tcpdump's closing lines.
func (m *capturing) printCounts() {
	var recv, drop uint64
	for _, st := range m.stats {
		recv += st.Received
		drop += st.Dropped
	}
	fmt.Fprintf(m.status, "%d packets captured\n%d packets received by filter\n%d packets dropped by kernel\n", m.written, recv, drop)
}
