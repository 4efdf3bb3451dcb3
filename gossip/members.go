package gossip

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberState is a member's health as this node sees it.
type MemberState int

const (
	// StateAlive: the member answers probes (or has not yet failed one).
	StateAlive MemberState = iota
	// StateSuspect: a probe from this node to the member went unanswered;
	// it is dead unless it refutes before the suspicion timeout. It
	// still counts as a member. Only this node's own failed probes make
	// a member suspect here (memberlist tells its delegates nothing about
	// suspicion; see [logWriter]), and the member is alive again at this
	// node's next probe it answers.
	StateSuspect
	// StateDead: the member failed its probes and the suspicion timeout.
	StateDead
	// StateLeft: the member left with [DB.Leave].
	StateLeft
)

func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("MemberState(%d)", int(s))
}

// Member is a node of the cluster as this node sees it.
type Member struct {
	Name  string
	Addr  string // advertised IP address
	Port  int    // advertised gossip port
	Meta  []byte // the member's [Config].Meta; a copy owned by the caller
	State MemberState
}

// MemberChange is a member's change of state, for [Config].MemberChanged.
type MemberChange struct {
	Member
	// Old is the state before the change; New reports a member this node
	// had not seen before (Old is then meaningless).
	Old MemberState
	New bool
}

// notifyLocked reports a change of a member's state to the config's
// callback.
func (db *DB) notifyLocked(m Member, old MemberState, isNew bool) {
	if db.cfg.MemberChanged == nil || (!isNew && old == m.State) {
		return
	}
	m.Meta = clone(m.Meta)
	db.cfg.MemberChanged(MemberChange{Member: m, Old: old, New: isNew})
}

type memberRecord struct {
	Member
	leaving bool      // it said it is leaving: its departure is StateLeft
	downAt  time.Time // when it was last seen dead or left
}

// Members returns every member this node knows, itself included, sorted by
// name: the alive ones and those seen dead or left since this node started.
func (db *DB) Members() []Member {
	db.mu.Lock()
	defer db.mu.Unlock()
	out := make([]Member, 0, len(db.members))
	for _, r := range db.members {
		m := r.Member
		m.Meta = clone(m.Meta)
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// NumAlive returns how many members this node sees alive, itself
// included: [DB.Members] counted without copying them. It may be called
// from any goroutine, also after Shutdown.
func (db *DB) NumAlive() int { return int(db.numAlive.Load()) }

// memberUp records a member that joined (or came back) or changed its
// metadata. On a join it sends the member this node's own entries, which is
// how a returning node gets back what was dropped when it went away, and how
// it re-announces its own (it does the same towards us).
func (db *DB) memberUp(n *memberlist.Node, joined bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return
	}
	r, ok := db.members[n.Name]
	if !ok {
		r = &memberRecord{}
		db.members[n.Name] = r
	}
	old := r.State
	r.Member = Member{Name: n.Name, Addr: n.Addr.String(), Port: int(n.Port), Meta: clone(n.Meta), State: StateAlive}
	if joined {
		r.leaving = false
		db.log.Info("member joined", "member", n.Name, "addr", r.Addr, "port", r.Port)
	}
	db.countAliveLocked()
	if joined {
		db.notifyLocked(r.Member, old, !ok)
	}
	if joined && n.Name != db.cfg.Name {
		db.announceLocked(n.Name, msgAnnounce)
	}
}

// memberDown records a member that died or left and drops its entries: they
// stop counting until it comes back and announces them again.
func (db *DB) memberDown(n *memberlist.Node) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return
	}
	r, ok := db.members[n.Name]
	if !ok {
		r = &memberRecord{Member: Member{Name: n.Name, Addr: n.Addr.String(), Port: int(n.Port), Meta: clone(n.Meta)}}
		db.members[n.Name] = r
	}
	old := r.State
	r.State, r.downAt = StateDead, time.Now()
	if r.leaving || (n.Name == db.cfg.Name && db.left) {
		r.State = StateLeft
	}
	db.countAliveLocked()
	db.log.Info("member gone", "member", n.Name, "state", r.State)
	db.notifyLocked(r.Member, old, !ok)
	if n.Name != db.cfg.Name {
		db.applyLocked(db.st.dropOwner(n.Name))
	}
}

// markLeavingLocked records that a member announced its Leave. The message
// usually arrives before memberlist reports the departure, but gossip may
// reorder them.
func (db *DB) markLeavingLocked(name string) {
	r, ok := db.members[name]
	if !ok {
		return
	}
	r.leaving = true
	if r.State == StateDead {
		r.State = StateLeft
		db.notifyLocked(r.Member, StateDead, false)
	}
}

func (db *DB) aliveLocked(name string) bool {
	r, ok := db.members[name]
	return ok && r.State.up()
}

// up reports a state that counts as a member: alive or suspect.
func (s MemberState) up() bool { return s == StateAlive || s == StateSuspect }

// memberSuspect records that this node's probe of an alive member failed.
func (db *DB) memberSuspect(name string) { db.probed(name, StateAlive, StateSuspect) }

// memberAnswered records that a member answered this node's probe: a
// suspect one is alive again (it refuted the suspicion).
func (db *DB) memberAnswered(name string) { db.probed(name, StateSuspect, StateAlive) }

// probed moves a known member from one state to another after this
// node's probe, and tells MemberChanged; a member in any other state is
// left alone (dead and left come from memberlist's verdicts only).
func (db *DB) probed(name string, from, to MemberState) {
	db.mu.Lock()
	defer db.mu.Unlock()
	r, ok := db.members[name]
	if db.closed || !ok || r.State != from {
		return
	}
	r.State = to
	db.notifyLocked(r.Member, from, false)
}

func (db *DB) countAliveLocked() {
	n := 0
	for _, r := range db.members {
		if r.State.up() {
			n++
		}
	}
	db.numAlive.Store(int32(n))
}
