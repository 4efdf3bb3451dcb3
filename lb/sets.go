package lb

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// The ipsets that hold a large mark chain's entries (buckets.go).
//
// Payloads and saved text carry them as one more table, "*ipset", in
// iptables-save's syntax: ":NAME - [0:0]" declares a set (creates it, or
// flushes it), "-A NAME MEMBER" and "-D NAME MEMBER" add and delete a
// member, "-X NAME" destroys it. The syncers then diff, lay out and check
// sets exactly as chains, and a saved text (a kernel snapshot, the
// tracer's input) holds a namespace's whole netfilter state. A member is
// spelled as "ipset save" prints it, so that what was written and what is
// read back compare as text:
//
//	*ipset
//	:MESH-PREROUTING-TCP - [0:0]
//	-A MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x100
//	COMMIT
//
// which IPTables applies over netlink (ipset_linux.go) as these commands
// would,
//
//	ipset -exist create MESH-PREROUTING-TCP bitmap:port range 0-65535 comment skbinfo
//	ipset flush MESH-PREROUTING-TCP
//	ipset -exist add MESH-PREROUTING-TCP 8888 comment "www" skbmark 0x100
//
// and which "ipset list" shows with the service's name beside each port.

// setTable is the pseudo-table of ipsets.
const setTable = "ipset"

// setKind is one of the sets a mark chain splits into.
type setKind struct {
	suffix string // after the parent chain's name
	typ    string // ipset's type
	proto  string // "" for the VIP set
}

// setKinds in the order their SET rules are written: a port's mark is
// set after a VIP's, as the MARK rules sort.
var setKinds = []setKind{
	{"-VIP", "hash:ip", ""},
	{"-TCP", "bitmap:port", "tcp"},
	{"-UDP", "bitmap:port", "udp"},
}

func setKindOf(name string) setKind {
	for _, s := range setKinds {
		if strings.HasSuffix(name, s.suffix) {
			return s
		}
	}
	return setKind{}
}

// ref is the rule of the parent chain that sets the mark from set name.
func (s setKind) ref(name string) string {
	r := "-j SET --map-set " + name + " dst --map-mark"
	if s.proto != "" {
		r = "-p " + s.proto + " " + r
	}
	return r
}

var (
	markPortRE = regexp.MustCompile(`^-p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -m comment --comment (\S+) -j MARK --set-mark (0x[0-9a-f]+)$`)
	markVIPRE  = regexp.MustCompile(`^-d ([\d.]+)/32 -m comment --comment (\S+) -j MARK --set-mark (0x[0-9a-f]+)$`)
)

// setMemberRE reads a member of a mark set: its key (a port or an
// address), comment (the service's name) and mark.
var setMemberRE = regexp.MustCompile(`^(\S+) comment "([^"]*)" skbmark (0x[0-9a-f]+)$`)

// setApplier applies an "*ipset" table in a namespace ("" = the caller's).
// The real one is netlinkSets; tests swap in a fake.
type setApplier interface {
	apply(netns string, table []byte) error
}

// markMember turns a MARK entry of chain into its set and member.
func markMember(chain, rule string) (set, member string, ok bool) {
	if m := markPortRE.FindStringSubmatch(rule); m != nil {
		return chain + "-" + strings.ToUpper(m[1]), fmt.Sprintf("%s comment %q skbmark %s", m[2], m[3], m[4]), true
	}
	if m := markVIPRE.FindStringSubmatch(rule); m != nil {
		return chain + "-VIP", fmt.Sprintf("%s comment %q skbmark %s", m[1], m[2], m[3]), true
	}
	return "", "", false
}

// splitSetPayload cuts a payload into what must run before the iptables
// tables (sets declared, members added and deleted: a SET rule needs its
// set) and after them (sets destroyed: a set a rule still names cannot
// be), each as an "*ipset" table, and the iptables tables themselves.
func splitSetPayload(payload []byte) (pre, rules, post []byte) {
	var inSets bool
	var pb, qb, rb bytes.Buffer
	for line := range bytes.Lines(payload) {
		l := string(bytes.TrimSpace(line))
		switch {
		case l == "*"+setTable:
			inSets = true
		case inSets && l == "COMMIT":
			inSets = false
		case inSets && strings.HasPrefix(l, "-X "):
			qb.WriteString(l + "\n")
		case inSets:
			pb.WriteString(l + "\n")
		default:
			rb.Write(line)
		}
	}
	wrap := func(b bytes.Buffer) []byte {
		if b.Len() == 0 {
			return nil
		}
		return []byte("*" + setTable + "\n" + b.String() + "COMMIT\n")
	}
	return wrap(pb), rb.Bytes(), wrap(qb)
}

// savedSets turns "ipset save" output into an "*ipset" table (nothing
// when there is no set).
func savedSets(data []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		switch {
		case len(f) >= 2 && f[0] == "create":
			fmt.Fprintf(&b, ":%s - [0:0]\n", f[1])
		case len(f) >= 3 && f[0] == "add":
			b.WriteString("-A " + strings.TrimSpace(string(line))[len("add "):] + "\n")
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return []byte("*" + setTable + "\n" + b.String() + "COMMIT\n")
}
