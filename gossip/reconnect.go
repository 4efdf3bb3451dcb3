package gossip

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// reconnectLoop tries one dead member every ReconnectInterval, as
// NetworkDB does: memberlist never probes the dead and stops gossiping to
// them after GossipToTheDeadTime, so without it two sides of a healed
// partition would never find each other again. A push/pull with the
// member is enough: each side learns the other is alive, memberlist
// reports the join and the announcements bring the entries back.
func (db *DB) reconnectLoop(ctx context.Context) {
	every(ctx, db.cfg.ReconnectInterval, func(now time.Time) {
		addr, name, ok := db.reconnectTarget(now)
		if !ok {
			return
		}
		if _, err := db.ml.Join([]string{addr}); err != nil {
			db.log.Debug("reconnect to a dead member", "member", name, "addr", addr, "err", err)
		}
	})
}

// reconnectTarget picks a random member that died (did not leave) less
// than ReconnectTimeout ago.
func (db *DB) reconnectTarget(now time.Time) (addr, name string, ok bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.left || db.closed {
		return "", "", false
	}
	var dead []Member
	for _, r := range db.members {
		if r.State == StateDead && r.Name != db.cfg.Name && now.Sub(r.downAt) < db.cfg.ReconnectTimeout {
			dead = append(dead, r.Member)
		}
	}
	if len(dead) == 0 {
		return "", "", false
	}
	m := dead[rand.IntN(len(dead))]
	return net.JoinHostPort(m.Addr, strconv.Itoa(m.Port)), m.Name, true
}
