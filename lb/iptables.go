package lb

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Rules applies iptables-restore payloads: "iptables-restore --noflush -w".
// One call per batch, never one process per rule.
type Rules interface {
	Apply(ctx context.Context, payload []byte) error
	// EnsureJump makes sure chain in table starts with a rule jumping to
	// target with the given match ("iptables -C || iptables -I").
	EnsureJump(ctx context.Context, table, chain string, match []string, target string) error
}

// IPTables is the real Rules, working in the caller's network namespace.
type IPTables struct{}

var _ Rules = IPTables{}

// Apply runs iptables-restore --noflush with payload on stdin.
func (IPTables) Apply(ctx context.Context, payload []byte) error {
	cmd := exec.CommandContext(ctx, "iptables-restore", "--noflush", "-w")
	cmd.Stdin = bytes.NewReader(payload)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// EnsureJump inserts the jump at the top of chain unless it is there.
func (IPTables) EnsureJump(ctx context.Context, table, chain string, match []string, target string) error {
	rule := append(append([]string{}, match...), "-j", target)
	check := append([]string{"-w", "-t", table, "-C", chain}, rule...)
	if exec.CommandContext(ctx, "iptables", check...).Run() == nil {
		return nil
	}
	insert := append([]string{"-w", "-t", table, "-I", chain, "1"}, rule...)
	if out, err := exec.CommandContext(ctx, "iptables", insert...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables -t %s -I %s %s: %w: %s", table, chain, strings.Join(rule, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
