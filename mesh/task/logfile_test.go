package task

import (
	"os"
	"strings"
	"testing"
)

func TestTailOffset(t *testing.T) {
	for _, tt := range []struct {
		text string
		n    int
		want string
	}{
		{"a\nb\nc\n", 1, "c\n"}, {"a\nb\nc", 1, "c"}, {"a\nb\nc", 2, "b\nc"}, {"\n\n", 1, "\n"}, {"", 3, ""},
		{strings.Repeat("x\n", 100000), 2, "x\nx\n"}, // across reads of 64 KiB
	} {
		f, err := os.CreateTemp(t.TempDir(), "log")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.WriteString(tt.text)
		off, err := TailOffset(f, tt.n)
		f.Close()
		if err != nil || tt.text[off:] != tt.want {
			t.Errorf("last %d of %.20q: got %q (%v), want %q", tt.n, tt.text, tt.text[off:], err, tt.want)
		}
	}
}
