package api

import (
	"regexp"
	"strings"
	"testing"
)

const testDigest = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcd"

func TestNewJoinTokenIsValidAndRandom(t *testing.T) {
	re := regexp.MustCompile(`^SWMTKN-1-` + testDigest + `-[0-9a-z]{25}$`)
	seen := map[string]bool{}
	for range 100 {
		tok := NewJoinToken(testDigest)
		if !re.MatchString(tok) {
			t.Fatalf("NewJoinToken() = %q, want match of %s", tok, re)
		}
		digest, secret, err := ParseJoinToken(tok)
		if err != nil || digest != testDigest || len(secret) != 25 {
			t.Fatalf("ParseJoinToken(%q) = %q, %q, %v", tok, digest, secret, err)
		}
		if seen[tok] {
			t.Fatalf("NewJoinToken() repeated %q", tok)
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
	good := NewJoinToken(testDigest)
	for _, tok := range []string{"", "SWMTKN-1-", "SWMTKN-1-short", strings.ToLower(good[:9]) + good[9:],
		strings.ToUpper(good), good + "x", good[:len(good)-1], strings.Replace(good, "-", "", 2),
		"SWMTKN-1-" + testDigest + "-aaaaaaaaaaaaaaaaaaaaaaaa!"} {
		if err := CheckToken(tok); err == nil && tok != good {
			t.Errorf("CheckToken(%q) = nil, want an error", tok)
		}
	}
	long := "SWMTKN-1-" + strings.Repeat("A", 1000)
	if err := CheckToken(long); err == nil || len(err.Error()) > 200 {
		t.Errorf("CheckToken(1009 bytes) = %v, want a short error", err)
	}
}

func FuzzParseJoinToken(f *testing.F) {
	f.Add(NewJoinToken(testDigest))
	f.Add("SWMTKN-1-")
	f.Add("SWMTKN-1-" + testDigest + "-" + strings.Repeat("z", 25))
	f.Fuzz(func(t *testing.T, s string) {
		digest, secret, err := ParseJoinToken(s)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Errorf("error quotes too much: %d bytes", len(err.Error()))
			}
			return
		}
		if TokenPrefix+digest+"-"+secret != s {
			t.Errorf("parse(%q) = %q, %q: does not rebuild the token", s, digest, secret)
		}
	})
}
