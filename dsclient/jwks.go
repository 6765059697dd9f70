package dsclient

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// JWKS is a handle to a server's webhook signing key set (PROTOCOL.md section 6.5), a JSON
// Web Key Set served at {stream-root}__ds/jwks.json, with a cache of its Ed25519 keys. Make
// one with [Client.JWKS], [NewJWKS] or [Subscription.JWKS]; a [WebhookReceiver] makes its
// own. It does no I/O until a key is asked for, and is safe for concurrent use.
//
// Keys are fetched on first use and kept for the max-age the server gives (Cache-Control;
// default 5 minutes, at most an hour); a set past its max-age is fetched again before use,
// and while it cannot be fetched lookups fail. A key id that is not in a fresh set makes
// it fetch the set again at once (the server may have rotated its key), but such fetches
// happen at most once per 5 seconds, so that requests naming made-up key ids cannot make
// it fetch without end. Concurrent lookups share one fetch.
type JWKS struct {
	url string // redacted, for errors
	cfg config
	raw string // the URL requested
	err error  // deferred construction error

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	fetched   time.Time     // when keys were fetched; zero before the first fetch
	unknownAt time.Time     // when a fresh set was last fetched again for an unknown key id
	maxAge    time.Duration // how long keys are fresh
	fetching  chan struct{} // closed when the fetch in flight ends; nil when none
	fetchErr  error         // the outcome of the last fetch
}

const (
	jwksDefaultMaxAge = 5 * time.Minute
	jwksMaxMaxAge     = time.Hour
	jwksMinRefetch    = 5 * time.Second
	maxJWKSBody       = 1 << 20
)

// JWKS returns a handle to the key set at rawURL (such as
// "https://streams.example.com/v1/stream/__ds/jwks.json"). It does no I/O; an invalid URL
// or option is reported by the first lookup.
func (c *Client) JWKS(rawURL string, opts ...Option) *JWKS {
	k := &JWKS{url: redactURL(rawURL), raw: rawURL, cfg: c.cfg}
	k.cfg.headers = slices.Clip(k.cfg.headers)
	k.cfg.params = slices.Clip(k.cfg.params)
	for _, o := range opts {
		if err := o(&k.cfg); err != nil {
			k.err = err
			break
		}
	}
	return k
}

// NewJWKS returns a handle on a client with default settings plus opts; see [Client.JWKS].
func NewJWKS(rawURL string, opts ...Option) *JWKS { return defaultClient.JWKS(rawURL, opts...) }

// URL returns the key set's URL, its password hidden if it has one.
func (k *JWKS) URL() string { return k.url }

// Key returns the Ed25519 public key with id kid, fetching the key set when its cache is
// empty or stale, or does not hold kid (see [JWKS]). A key id the set does not hold is
// [ErrSignatureInvalid]; a failed fetch is the fetch's [*Error]. It blocks while it fetches;
// ctx bounds the wait.
func (k *JWKS) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	for refetched := false; ; refetched = true {
		k.mu.Lock()
		if ch := k.fetching; ch != nil {
			k.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, &Error{Op: OpJWKS, URL: k.url, Kind: ErrNetwork, Err: ctx.Err()}
			}
		}
		fresh := !k.fetched.IsZero() && time.Since(k.fetched) < k.maxAge
		if key, ok := k.keys[kid]; ok && fresh {
			k.mu.Unlock()
			return key, nil
		}
		if refetched && k.fetchErr != nil {
			err := k.fetchErr
			k.mu.Unlock()
			return nil, err
		}
		if refetched || fresh && !k.unknownAt.IsZero() && time.Since(k.unknownAt) < jwksMinRefetch {
			k.mu.Unlock()
			return nil, &Error{Op: OpJWKS, URL: k.url, Kind: ErrSignatureInvalid,
				Detail: "key id " + strconv.Quote(kid) + " is not in the key set"}
		}
		if fresh {
			k.unknownAt = time.Now()
		}
		ch := make(chan struct{})
		k.fetching = ch
		k.mu.Unlock()
		k.fetch(ctx, ch)
	}
}

// Refresh fetches the key set now, replacing the cached keys. It blocks until the server
// answers, retrying transient failures.
func (k *JWKS) Refresh(ctx context.Context) error {
	for {
		k.mu.Lock()
		if ch := k.fetching; ch != nil {
			k.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return &Error{Op: OpJWKS, URL: k.url, Kind: ErrNetwork, Err: ctx.Err()}
			}
		}
		ch := make(chan struct{})
		k.fetching = ch
		k.mu.Unlock()
		k.fetch(ctx, ch)
		k.mu.Lock()
		err := k.fetchErr
		k.mu.Unlock()
		return err
	}
}

// fetch fetches the key set and records the outcome, then closes ch.
func (k *JWKS) fetch(ctx context.Context, ch chan struct{}) {
	keys, maxAge, err := k.get(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fetching = nil
	close(ch)
	k.fetchErr = err
	if err != nil {
		return
	}
	k.keys, k.maxAge, k.fetched = keys, maxAge, time.Now()
}

// get fetches and parses the key set.
func (k *JWKS) get(ctx context.Context) (map[string]ed25519.PublicKey, time.Duration, error) {
	if k.err != nil {
		return nil, 0, k.err
	}
	h := (&Client{cfg: k.cfg}).Stream(k.raw)
	resp, err := h.do(ctx, &request{op: OpJWKS, method: http.MethodGet, safety: idempotent})
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.URL = k.url
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	switch {
	case err != nil:
		return nil, 0, &Error{Op: OpJWKS, URL: k.url, Status: resp.StatusCode, Kind: ErrNetwork, Err: err}
	case len(b) > maxJWKSBody:
		return nil, 0, &Error{Op: OpJWKS, URL: k.url, Status: resp.StatusCode, Kind: ErrTooLarge, Detail: "key set larger than 1 MiB"}
	}
	keys, err := parseJWKS(b)
	if err != nil {
		return nil, 0, &Error{Op: OpJWKS, URL: k.url, Status: resp.StatusCode, Kind: ErrParse, Err: err}
	}
	return keys, cacheMaxAge(resp.Header.Get("Cache-Control")), nil
}

// parseJWKS returns the Ed25519 signing keys of a JWK Set by key id; other keys are
// skipped.
func parseJWKS(b []byte) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			KID string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			X   string `json:"x"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, j := range set.Keys {
		if j.Kty != protocol.JWKKeyTypeOKP || j.Crv != protocol.JWKCurveEd25519 || j.KID == "" ||
			(j.Use != "" && j.Use != protocol.JWKUseSignature) || (j.Alg != "" && j.Alg != protocol.JWKAlgEdDSA) {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(j.X, "="))
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[j.KID] = ed25519.PublicKey(x)
	}
	return keys, nil
}

// cacheMaxAge reads max-age from a Cache-Control header, bounded to [5s, 1h]; the default
// is 5 minutes.
func cacheMaxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		name, v, _ := strings.Cut(strings.TrimSpace(d), "=")
		if !strings.EqualFold(name, "max-age") {
			continue
		}
		n, err := strconv.Atoi(strings.Trim(v, `"`))
		if err != nil || n < 0 {
			break
		}
		return min(max(time.Duration(n)*time.Second, jwksMinRefetch), jwksMaxMaxAge)
	}
	return jwksDefaultMaxAge
}
