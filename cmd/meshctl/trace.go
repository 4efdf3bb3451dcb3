package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

// traceAPI is what trace needs from the meshd that traces.
type traceAPI interface {
	Trace(ctx context.Context, req api.TraceRequest) (api.Trace, error)
}

var _ traceAPI = (*api.Client)(nil)

type traceOptions struct {
	from   string // --from: client, a node or a task
	to     string // ADDRESS:PORT[/udp]
	probe  bool   // --probe: send one real connection and mark the hops it moved
	output string // -o: "" (text) or json
}

// traceSource gathers the kernel snapshots a trace reads and sends the
// probe: the lab's nodes and client, or nothing outside a lab (the
// answering node then traces through its own snapshot). graph draws the
// same snapshots.
type traceSource interface {
	snapshots(ctx context.Context) ([]api.KernelSnapshot, error)
	// clientAddr is the lab's client address; "" outside a lab.
	clientAddr() string
	// probe opens one connection to target from the client.
	probe(ctx context.Context, target, proto string) error
}

func newTraceCommand(c *cli) *cobra.Command {
	var opts traceOptions
	cmd := &cobra.Command{
		Use:   "trace [--from client|NODE|TASK] ADDRESS:PORT[/udp]",
		Short: "The path a new connection takes, hop by hop, read from the nodes' kernels",
		Args:  cobra.ExactArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.to = args[0]
			src := c.traceSource()
			if ls, ok := src.(labTraceSource); ok && c.node == "" {
				cl = api.NewClient(ls.l.Socket(ls.l.Nodes()[0].Name)) // any node traces; the first is up
			}
			return runTrace(ctx, cl, src, c.out, opts)
		}),
	}
	cmd.Flags().StringVar(&opts.from, "from", "client", "where the connection starts: client, a node's name or a task's (www.1)")
	cmd.Flags().BoolVar(&opts.probe, "probe", false, "send one real connection from the lab's client and mark the hops whose counters it moved")
	cmd.Flags().StringVarP(&opts.output, "output", "o", "", "json, or empty for text")
	return cmd
}

func runTrace(ctx context.Context, cl traceAPI, src traceSource, out io.Writer, opts traceOptions) error {
	if opts.output != "" && opts.output != formatJSON {
		return fmt.Errorf("trace: -o %s: want json or nothing", api.Quote(opts.output))
	}
	req := api.TraceRequest{From: opts.from, To: opts.to}
	if opts.from == "client" {
		if req.Src = src.clientAddr(); req.Src == "" {
			return errors.New("trace --from client needs a lab (its client namespace); outside one, trace from a node or a task")
		}
	}
	if opts.probe && opts.from != "client" {
		return errors.New("trace --probe sends its connection from the lab's client: use --from client")
	}
	var err error
	if req.Snapshots, err = src.snapshots(ctx); err != nil {
		return err
	}
	t, err := cl.Trace(ctx, req)
	if err != nil {
		return err
	}
	if opts.probe {
		proto := "tcp"
		if strings.HasSuffix(opts.to, "/udp") {
			proto = "udp"
		}
		if err := src.probe(ctx, strings.TrimSuffix(strings.TrimSuffix(opts.to, "/udp"), "/tcp"), proto); err != nil {
			return err
		}
		after, err := src.snapshots(ctx)
		if err != nil {
			return err
		}
		markMoved(&t, after)
	}
	if opts.output == formatJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "    ")
		return enc.Encode(t)
	}
	return printTrace(out, t, opts.probe)
}

// markMoved sets Moved on each rule hop whose packet counter is higher
// in the snapshots taken after the probe.
func markMoved(t *api.Trace, after []api.KernelSnapshot) {
	for i := range t.Hops {
		h := &t.Hops[i]
		if h.Kind != api.HopRule {
			continue
		}
		for _, s := range after {
			if s.NodeName != h.Node {
				continue
			}
			if ns := s.Netns(h.Netns); ns != nil {
				if n, ok := ruleCounter(ns.IPTables[h.Table], h.Rule); ok && n > h.Packets {
					h.Moved = true
				}
			}
		}
	}
}

// ruleCounter finds rule ("-A CHAIN …") in iptables-save -c text and
// returns its packet counter.
func ruleCounter(text, rule string) (uint64, bool) {
	for line := range strings.Lines(text) {
		c, r, ok := strings.Cut(strings.TrimSpace(line), "] ")
		if !ok || r != rule || !strings.HasPrefix(c, "[") {
			continue
		}
		pkts, _, _ := strings.Cut(c[1:], ":")
		n, err := strconv.ParseUint(pkts, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// printTrace prints one line per hop: its node, namespace and what
// happened there (a rule with its packet counter, "+" when the probe moved
// it); under it the packet when the hop changed it, and the command that
// shows the hop on the machine.
func printTrace(out io.Writer, t api.Trace, probed bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s %s > %s from %s\n", t.Proto, t.Src, t.To, t.From)
	nodeW, nsW := len("NODE"), len("NETNS")
	for _, h := range t.Hops {
		nodeW, nsW = max(nodeW, len(h.Node)), max(nsW, len(h.Netns))
	}
	indent := strings.Repeat(" ", 4+nodeW+2+nsW+2)
	packet := ""
	for i, h := range t.Hops {
		what := h.Kind + " " + h.Detail
		switch h.Kind {
		case api.HopRule:
			what = fmt.Sprintf("%s %s  [%d pkts", h.Table, h.Rule, h.Packets)
			if probed && h.Moved {
				what += " +"
			}
			what += "]"
			if h.Detail != "" {
				what += "  " + h.Detail
			}
		case api.HopArrive:
			what = h.Detail
		}
		fmt.Fprintf(&b, "%-4d%-*s  %-*s  %s\n", i+1, nodeW, h.Node, nsW, h.Netns, what)
		if h.Packet != "" && h.Packet != packet {
			fmt.Fprintf(&b, "%s%s\n", indent, h.Packet)
			packet = h.Packet
		}
		if h.Command != "" {
			fmt.Fprintf(&b, "%s$ %s\n", indent, h.Command)
		}
	}
	switch {
	case t.Reached:
		fmt.Fprintf(&b, "reached: %s", t.Backend)
	case t.Stopped != "":
		fmt.Fprintf(&b, "stopped: %s", t.Stopped)
	default:
		fmt.Fprintf(&b, "left the nodes traced for %s", t.Backend)
	}
	if len(t.Backends) > 0 {
		fmt.Fprintf(&b, " (backends: %s)", strings.Join(t.Backends, ", "))
	}
	if probed {
		b.WriteString("; + marks the counters the probe moved")
	}
	b.WriteString("\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// traceSource is the lab's when one is up for --lab-prefix and
// --lab-root, else none.
func (c *cli) traceSource() traceSource {
	l, err := lab.Load(c.labRoot, c.labPrefix)
	if err != nil || c.socket != "" {
		return noTraceSource{}
	}
	return labTraceSource{l}
}

type noTraceSource struct{}

func (noTraceSource) snapshots(context.Context) ([]api.KernelSnapshot, error) { return nil, nil }
func (noTraceSource) clientAddr() string                                      { return "" }
func (noTraceSource) probe(context.Context, string, string) error {
	return errors.New("trace --probe needs a lab")
}

type labTraceSource struct{ l *lab.Lab }

// snapshots reads every lab node's snapshot through its socket, and names
// each node's own namespace by the file that reaches it from here.
func (s labTraceSource) snapshots(ctx context.Context) ([]api.KernelSnapshot, error) {
	var out []api.KernelSnapshot
	for _, n := range s.l.Nodes() {
		snap, err := api.NewClient(s.l.Socket(n.Name)).Kernel(ctx)
		if err != nil {
			return nil, fmt.Errorf("kernel snapshot of %s: %w", n.Name, err)
		}
		if host := snap.Netns(api.HostNamespace); host != nil && host.Path == "" {
			host.Path = n.NetnsPath()
		}
		out = append(out, snap)
	}
	return out, nil
}

func (s labTraceSource) clientAddr() string {
	n, ok := s.l.Node("client")
	if !ok {
		return ""
	}
	return n.Addr.String()
}

// probe connects from the client namespace: curl for TCP (any answer, or
// none, is fine once connected), a datagram through bash for UDP.
func (s labTraceSource) probe(ctx context.Context, target, proto string) error {
	host, port, _ := strings.Cut(target, ":")
	argv := []string{"curl", "-s", "-o", "/dev/null", "-m", "3", "http://" + target + "/"}
	if proto == "udp" {
		argv = []string{"bash", "-c", fmt.Sprintf("echo probe > /dev/udp/%s/%s", host, port)}
	}
	cmd := s.l.ExecCmd("client", argv)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && proto == "tcp" && ee.ExitCode() != 7 && ee.ExitCode() != 28 {
		err = nil // connected: the service's answer is not the probe's business
	}
	if err != nil {
		return fmt.Errorf("probe %s/%s from the client: %w: %s", target, proto, err, strings.TrimSpace(string(out)))
	}
	_ = ctx
	return nil
}
