package dstest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// Claim and callback tokens (PROTOCOL.md 7.3, 12.9) are HMAC-SHA256 signed, as on the
// reference server: base64url(payload) "." base64url(signature), the payload naming the
// subscription, the generation the token was minted for, its expiry (in milliseconds, so that
// tests can use short token lifetimes) and a random id. The
// key is made per handler, so tokens are good for one handler only.

type tokenPayload struct {
	Sub   string `json:"sub"`
	Epoch int64  `json:"epoch"`
	ExpMS int64  `json:"exp_ms"` // Unix milliseconds
	JTI   string `json:"jti"`
}

// tokenSigner mints and checks tokens with one key.
type tokenSigner struct {
	key [32]byte
	ttl time.Duration
}

func newTokenSigner(ttl time.Duration) *tokenSigner {
	t := &tokenSigner{ttl: ttl}
	rand.Read(t.key[:])
	return t
}

// tokenSubject is the subject of a subscription's tokens.
func tokenSubject(id string) string { return "subscription:" + id }

func (t *tokenSigner) sign(payload string) string {
	m := hmac.New(sha256.New, t.key[:])
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// mint returns a token for subscription id and generation, valid for the signer's TTL from
// now.
func (t *tokenSigner) mint(id string, generation int64, now time.Time) string {
	var jti [8]byte
	rand.Read(jti[:])
	b, _ := json.Marshal(tokenPayload{
		Sub:   tokenSubject(id),
		Epoch: generation,
		ExpMS: now.Add(t.ttl).UnixMilli(),
		JTI:   hex.EncodeToString(jti[:]),
	})
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + t.sign(p)
}

// check verifies token for subscription id. It returns the generation the token was minted
// for, or the error code: TOKEN_INVALID for a token this signer did not mint for id,
// TOKEN_EXPIRED for one past its expiry.
func (t *tokenSigner) check(token, id string, now time.Time) (generation int64, code string) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok || strings.Contains(sig, ".") || !hmac.Equal([]byte(sig), []byte(t.sign(p))) {
		return 0, protocol.CodeTokenInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	var pl tokenPayload
	if err != nil || json.Unmarshal(b, &pl) != nil || pl.Sub != tokenSubject(id) {
		return 0, protocol.CodeTokenInvalid
	}
	if now.UnixMilli() > pl.ExpMS {
		return 0, protocol.CodeTokenExpired
	}
	return pl.Epoch, ""
}
