package api

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
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

// Seal encrypts and authenticates plaintext for a holder of secret (a
// join token or a node secret): AES-256-GCM under a key derived from the
// secret with HKDF-SHA256, with a random nonce in front. It is how a join
// response carries the gossip key and the node's secret over the cluster
// port until that port is TLS.
func Seal(secret string, plaintext []byte) ([]byte, error) {
	aead, err := sealer(secret)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(nonce) // never fails since Go 1.24
	return aead.Seal(nonce, nonce, plaintext, []byte(sealLabel)), nil
}

// Open reverses [Seal]; it fails on anything not sealed for secret.
func Open(secret string, sealed []byte) ([]byte, error) {
	aead, err := sealer(secret)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("open sealed secrets: too short")
	}
	out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(sealLabel))
	if err != nil {
		return nil, errors.New("open sealed secrets: not sealed with this token")
	}
	return out, nil
}

const sealLabel = "meshd-join-secrets-v1"

func sealer(secret string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, sealLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("derive seal key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal cipher: %w", err)
	}
	return cipher.NewGCM(block)
}
