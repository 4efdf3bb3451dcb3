package task

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// Reading a task's output file (Spec.LogPath): meshctl logs on the node
// that runs the task, and the agent's pushes for service logs, read it
// the same way, here.

// LogPoll is how often a followed log is read for more output: the file
// gives no event when it grows.
const LogPoll = 200 * time.Millisecond

// LogReader copies a task's output file: from its last Tail lines, then,
// with Follow, what the task appends until Ended says it will write no
// more or ctx ends.
type LogReader struct {
	Path   string
	Tail   int  // the last lines to start from (at most api.MaxTail); negative: the whole file
	Follow bool // keep reading what the task appends
	// Ended says whether the task will write no more; nil means never
	// (only ctx ends a follow). It is asked before each read, so that
	// whatever the task wrote before it ended is still copied.
	Ended func() bool
	// Flush, when set, is called after each read that copied something
	// and before each wait, so that a client sees lines as they come.
	Flush func()

	f *os.File // nil until the file exists
}

// Open opens the file and seeks to its last Tail lines. A missing file is
// no error: the task has not written yet, and a follow waits for it.
func (l *LogReader) Open() error {
	f, err := os.Open(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Tail >= 0 {
		off, err := TailOffset(f, l.Tail)
		if err == nil {
			_, err = f.Seek(off, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	l.f = f
	return nil
}

// Exists says whether Open found the file.
func (l *LogReader) Exists() bool { return l.f != nil }

// Close closes the file.
func (l *LogReader) Close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// CopyTo writes the output to w until it is all copied (without Follow),
// the task ends, ctx ends or w fails; only w's error is returned. A file
// that appears after Open is read from its start: it holds only what the
// task wrote since. Open must have been called; CopyTo closes the file.
func (l *LogReader) CopyTo(ctx context.Context, w io.Writer) error {
	defer l.Close()
	for {
		ended := l.Ended != nil && l.Ended() // before reading: whatever it wrote is in the file by now
		if l.f == nil {
			if f, err := os.Open(l.Path); err == nil {
				l.f = f
			}
		}
		if l.f != nil {
			if _, err := io.Copy(w, l.f); err != nil {
				return err
			}
		}
		if l.Flush != nil {
			l.Flush()
		}
		if !l.Follow || ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(LogPoll):
		}
	}
}

// TailOffset is where the last n lines of f start; a last line without
// its newline counts as a line.
func TailOffset(f *os.File, n int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if n == 0 || size == 0 {
		return size, nil
	}
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	end, seen := size, 0
	skipLast := true // the newline that ends the last line starts no line
	for end > 0 {
		start := max(0, end-chunk)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				skipLast = false
				continue
			}
			if skipLast {
				skipLast = false
				continue
			}
			if seen++; seen == n {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}
