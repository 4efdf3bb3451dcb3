package api

import (
	"regexp"
	"strings"
	"testing"
)

func TestNewTokenIsValidAndRandom(t *testing.T) {
	re := regexp.MustCompile(`^SWMTKN-1-[0-9a-z]{50}$`)
	seen := map[string]bool{}
	for range 100 {
		tok := NewToken()
		if !re.MatchString(tok) {
			t.Fatalf("NewToken() = %q, want match of %s", tok, re)
		}
		if err := CheckToken(tok); err != nil {
			t.Fatalf("CheckToken(NewToken()) = %v, want nil", err)
		}
		if seen[tok] {
			t.Fatalf("NewToken() repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-z]{25}$`)
	a, b := NewID(), NewID()
	if !re.MatchString(a) || a == b {
		t.Fatalf("NewID() = %q then %q, want two different 25-character base-36 IDs", a, b)
	}
}

func TestCheckToken(t *testing.T) {
	for _, tok := range []string{"", "SWMTKN-1-", "SWMTKN-1-short", "swmtkn-1-aaaaaaaaaaaaaaaaaaaa",
		"SWMTKN-1-AAAAAAAAAAAAAAAAAAAA", "SWMTKN-1-aaaaaaaaaaaaaaaaaaa!"} {
		if err := CheckToken(tok); err == nil {
			t.Errorf("CheckToken(%q) = nil, want an error", tok)
		}
	}
	long := "SWMTKN-1-" + strings.Repeat("A", 1000)
	if err := CheckToken(long); err == nil || len(err.Error()) > 200 {
		t.Errorf("CheckToken(1009 bytes) = %v, want a short error", err)
	}
}
