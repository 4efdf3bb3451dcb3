package mesh

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// tokenPrefix marks a join token, as docker's SWMTKN-1- does.
const tokenPrefix = "SWMTKN-1-"

// tokenSecretLen is the number of base36 characters after the prefix:
// about 258 bits of randomness.
const tokenSecretLen = 50

// authHeader carries the HMAC that proves a cluster API caller knows the
// token. The token itself never crosses the wire.
const authHeader = "X-Meshd-Auth"

// maxClockSkew bounds how old a signed cluster request may be.
const maxClockSkew = 5 * time.Minute

var errBadSignature = errors.New("invalid join token")

// NewToken returns a fresh random join token.
func NewToken() (string, error) {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	b.WriteString(tokenPrefix)
	max := big.NewInt(int64(len(alphabet)))
	for range tokenSecretLen {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate token: %w", err)
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String(), nil
}

// CheckToken says why s is not a join token, or nil.
func CheckToken(s string) error {
	secret, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok || len(secret) < 16 {
		return fmt.Errorf("invalid token %q: want %s followed by at least 16 characters", short(s), tokenPrefix)
	}
	for _, c := range secret {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return fmt.Errorf("invalid token %q: only 0-9, a-z and - may follow %s", short(s), tokenPrefix)
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

// GossipKey derives the memberlist AES-256 key from the token, so nodes
// with another token cannot read or join the gossip.
func GossipKey(token string) []byte {
	sum := sha256.Sum256([]byte("meshd-gossip\x00" + token))
	return sum[:]
}

func apiKey(token string) []byte {
	sum := sha256.Sum256([]byte("meshd-cluster-api\x00" + token))
	return sum[:]
}

func signature(token, method, path string, ts int64, body []byte) string {
	bodySum := sha256.Sum256(body)
	mac := hmac.New(sha256.New, apiKey(token))
	fmt.Fprintf(mac, "%s\n%s\n%d\n%x", method, path, ts, bodySum)
	return hex.EncodeToString(mac.Sum(nil))
}

// signRequest adds the token's HMAC over method, path, time and body.
func signRequest(req *http.Request, token string, body []byte, now time.Time) {
	ts := now.Unix()
	req.Header.Set(authHeader, strconv.FormatInt(ts, 10)+":"+signature(token, req.Method, req.URL.RequestURI(), ts, body))
}

// verifyRequest checks a signed request against the token.
func verifyRequest(req *http.Request, token string, body []byte, now time.Time) error {
	tsText, sig, ok := strings.Cut(req.Header.Get(authHeader), ":")
	if !ok {
		return errBadSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return errBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxClockSkew || d < -maxClockSkew {
		return fmt.Errorf("request time is %s off the manager's clock", d.Round(time.Second))
	}
	want := signature(token, req.Method, req.URL.RequestURI(), ts, body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return errBadSignature
	}
	return nil
}
