package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

// checkAPI is what check needs from one node's meshd.
type checkAPI interface {
	Check(ctx context.Context) (api.Check, error)
}

var _ checkAPI = (*api.Client)(nil)

// checkTarget is one node to check: its name as the lab knows it ("" for
// the node the socket leads to: it names itself) and its API.
type checkTarget struct {
	name string
	api  checkAPI
}

type checkOptions struct {
	output string // -o: text or json
}

// digestLen is how much of a table's digest the text shows: enough to
// tell two apart by eye.
const digestLen = 12

func newCheckCommand(c *cli) *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check [--node NODE] [-o text|json]",
		Short: "Compare each node's desired state with its kernel, as libnetwork's ssd",
		Long: "For each node: every namespace, vxlan0 FDB and neighbour entry, VIP, iptables chain and rule,\n" +
			"IPVS service or backend, and line of a sandbox's flowtable (nft list table inet meshd)\n" +
			"that its desired state wants and its kernel lacks, or that its\n" +
			"kernel holds and its desired state does not, one line each (node, namespace, what, where);\n" +
			"then a digest of each gossip table on each node, so that nodes whose tables diverge show.\n" +
			"In a local lab it checks every node, or the one --node names; elsewhere it checks the node\n" +
			"it talks to (--socket, $MESHD_SOCKET or the default socket). It exits 1 when anything\n" +
			"differs, 0 when every node is in step.",
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if opts.output != "text" && opts.output != formatJSON {
				return fmt.Errorf("-o %s: want text or json", opts.output)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets, err := c.checkTargets()
			if err != nil {
				return err
			}
			return runCheck(cmd.Context(), targets, c.out, opts)
		},
	}
	cmd.DisableFlagsInUseLine = true
	cmd.Flags().StringVarP(&opts.output, "output", "o", "text", "text or json")
	return cmd
}

// checkTargets are the nodes check asks: the one --socket, --node or
// $MESHD_SOCKET names; else every node of the local lab, if there is
// one; else the default socket's.
func (c *cli) checkTargets() ([]checkTarget, error) {
	if c.socket == "" && c.node == "" && os.Getenv("MESHD_SOCKET") == "" {
		if l, err := lab.Load(c.labRoot, c.labPrefix); err == nil {
			var out []checkTarget
			for _, n := range l.Nodes() {
				out = append(out, checkTarget{name: n.Name, api: api.NewClient(l.Socket(n.Name))})
			}
			if len(out) > 0 {
				return out, nil
			}
		}
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	return []checkTarget{{name: c.node, api: cl}}, nil
}

// checkResult is one node's answer, or why there is none.
type checkResult struct {
	api.Check
	Error string `json:"Error,omitempty"`
}

// checkReport is what -o json prints.
type checkReport struct {
	Nodes []checkResult `json:"Nodes"`
	// Diverged are the gossip tables whose digests differ between the
	// nodes that answered.
	Diverged []string `json:"Diverged"`
	// InStep: every node answered, with no difference, and no table
	// diverged (check exits 0).
	InStep bool `json:"InStep"`
}

// runCheck asks every target at once, prints the report and returns
// exitCode(1) when anything differs.
func runCheck(ctx context.Context, targets []checkTarget, out io.Writer, opts checkOptions) error {
	rep := checkReport{Nodes: make([]checkResult, len(targets))}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			c, err := t.api.Check(ctx)
			r := checkResult{Check: c}
			if err != nil {
				r.Error = err.Error()
			}
			if t.name != "" {
				r.Node = t.name
			}
			// JSON lists, never null.
			r.Diffs, r.Tables = nonNil(r.Diffs), nonNil(r.Tables)
			rep.Nodes[i] = r
		})
	}
	wg.Wait()
	rep.Diverged = nonNil(divergedTables(rep.Nodes))
	rep.InStep = len(rep.Diverged) == 0 && !slices.ContainsFunc(rep.Nodes, func(r checkResult) bool {
		return r.Error != "" || len(r.Diffs) > 0
	})
	if opts.output == formatJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "    ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := printCheck(out, rep); err != nil {
		return err
	}
	if !rep.InStep {
		return exitCode(1)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// divergedTables are the tables whose digest is not the same on every
// node that answered (a table missing on a node counts).
func divergedTables(nodes []checkResult) []string {
	digests := map[string]map[string]bool{} // table → digests seen
	answered := 0
	for _, n := range nodes {
		if n.Error != "" {
			continue
		}
		answered++
		for _, t := range n.Tables {
			if digests[t.Table] == nil {
				digests[t.Table] = map[string]bool{}
			}
			digests[t.Table][t.Digest] = true
		}
	}
	var out []string
	for table, seen := range digests {
		held := 0
		for _, n := range nodes {
			if n.Error == "" && slices.ContainsFunc(n.Tables, func(t api.TableDigest) bool { return t.Table == table }) {
				held++
			}
		}
		if len(seen) > 1 || held < answered {
			out = append(out, table)
		}
	}
	slices.Sort(out)
	return out
}

// printCheck writes the differences, one a line
// ("node3  1-rp2c9ia1ub  fdb missing  02:42:0a:ff:00:06 dst 192.168.33.10  (vxlan0)"),
// then the gossip tables, one row each with a column per node, then a
// one-line verdict.
func printCheck(out io.Writer, rep checkReport) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	lines := 0
	for _, n := range rep.Nodes {
		if n.Error != "" {
			fmt.Fprintf(tw, "%s\t-\tunreachable\t%s\n", n.Node, n.Error)
			lines++
		}
		for _, d := range n.Diffs {
			where := ""
			if d.Where != "" {
				where = "(" + d.Where + ")"
			}
			if d.Have != "" {
				where += "  kernel: " + d.Have
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\n", n.Node, d.Netns, d.Kind, d.State, d.Object, where)
			lines++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if lines > 0 {
		fmt.Fprintln(out)
	}
	if err := printDigests(out, rep); err != nil {
		return err
	}
	fmt.Fprintln(out)
	_, err := fmt.Fprintln(out, checkVerdict(rep))
	return err
}

// printDigests writes "TABLE  node1  node2 …  AGREE", each cell the
// entries and the digest's first characters; AGREE only when there are
// several nodes to agree.
func printDigests(out io.Writer, rep checkReport) error {
	var nodes []checkResult
	tables := map[string]bool{}
	for _, n := range rep.Nodes {
		if n.Error == "" {
			nodes = append(nodes, n)
			for _, t := range n.Tables {
				tables[t.Table] = true
			}
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := []string{"TABLE"}
	for _, n := range nodes {
		head = append(head, n.Node)
	}
	if len(nodes) > 1 {
		head = append(head, "AGREE")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, table := range slices.Sorted(maps.Keys(tables)) {
		row := []string{table}
		for _, n := range nodes {
			cell := "-"
			if i := slices.IndexFunc(n.Tables, func(t api.TableDigest) bool { return t.Table == table }); i >= 0 {
				d := n.Tables[i]
				cell = fmt.Sprintf("%d %s", d.Entries, d.Digest[:min(digestLen, len(d.Digest))])
			}
			row = append(row, cell)
		}
		if len(nodes) > 1 {
			agree := "yes"
			if slices.Contains(rep.Diverged, table) {
				agree = "no"
			}
			row = append(row, agree)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// checkVerdict is the last line: what differs where, or that all is in
// step.
func checkVerdict(rep checkReport) string {
	var parts, paused []string
	for _, n := range rep.Nodes {
		switch {
		case n.Error != "":
			parts = append(parts, n.Node+" unreachable")
		case len(n.Diffs) > 0:
			parts = append(parts, fmt.Sprintf("%s on %s", plural(len(n.Diffs), "difference"), n.Node))
		}
		if n.RepairPaused {
			paused = append(paused, n.Node)
		}
	}
	if len(rep.Diverged) > 0 {
		parts = append(parts, "gossip tables diverge: "+strings.Join(rep.Diverged, ", "))
	}
	verdict := fmt.Sprintf("in step: %s match their desired state and agree on the gossip tables", plural(len(rep.Nodes), "node"))
	if len(rep.Nodes) == 1 {
		verdict = "in step: the node matches its desired state"
	}
	if len(parts) > 0 {
		verdict = strings.Join(parts, "; ")
	}
	if len(paused) > 0 {
		verdict += " (repair paused on " + strings.Join(paused, ", ") + ")"
	}
	return verdict
}
