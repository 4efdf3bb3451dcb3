package api

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// Defaults every node and meshctl agree on.
const (
	// DefaultAPIPort is the cluster API: joins and forwarded writes (Swarm's 2377).
	DefaultAPIPort = 2377
	// TokenPrefix marks a join token, as docker's SWMTKN-1- does.
	TokenPrefix = "SWMTKN-1-"
	// tokenSecretLen is the number of base-36 characters after the
	// prefix: about 258 bits of randomness.
	tokenSecretLen = 50
	// idLen is the length of a node, cluster, network, service or task ID,
	// as docker's 25-character swarm IDs.
	idLen = 25
)

// Version is the meshd version, carried in node metadata and printed by
// meshctl version.
var Version = "0.1.0-dev"

// NewID returns a docker-shaped 25-character base-36 object ID.
func NewID() string { return base36(idLen) }

// NewToken returns a fresh join token in Swarm's shape: "SWMTKN-1-" and 50
// base-36 characters from crypto/rand.
func NewToken() string { return TokenPrefix + base36(tokenSecretLen) }

// base36 returns n characters from 0-9a-z, each equally likely.
func base36(n int) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(buf) // never fails since Go 1.24
		for _, c := range buf {
			// 252 = 7*36: rejecting the rest keeps every character equally likely.
			if c < 252 && len(out) < n {
				out = append(out, alphabet[c%36])
			}
		}
	}
	return string(out)
}

// CheckToken says why s is not a join token, or nil. The error never
// quotes more than the token's first characters.
func CheckToken(s string) error {
	secret, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok || len(secret) < 16 {
		return fmt.Errorf("invalid token %q: want %s followed by at least 16 characters", short(s), TokenPrefix)
	}
	for _, c := range secret {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return fmt.Errorf("invalid token %q: only 0-9, a-z and - may follow %s", short(s), TokenPrefix)
		}
	}
	return nil
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
