package apiserver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// authHeader carries the HMAC that proves a cluster API caller knows the
// token. The token itself never crosses the wire.
const authHeader = "X-Meshd-Auth"

// maxClockSkew bounds how old a signed cluster request may be.
const maxClockSkew = 5 * time.Minute

var errBadSignature = errors.New("invalid join token")

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

// roleKey carries, in a verified join's context, the role its signature
// gives.
type roleKey struct{}

// requireSignature reads the body (bounded) and refuses a request whose
// signature matches none of the keys it may be signed with. A join signed
// with a join token gets that token's role; one signed with this node's
// secret was forwarded by another manager and says its role in the query.
func (s *Server) requireSignature(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			writeError(w, api.Invalid("read request: %v", err))
			return
		}
		if s.cfg.Keys == nil {
			writeError(w, api.Errorf(http.StatusServiceUnavailable, "this node serves no cluster API"))
			return
		}
		now := time.Now()
		role := ""
		err = errBadSignature
		if secret := s.cfg.Keys.NodeSecret(); secret != "" && verifyRequest(r, secret, body, now) == nil {
			role, err = r.URL.Query().Get("role"), nil
		} else if r.URL.Path == "/v1/cluster/join" {
			worker, manager := s.cfg.Keys.Tokens()
			for tok, rl := range map[string]string{worker: api.RoleWorker, manager: api.RoleManager} {
				if tok == "" {
					continue
				}
				if e := verifyRequest(r, tok, body, now); e == nil {
					role, err = rl, nil
					break
				} else if !errors.Is(e, errBadSignature) {
					err = e
				}
			}
		}
		if err != nil {
			s.log.Warn("refused cluster request", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
			writeError(w, api.Errorf(http.StatusUnauthorized, "%v", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
	})
}
