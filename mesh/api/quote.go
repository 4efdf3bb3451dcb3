package api

import (
	"strconv"
	"unicode/utf8"
)

// MaxQuoted is how much of a caller's input an error message repeats, in
// bytes: enough to recognise it, too little for a request to flood a log
// or a terminal through the errors it provokes.
const MaxQuoted = 64

// Quote returns s as a Go string literal cut to MaxQuoted bytes, with "…"
// after the closing quote when it was cut. Newlines and control characters
// come out escaped, so an error quoting it stays one line.
func Quote(s string) string {
	cut := Cut(s, MaxQuoted)
	if len(cut) < len(s) {
		return strconv.Quote(cut) + "…"
	}
	return strconv.Quote(s)
}

// Clip returns s as it is when it reads as a name or an ID (printable
// ASCII without spaces, quotes or backslashes, at most MaxQuoted bytes),
// so that "service www not found" keeps docker's wording; anything else,
// the empty string included, is [Quote]d.
func Clip(s string) string {
	if s == "" || len(s) > MaxQuoted {
		return Quote(s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return Quote(s)
		}
	}
	return s
}

// Cut returns at most the first n bytes of s, shortened further so as not
// to split a UTF-8 sequence.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// s[i] is the first byte dropped: back off while it continues a
	// sequence, at most as far as a sequence can be long.
	i := n
	for j := 0; j < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	return s[:i]
}
