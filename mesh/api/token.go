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
	// digestLen is the length of the root CA digest in a token.
	digestLen = 50
	// tokenSecretLen is the number of base-36 characters of a token's
	// secret: about 129 bits of randomness, as Swarm's.
	tokenSecretLen = 25
	// idLen is the length of a node, cluster, network, service or task ID,
	// as docker's 25-character swarm IDs.
	idLen = 25
)

// Version is the meshd version, carried in node metadata and printed by
// meshctl version.
var Version = "0.1.0-dev"

// NewID returns a docker-shaped 25-character base-36 object ID.
func NewID() string { return base36(idLen) }

// NewJoinToken returns a join token in Swarm's shape:
// "SWMTKN-1-<root CA digest, 50 base-36 characters>-<secret, 25 base-36
// characters from crypto/rand>". The digest lets a joining node check the
// manager's CA before it sends the secret.
func NewJoinToken(caDigest string) string {
	return TokenPrefix + caDigest + "-" + base36(tokenSecretLen)
}

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

// ParseJoinToken splits a join token into the root CA digest and the
// secret. The error never quotes more than the token's first characters.
func ParseJoinToken(s string) (digest, secret string, err error) {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	digest, secret, ok2 := strings.Cut(rest, "-")
	if !ok || !ok2 || len(digest) != digestLen || len(secret) != tokenSecretLen || !isBase36(digest) || !isBase36(secret) {
		return "", "", fmt.Errorf("invalid join token %q: want %s, 50 and 25 characters of 0-9a-z joined by -", short(s), TokenPrefix)
	}
	return digest, secret, nil
}

// CheckToken says why s is not a join token, or nil.
func CheckToken(s string) error {
	_, _, err := ParseJoinToken(s)
	return err
}

func isBase36(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
