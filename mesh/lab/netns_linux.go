package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/meshd/meshd/internal/nsfile"
)

// addNetns is "ip netns add NAME": [nsfile.Ensure] in /run/netns, which
// also turns IPv6 off (the underlay is IPv4, as in the tutorials: no
// link-local routes, no router solicitations) and brings lo up. Like ip, it
// fails if the namespace exists.
func addNetns(name string) error {
	created, err := nsfile.Ensure(netnsPath(name))
	if err != nil {
		return err
	}
	if !created {
		return fmt.Errorf("add netns %s: already exists", name)
	}
	return nil
}

// ip runs "ip [-n NS] ARGS…" and returns its standard output; the error
// quotes the command and ip's message. An ip with no -n runs in the
// namespace meshctl started in: only threads locked for good ever enter
// another one (see nsfile), so the thread it forks from is never one.
func ip(c ipCmd) ([]byte, error) {
	argv := c.argv()
	out, err := exec.Command("ip", argv...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("ip %s: %w", strings.Join(argv, " "), err)
	}
	return out, nil
}

// wire builds the underlay with the commands [underlayCmds] lists, and
// keeps its bridge out of iptables.
func (l *Lab) wire() error {
	for _, c := range underlayCmds(l.prefix, l.nodes) {
		if _, err := ip(c); err != nil {
			return err
		}
	}
	return plainSwitch(netnsPath(l.prefix + underlaySuffix))
}

// plainSwitch turns br_netfilter off in the underlay's namespace. Where
// the module is loaded, a new namespace has it on, and every frame the
// bridge forwards would go through that namespace's IPv4 hooks, a cost a
// physical switch between VMs does not have, paid twice by a packet that
// crosses VXLAN. The underlay has no rules to apply.
func plainSwitch(ns string) error {
	for _, f := range []string{"iptables", "ip6tables", "arptables"} {
		key := "net/bridge/bridge-nf-call-" + f
		if err := nsfile.WriteSysctl(ns, key, "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("underlay %s: %w", key, err)
		}
	}
	return nil
}

// CheckHermetic returns an error naming every route of every namespace of
// the lab, in any table but "local", that is a default route or leads
// outside 192.168.33.0/24: proof that no packet of the lab can leave it. It
// checks the lab as Up built it; a running meshd adds routes of its own
// (mesh_gwbridge) to the nodes.
func (l *Lab) CheckHermetic() error {
	var errs []error
	for _, ns := range netnsNames(l.prefix, l.n) {
		out, err := ip(ipCmd{ns, []string{"-j", "route", "show", "table", "all"}})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		leaks, err := leavingRoutes(out)
		if err != nil {
			errs = append(errs, fmt.Errorf("netns %s: %w", ns, err))
		}
		for _, r := range leaks {
			errs = append(errs, fmt.Errorf("netns %s: route %s leaves the lab", ns, r))
		}
	}
	return errors.Join(errs...)
}

// links is "ip [-n NS] -j addr show": every link of a namespace with its
// addresses.
func links(ns string) ([]link, error) {
	out, err := ip(ipCmd{ns, []string{"-j", "addr", "show"}})
	if err != nil {
		return nil, err
	}
	return parseJSON[link](out, "addr")
}
