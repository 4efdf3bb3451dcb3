package lb

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/meshd/meshd/internal/nsfile"
)

// Rules applies iptables-restore payloads: "iptables-restore --noflush -w".
// One call per batch, never one process per rule.
type Rules interface {
	Apply(ctx context.Context, payload []byte) error
	// Save returns every table's rules: "iptables-save". The syncers read
	// it for a full resync, to find what is really there.
	Save(ctx context.Context) ([]byte, error)
}

// IPTables is the real Rules. The zero value works in the caller's network
// namespace.
type IPTables struct {
	// NetNS is the namespace file to work in, e.g.
	// /var/run/meshd/netns/ingress_sbox; "" is the caller's namespace.
	// Each call runs one process on a thread that has entered it.
	NetNS string
}

var _ Rules = IPTables{}

// Apply runs iptables-restore --noflush with payload on stdin. An empty
// payload runs nothing.
func (t IPTables) Apply(ctx context.Context, payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	out, err := t.run(ctx, payload, "iptables-restore", "--noflush", "-w")
	if err != nil {
		return fmt.Errorf("iptables-restore%s: %w: %s", t.where(), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Save runs iptables-save.
func (t IPTables) Save(ctx context.Context) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	err := t.in(func() error {
		cmd := exec.CommandContext(ctx, "iptables-save")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return cmd.Run()
	})
	if err != nil {
		return nil, fmt.Errorf("iptables-save%s: %w: %s", t.where(), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// run runs name with args (and stdin, if not nil) in the namespace and
// returns its combined output.
func (t IPTables) run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	var out []byte
	err := t.in(func() error {
		cmd := exec.CommandContext(ctx, name, args...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	return out, err
}

// in runs fn in the namespace: a child started from a thread that entered
// it is born there, so no nsenter process is needed.
func (t IPTables) in(fn func() error) error {
	if t.NetNS == "" {
		return fn()
	}
	return nsfile.Do(t.NetNS, fn)
}

func (t IPTables) where() string {
	if t.NetNS == "" {
		return ""
	}
	return " in " + t.NetNS
}
