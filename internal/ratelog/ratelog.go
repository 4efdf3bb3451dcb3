// Package ratelog keeps repeated log lines from flooding a log. A line is
// logged under a key (the source address of a bogus packet, say); another
// line under the same key within the period is only counted, and the next
// line logged for that key says how many were left out. A peer that sends
// a thousand bogus packets a second thus costs one line a minute, and the
// log still tells how many there were.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the keys remembered, whatever a flood's sources: beyond
// it, after forgetting the keys whose period is over, new keys share one.
const maxKeys = 1024

// overflowKey is the key lines share while maxKeys are remembered.
const overflowKey = "\x00overflow"

// Limiter lets one line per key through per period. It is safe for
// concurrent use.
type Limiter struct {
	period time.Duration
	now    func() time.Time // the clock; tests set it

	mu   sync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	until      time.Time // lines before it are suppressed
	suppressed int
}

// New returns a limiter that lets a line per key through every period.
func New(period time.Duration) *Limiter {
	return &Limiter{period: period, now: time.Now, keys: map[string]*keyState{}}
}

// Allow reports whether a line under key may be logged now and, when it
// may, how many lines under key were suppressed since the last allowed.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st, found := l.keys[key]
	if !found && len(l.keys) >= maxKeys {
		l.forgetLocked(now)
		if len(l.keys) >= maxKeys {
			key = overflowKey
			st, found = l.keys[key]
		}
	}
	if !found {
		l.keys[key] = &keyState{until: now.Add(l.period)}
		return true, 0
	}
	if now.Before(st.until) {
		st.suppressed++
		return false, 0
	}
	n := st.suppressed
	st.until, st.suppressed = now.Add(l.period), 0
	return true, n
}

// forgetLocked drops the keys whose period is over: their next line
// would be allowed anyway. Their suppressed counts are lost.
func (l *Limiter) forgetLocked(now time.Time) {
	for k, st := range l.keys {
		if !now.Before(st.until) {
			delete(l.keys, k)
		}
	}
}

// Log logs msg and args at level through log when [Limiter.Allow] lets
// key through, with "suppressed" and the count when lines were left out.
// A line log would not write (below its level) is not counted.
func (l *Limiter) Log(ctx context.Context, log *slog.Logger, level slog.Level, key, msg string, args ...any) {
	if !log.Enabled(ctx, level) {
		return
	}
	ok, n := l.Allow(key)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(ctx, level, msg, args...)
}
