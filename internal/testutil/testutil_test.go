package testutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recordT stands in for t where the helper under test must fail: Fatalf
// records the message and ends the goroutine, as testing.T's does.
type recordT struct {
	testing.TB
	failed string
}

func (r *recordT) Helper() {}
func (r *recordT) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a recordT on its own goroutine (so Goexit ends only
// that) and returns the failure message, "" if none.
func run(t *testing.T, fn func(tb testing.TB)) string {
	r := &recordT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r.failed
}

func TestEventually(t *testing.T) {
	calls := 0
	msg := run(t, func(tb testing.TB) {
		Eventually(tb, time.Second, "third call", func() error {
			if calls++; calls < 3 {
				return fmt.Errorf("call %d", calls)
			}
			return nil
		})
	})
	if msg != "" || calls != 3 {
		t.Errorf("got failure %q after %d calls, want none after 3", msg, calls)
	}

	msg = run(t, func(tb testing.TB) {
		Eventually(tb, 30*time.Millisecond, "never", func() error { return errors.New("still red") })
	})
	if want := "never: not within 30ms: still red"; msg != want {
		t.Errorf("got failure %q, want %q", msg, want)
	}
}

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	*update = true
	Golden(t, path, "a\nb\n")
	*update = false
	if b, err := os.ReadFile(path); err != nil || string(b) != "a\nb\n" {
		t.Fatalf("after -update the file holds %q, %v; want %q", b, err, "a\nb\n")
	}
	Golden(t, path, []byte("a\nb\n"))

	r := &recordT{TB: t}
	errorf := &errorT{recordT: r}
	Golden(errorf, path, "a\nc\n")
	if !strings.Contains(errorf.msg, "mismatch (-want +got)") || !strings.Contains(errorf.msg, `"a\nc\n"`) {
		t.Errorf("mismatch reported as %q, want a -want +got diff", errorf.msg)
	}
}

// errorT records Errorf, which Golden uses for a mismatch.
type errorT struct {
	*recordT
	msg string
}

func (e *errorT) Errorf(format string, args ...any) { e.msg = fmt.Sprintf(format, args...) }
