package api

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct {
		name, in, quote, clip string
	}{
		{"plain", "www", `"www"`, "www"},
		{"empty", "", `""`, `""`},
		{"newline", "a\nb", `"a\nb"`, `"a\nb"`},
		{"space", "a b", `"a b"`, `"a b"`},
		{"quote", `a"b`, `"a\"b"`, `"a\"b"`},
		{"at the limit", long[:64], `"` + long[:64] + `"`, long[:64]},
		{"cut", long, `"` + long[:64] + `"…`, `"` + long[:64] + `"…`},
		// 63 ASCII bytes then a 2-byte rune across the limit: the rune goes.
		{"cut before a rune", long[:63] + "é" + long, `"` + long[:63] + `"…`, `"` + long[:63] + `"…`},
		{"invalid UTF-8", "a\xffb", `"a\xffb"`, `"a\xffb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quote(tt.in); got != tt.quote {
				t.Errorf("Quote = %s, want %s", got, tt.quote)
			}
			if got := Clip(tt.in); got != tt.clip {
				t.Errorf("Clip = %s, want %s", got, tt.clip)
			}
		})
	}
}

func TestCutKeepsRunesWhole(t *testing.T) {
	s := strings.Repeat("€", 30) // 3 bytes each
	for n := 0; n <= len(s); n++ {
		got := Cut(s, n)
		if len(got) > n || len(got) < n-2 || len(got)%3 != 0 {
			t.Errorf("Cut(%d) = %d bytes, want the whole runes that fit", n, len(got))
		}
	}
}
