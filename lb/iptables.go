package lb

import (
	"context"
	"fmt"
	"strings"
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

	exec execer // nil: nsExec; tests set a fake
}

var _ Rules = IPTables{}

// Apply runs iptables-restore --noflush with payload on stdin. An empty
// payload runs nothing.
func (t IPTables) Apply(ctx context.Context, payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	stdout, stderr, err := t.runner().run(ctx, t.NetNS, payload, "iptables-restore", "--noflush", "-w")
	if err != nil {
		out := append(append([]byte(nil), stdout...), stderr...)
		return fmt.Errorf("iptables-restore%s: %w: %s", t.where(), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Save runs iptables-save.
func (t IPTables) Save(ctx context.Context) ([]byte, error) { return t.save(ctx, "iptables-save") }

// SaveCounters runs "iptables-save -c": the same text with each chain's
// and each rule's [packets:bytes].
func (t IPTables) SaveCounters(ctx context.Context) ([]byte, error) {
	return t.save(ctx, "iptables-save", "-c")
}

func (t IPTables) save(ctx context.Context, argv ...string) ([]byte, error) {
	stdout, stderr, err := t.runner().run(ctx, t.NetNS, nil, argv...)
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w: %s", strings.Join(argv, " "), t.where(), err, strings.TrimSpace(string(stderr)))
	}
	return stdout, nil
}

func (t IPTables) runner() execer {
	if t.exec == nil {
		return nsExec{}
	}
	return t.exec
}

func (t IPTables) where() string {
	if t.NetNS == "" {
		return ""
	}
	return " in " + t.NetNS
}
