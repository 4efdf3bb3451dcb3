package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// execute runs meshctl with args as main does, up to the error main
// prints, and returns what it wrote.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCommand(&cli{in: strings.NewReader(""), out: &out, errOut: &out, labRoot: t.TempDir()})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// groups returns the path below meshctl of every command that groups
// others, meshctl itself first (an empty path).
func groups(cmd *cobra.Command, path []string) [][]string {
	if !cmd.HasSubCommands() {
		return nil
	}
	out := [][]string{path}
	for _, sub := range cmd.Commands() {
		out = append(out, groups(sub, append(path[:len(path):len(path)], sub.Name()))...)
	}
	return out
}

// TestUnknownSubcommand checks that every group, however it is built,
// refuses a subcommand it lacks with docker's two lines and no help, so
// that a typo or a docker command meshctl lacks fails instead of exiting
// 0.
func TestUnknownSubcommand(t *testing.T) {
	all := groups(newRootCommand(&cli{}), nil)
	if len(all) < 8 {
		t.Fatalf("found groups %q, want meshctl and at least node, network, service, ns, lb, swarm and lab", all)
	}
	for _, path := range all {
		name := strings.TrimSpace("meshctl " + strings.Join(path, " "))
		t.Run(name, func(t *testing.T) {
			out, err := execute(t, append(path, "frobnicate", "x")...)
			want := `unknown command "frobnicate" for "` + name + `"` + "\nRun '" + name + " --help' for more information"
			if len(path) == 0 {
				want = "'frobnicate' is not a meshctl command.\nSee 'meshctl --help'"
			}
			if err == nil || err.Error() != want {
				t.Errorf("got error %v, want %q", err, want)
			}
			if out != "" {
				t.Errorf("got output %q, want none", out)
			}
		})
	}
	// docker's commands meshctl does not have are unknown, not help.
	for _, args := range [][]string{{"node", "ps", "node1"}, {"swarm", "unlock"}, {"network", "prune"}} {
		if _, err := execute(t, args...); err == nil || !strings.HasPrefix(err.Error(), "unknown command") {
			t.Errorf("meshctl %s: got error %v, want unknown command", strings.Join(args, " "), err)
		}
	}
}

// TestGroupHelp checks that a group run bare still prints its help and
// succeeds, as docker's do.
func TestGroupHelp(t *testing.T) {
	out, err := execute(t, "swarm")
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if !strings.Contains(out, "Usage:\n  meshctl swarm\n  meshctl swarm [command]\n") {
		t.Errorf("got output %q, want the swarm group's help", out)
	}
}

// TestArgs checks the argument errors of the commands that word them as
// docker does; none of them reaches meshd.
func TestArgs(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"swarm", "join-token"}, `"meshctl swarm join-token" requires exactly 1 argument (see 'meshctl swarm join-token --help')`},
		{[]string{"swarm", "join-token", "-q", "worker", "manager"}, `"meshctl swarm join-token" requires exactly 1 argument`},
		{[]string{"swarm", "join-token", "--rotate", "leader"}, `unknown role "leader": want worker or manager`},
		{[]string{"swarm", "join", "--token", workerToken}, `"meshctl swarm join" requires exactly 1 argument`},
		{[]string{"swarm", "join", "192.168.33.10"}, "swarm join needs --token"},
		{[]string{"swarm", "init", "192.168.33.10"}, `unknown command "192.168.33.10" for "meshctl swarm init"`},
		{[]string{"swarm", "leave", "now"}, `unknown command "now" for "meshctl swarm leave"`},
		{[]string{"node", "promote"}, `"meshctl node promote" requires at least 1 argument (see 'meshctl node promote --help')`},
		{[]string{"node", "demote"}, `"meshctl node demote" requires at least 1 argument`},
		{[]string{"lab", "stop"}, `"meshctl lab stop" requires exactly 1 argument (see 'meshctl lab stop --help')`},
		{[]string{"lab", "start", "node1", "node2"}, `"meshctl lab start" requires exactly 1 argument`},
		{[]string{"lab", "restart", "--kill"}, `"meshctl lab restart" requires exactly 1 argument`},
		{[]string{"lab", "start", "--kill", "node1"}, "unknown flag: --kill"},
		{[]string{"lab", "stop", "node2"}, "no lab is up"},
		{[]string{"lab", "up", "--nodes", "2", "--managers", "3"}, "--managers 3: want 1 to 2 (--nodes)"},
		{[]string{"lab", "up", "--managers", "1", "--no-swarm"}, "--managers and --no-swarm cannot be used together"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := execute(t, append([]string{"--socket", "/nonexistent/meshd.sock"}, tt.args...)...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got error %v, want one starting with %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("got output %q, want none", out)
			}
		})
	}
}
