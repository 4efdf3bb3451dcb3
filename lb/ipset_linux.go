//go:build linux

package lb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/meshd/meshd/internal/nsfile"
)

// netlinkSets is the real setApplier: it speaks ipset's netlink protocol
// in the namespace, so that a sync that changes a few members costs
// microseconds rather than an ipset process (about 2 ms each, which is
// what removing a service is measured against). vishvananda/netlink
// creates, flushes and destroys sets; it has no attribute for a member's
// skbmark, so adds and deletes build their requests with its nl package.
// Every request goes without NLM_F_EXCL, as "ipset -exist": creating a
// set that is there, adding a member that is there (its comment and mark
// are rewritten) and deleting one that is not succeed.
type netlinkSets struct{}

func (netlinkSets) apply(netns string, table []byte) error {
	run := func() error {
		sc := bufio.NewScanner(bytes.NewReader(table))
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if err := setCommand(l); err != nil {
				return err
			}
		}
		return sc.Err()
	}
	if netns == "" {
		return run()
	}
	return nsfile.Do(netns, run)
}

// setCommand applies one line of an "*ipset" table.
func setCommand(l string) error {
	switch {
	case l == "" || l == "*"+setTable || l == "COMMIT":
		return nil
	case strings.HasPrefix(l, ":"):
		name, _, _ := strings.Cut(l[1:], " ")
		kind := setKindOf(name)
		if kind.typ == "" {
			return fmt.Errorf("ipset %s: not a set of ours", name)
		}
		opts := netlink.IpsetCreateOptions{Replace: true, Comments: true, Skbinfo: true}
		if kind.typ == "bitmap:port" {
			// Revision 3 is bitmap:port's with skbinfo.
			opts.PortFrom, opts.PortTo, opts.Revision = 0, 65535, 3
		}
		if err := netlink.IpsetCreate(name, kind.typ, opts); err != nil {
			return fmt.Errorf("ipset create %s: %w", name, err)
		}
		if err := netlink.IpsetFlush(name); err != nil {
			return fmt.Errorf("ipset flush %s: %w", name, err)
		}
		return nil
	case strings.HasPrefix(l, "-X "):
		name := strings.TrimSpace(l[3:])
		if err := netlink.IpsetDestroy(name); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("ipset destroy %s: %w", name, err)
		}
		return nil
	case strings.HasPrefix(l, "-A "), strings.HasPrefix(l, "-D "):
		set, member, _ := strings.Cut(l[3:], " ")
		cmd := nl.IPSET_CMD_ADD
		if l[1] == 'D' {
			cmd = nl.IPSET_CMD_DEL
		}
		if err := memberRequest(cmd, set, member); err != nil {
			return fmt.Errorf("ipset %s %s %s: %w", map[int]string{nl.IPSET_CMD_ADD: "add", nl.IPSET_CMD_DEL: "del"}[cmd], set, member, err)
		}
		return nil
	}
	return fmt.Errorf("ipset payload: unexpected %q", l)
}

// memberRequest adds or deletes a member of a mark set, spelled as
// "ipset save" prints it (sets.go).
func memberRequest(cmd int, set, member string) error {
	m := setMemberRE.FindStringSubmatch(member)
	if m == nil {
		return fmt.Errorf("not a member of a mark set")
	}
	data := nl.NewRtAttr(nl.IPSET_ATTR_DATA|int(nl.NLA_F_NESTED), nil)
	if setKindOf(set).proto != "" {
		port, err := strconv.ParseUint(m[1], 10, 16)
		if err != nil {
			return fmt.Errorf("port %q: %w", m[1], err)
		}
		data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_PORT|int(nl.NLA_F_NET_BYTEORDER), binary.BigEndian.AppendUint16(nil, uint16(port))))
	} else {
		a, err := netip.ParseAddr(m[1])
		if err != nil || !a.Is4() {
			return fmt.Errorf("address %q: not IPv4", m[1])
		}
		ip := nl.NewRtAttr(nl.IPSET_ATTR_IPADDR_IPV4|int(nl.NLA_F_NET_BYTEORDER), a.AsSlice())
		data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_IP|int(nl.NLA_F_NESTED), ip.Serialize()))
	}
	if cmd == nl.IPSET_CMD_ADD {
		mark, err := strconv.ParseUint(m[3], 0, 32)
		if err != nil {
			return fmt.Errorf("mark %q: %w", m[3], err)
		}
		data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_COMMENT, nl.ZeroTerminated(m[2])))
		// The mark and its mask, as one 64-bit value.
		data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_SKBMARK|int(nl.NLA_F_NET_BYTEORDER), binary.BigEndian.AppendUint64(nil, mark<<32|0xffffffff)))
	}
	data.AddChild(&nl.Uint32Attribute{Type: nl.IPSET_ATTR_LINENO | nl.NLA_F_NET_BYTEORDER, Value: 0})

	req := nl.NewNetlinkRequest(cmd|(unix.NFNL_SUBSYS_IPSET<<8), nl.GetIpsetFlags(cmd))
	req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(unix.AF_INET), Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_SETNAME, nl.ZeroTerminated(set)))
	req.AddData(data)
	_, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	var errno syscall.Errno
	if errors.As(err, &errno) && int(errno) >= nl.IPSET_ERR_PRIVATE {
		return nl.IPSetError(uintptr(errno))
	}
	return err
}
