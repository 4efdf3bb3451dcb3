package ratelog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

// newLimiter is a limiter with a one-minute period on c.
func newLimiter(c *fakeClock) *Limiter {
	l := New(time.Minute)
	l.now = c.now
	return l
}

func TestAllow(t *testing.T) {
	type step struct {
		after          time.Duration // the clock moves first
		key            string
		wantOK         bool
		wantSuppressed int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first line passes, repeats are counted", []step{
			{0, "a", true, 0}, {time.Second, "a", false, 0}, {time.Second, "a", false, 0},
			{time.Minute, "a", true, 2}, {0, "a", false, 0},
		}},
		{"keys are independent", []step{
			{0, "a", true, 0}, {0, "b", true, 0}, {0, "a", false, 0}, {0, "b", false, 0},
		}},
		{"exactly a period later passes", []step{
			{0, "a", true, 0}, {time.Minute, "a", true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := newLimiter(c)
			for i, s := range tt.steps {
				c.add(s.after)
				ok, n := l.Allow(s.key)
				if ok != s.wantOK || n != s.wantSuppressed {
					t.Errorf("step %d (%s): Allow = %v, %d; want %v, %d", i, s.key, ok, n, s.wantOK, s.wantSuppressed)
				}
			}
		})
	}
}

// TestKeysAreBounded floods the limiter from more sources than it
// remembers: the extra ones share a key, so they cost one line too.
func TestKeysAreBounded(t *testing.T) {
	c := newClock()
	l := newLimiter(c)
	passed := 0
	for i := range 3 * maxKeys {
		if ok, _ := l.Allow(fmt.Sprint("10.0.", i/256, ".", i%256)); ok {
			passed++
		}
	}
	if passed != maxKeys+1 || len(l.keys) != maxKeys+1 {
		t.Errorf("%d lines passed, %d keys kept; want %d and %d", passed, len(l.keys), maxKeys+1, maxKeys+1)
	}
	// A period later the old keys are forgotten to make room.
	c.add(time.Minute)
	if ok, _ := l.Allow("new"); !ok || len(l.keys) > 2 {
		t.Errorf("a new key a period later: allowed %v with %d keys kept, want allowed with the rest forgotten", ok, len(l.keys))
	}
}

func TestLog(t *testing.T) {
	c := newClock()
	l := newLimiter(c)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	ctx := context.Background()
	for range 1000 {
		l.Log(ctx, log, slog.LevelWarn, "10.0.0.9", "bogus packet", "from", "10.0.0.9:1234")
		l.Log(ctx, log, slog.LevelDebug, "10.0.0.9", "not written, not counted")
	}
	c.add(time.Minute)
	l.Log(ctx, log, slog.LevelWarn, "10.0.0.9", "bogus packet", "from", "10.0.0.9:1234")
	want := "level=WARN msg=\"bogus packet\" from=10.0.0.9:1234\n" +
		"level=WARN msg=\"bogus packet\" from=10.0.0.9:1234 suppressed=999\n"
	if got := buf.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(buf.String(), "not written") {
		t.Error("a line below the level was written")
	}
}
