package dsclient_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/optcheck"
)

// keyServer serves a JWK Set at /v1/stream/__ds/jwks.json, counting fetches.
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	fetches atomic.Int64
}

func newKeyServer(t *testing.T) *keyServer {
	ks := &keyServer{keys: map[string]ed25519.PublicKey{}}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/stream/__ds/jwks.json" {
			http.NotFound(w, r)
			return
		}
		ks.fetches.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		type jwk struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			KID string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			X   string `json:"x"`
		}
		set := struct {
			Keys []jwk `json:"keys"`
		}{[]jwk{{Kty: "RSA", KID: "other-kind", X: "AAAA"}}}
		for kid, k := range ks.keys {
			set.Keys = append(set.Keys, jwk{"OKP", "Ed25519", kid, "sig", "EdDSA", base64.RawURLEncoding.EncodeToString(k)})
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(ks.Close)
	return ks
}

// newKey adds a key to the set and returns its id and private half.
func (ks *keyServer) newKey() (string, ed25519.PrivateKey) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	sum := sha256.Sum256(pub)
	kid := "ds_" + base64.RawURLEncoding.EncodeToString(sum[:8])
	ks.mu.Lock()
	ks.keys[kid] = pub
	ks.mu.Unlock()
	return kid, priv
}

func (ks *keyServer) root() string { return ks.URL + "/v1/stream/" }

func sign(key ed25519.PrivateKey, kid string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	sig := ed25519.Sign(key, append([]byte(ts+"."), body...))
	return "t=" + ts + ",kid=" + kid + ",ed25519=" + base64.RawURLEncoding.EncodeToString(sig)
}

const wakeBody = `{"subscription_id":"sub-1","wake_id":"w_1","generation":7,"streams":[` +
	`{"path":"events/a","link_type":"glob","acked_offset":"-1","tail_offset":"0_3","has_pending":true},` +
	`{"path":"events/b","link_type":"explicit","acked_offset":"0_1","tail_offset":"0_1","has_pending":false}],` +
	`"callback_url":"http://127.0.0.1:1/v1/stream/__ds/subscriptions/sub-1/callback","callback_token":"secret-token"}`

// A signed delivery verifies and decodes; a tampered body, another key, a stale or future
// timestamp and malformed headers are refused with the kind that says why.
func TestWebhookVerify(t *testing.T) {
	ks := newKeyServer(t)
	kid, key := ks.newKey()
	_, otherKey := ks.newKey()
	r, err := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	body := []byte(wakeBody)

	w, err := r.VerifyPayload(ctx, sign(key, kid, now, body), body)
	if err != nil {
		t.Fatal(err)
	}
	if w.SubscriptionID != "sub-1" || w.WakeID != "w_1" || w.Generation != 7 || len(w.Streams) != 2 ||
		w.Streams[0].AckedOffset != ds.Beginning || w.Streams[0].TailOffset != "0_3" || !w.Streams[0].HasPending ||
		w.Streams[1].LinkType != ds.LinkExplicit || string(w.CallbackToken) != "secret-token" {
		t.Fatalf("wake: %+v", w)
	}
	if p := w.Pending(); len(p) != 1 || p[0].Path != "events/a" {
		t.Fatalf("pending: %+v", p)
	}
	if got := w.Stream("events/a").URL(); got != ks.root()+"events/a" {
		t.Fatalf("stream URL %s", got)
	}
	if s := fmt.Sprintf("%v %+v %#v %s %q", *w, *w, *w, w.CallbackToken, w.CallbackToken); strings.Contains(s, "secret-token") {
		t.Fatalf("the callback token is printed: %s", s)
	}

	within := now.Add(-4 * time.Minute)
	if _, err := r.VerifyPayload(ctx, sign(key, kid, within, body), body); err != nil {
		t.Fatalf("signed 4 minutes ago: %v", err)
	}
	tampered := []byte(strings.Replace(wakeBody, `"generation":7`, `"generation":8`, 1))
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		kind   error
	}{
		{"tampered body", sign(key, kid, now, body), tampered, ds.ErrSignatureInvalid},
		{"another key", sign(otherKey, kid, now, body), body, ds.ErrSignatureInvalid},
		{"stale", sign(key, kid, now.Add(-6*time.Minute), body), body, ds.ErrSignatureExpired},
		{"future", sign(key, kid, now.Add(6*time.Minute), body), body, ds.ErrSignatureExpired},
		{"missing", "", body, ds.ErrSignatureInvalid},
		{"no signature", "t=" + strconv.FormatInt(now.Unix(), 10) + ",kid=" + kid, body, ds.ErrSignatureInvalid},
		{"bad timestamp", strings.Replace(sign(key, kid, now, body), "t=", "t=x", 1), body, ds.ErrSignatureInvalid},
		{"bad base64", sign(key, kid, now, body) + "!", body, ds.ErrSignatureInvalid},
		{"no kid", strings.Replace(sign(key, kid, now, body), "kid="+kid, "", 1), body, ds.ErrSignatureInvalid},
	} {
		_, err := r.VerifyPayload(ctx, tc.header, tc.body)
		var e *ds.Error
		if !errors.Is(err, tc.kind) || !errors.As(err, &e) || e.Op != ds.OpWebhook {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.kind)
		}
	}

	// A receiver whose clock is ahead refuses what another accepts.
	ahead, _ := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root(), Now: func() time.Time { return now.Add(10 * time.Minute) }})
	if _, err := ahead.VerifyPayload(ctx, sign(key, kid, now, body), body); !errors.Is(err, ds.ErrSignatureExpired) {
		t.Fatalf("clock ahead: %v", err)
	}
	// A narrower window.
	narrow, _ := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root(), ReplayWindow: time.Minute})
	if _, err := narrow.VerifyPayload(ctx, sign(key, kid, now.Add(-2*time.Minute), body), body); !errors.Is(err, ds.ErrSignatureExpired) {
		t.Fatalf("2 minutes old with a 1 minute window: %v", err)
	}
	// Only the listed subscriptions.
	only, _ := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root(), SubscriptionIDs: []string{"sub-2"}})
	if _, err := only.VerifyPayload(ctx, sign(key, kid, now, body), body); !errors.Is(err, ds.ErrForbidden) {
		t.Fatalf("subscription not listed: %v", err)
	}
	// A signed body that is not a wake.
	junk := []byte(`{"hello":1}`)
	if _, err := r.VerifyPayload(ctx, sign(key, kid, now, junk), junk); !errors.Is(err, ds.ErrParse) {
		t.Fatalf("not a wake: %v", err)
	}
}

// A key id that is not cached makes the receiver fetch the set again (the server rotated
// its key), but made-up key ids do not make it fetch more than once per few seconds.
func TestJWKSRefetch(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	ks := newKeyServer(t)
	kid1, key1 := ks.newKey()
	r, _ := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root()})
	ctx := context.Background()
	body := []byte(wakeBody)
	if _, err := r.VerifyPayload(ctx, sign(key1, kid1, time.Now(), body), body); err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyPayload(ctx, sign(key1, kid1, time.Now(), body), body); err != nil {
		t.Fatal(err)
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for one key, want 1 (cached)", n)
	}

	// Concurrent lookups of unknown ids share one fetch; the rotated key is found.
	kid2, key2 := ks.newKey()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := r.VerifyPayload(ctx, sign(key2, kid2, time.Now(), body), body)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("rotated key: %v", err)
		}
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after a rotation, want 2", n)
	}
	for i := range 20 {
		_, err := r.Keys().Key(ctx, "made-up-"+strconv.Itoa(i))
		if !errors.Is(err, ds.ErrSignatureInvalid) {
			t.Fatalf("made-up key id: %v", err)
		}
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after made-up key ids, want still 2", n)
	}
	if err := r.Keys().Refresh(ctx); err != nil || ks.fetches.Load() != 3 {
		t.Fatalf("refresh: %v, %d fetches", err, ks.fetches.Load())
	}

	// A key set that cannot be fetched is the fetch's error.
	ks.Close()
	bad, _ := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root()}) // its own cache: empty
	_, err := bad.VerifyPayload(ctx, sign(key1, kid1, time.Now(), body), body)
	var e *ds.Error
	if !errors.Is(err, ds.ErrNetwork) || !errors.As(err, &e) || e.Op != ds.OpJWKS {
		t.Fatalf("key set down: %v", err)
	}
}

// ServeHTTP answers each outcome with its status, and {"done":true} when the handler
// finished the wake.
func TestWebhookReceiverServeHTTP(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	ks := newKeyServer(t)
	kid, key := ks.newKey()
	var mode atomic.Value
	mode.Store("done")
	var got atomic.Pointer[ds.Wake]
	r, err := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root(), MaxBodyBytes: 4 << 10, Handler: func(ctx context.Context, w *ds.Wake) (bool, error) {
		got.Store(w)
		switch mode.Load() {
		case "done":
			return true, nil
		case "later":
			return false, nil
		case "fail":
			return false, errors.New("sink down")
		}
		panic("handler bug")
	}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(r)
	defer hs.Close()
	post := func(header string, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/hook", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("Webhook-Signature", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	body := []byte(wakeBody)
	now := time.Now()
	if code, b := post(sign(key, kid, now, body), body); code != 200 || b != `{"done":true}` || got.Load() == nil {
		t.Fatalf("done: %d %s", code, b)
	}
	mode.Store("later")
	if code, b := post(sign(key, kid, now, body), body); code != 200 || b != `{"done":false}` {
		t.Fatalf("later: %d %s", code, b)
	}
	for _, m := range []string{"fail", "panic"} {
		mode.Store(m)
		if code, _ := post(sign(key, kid, now, body), body); code != 500 {
			t.Fatalf("%s: %d, want 500", m, code)
		}
	}
	big := []byte(strings.Replace(wakeBody, `"sub-1"`, `"`+strings.Repeat("x", 5<<10)+`"`, 1))
	junk := []byte(`[1]`)
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		want   int
	}{
		{"tampered", sign(key, kid, now, body), []byte(strings.Replace(wakeBody, "w_1", "w_2", 1)), 401},
		{"stale", sign(key, kid, now.Add(-time.Hour), body), body, 401},
		{"unsigned", "", body, 401},
		{"too large", sign(key, kid, now, big), big, 413},
		{"not a wake", sign(key, kid, now, junk), junk, 400},
	} {
		if code, _ := post(tc.header, tc.body); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	resp, _ := http.Get(hs.URL + "/hook")
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	ks.Close() // keys cached: still verifies
	mode.Store("done")
	if code, _ := post(sign(key, kid, now, body), body); code != 200 {
		t.Fatalf("cached key with the key set down: %d", code)
	}
	fresh, _ := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root(), Handler: func(context.Context, *ds.Wake) (bool, error) { return true, nil }})
	hs2 := httptest.NewServer(fresh)
	defer hs2.Close()
	req, _ := http.NewRequest(http.MethodPost, hs2.URL, strings.NewReader(wakeBody))
	req.Header.Set("Webhook-Signature", sign(key, kid, now, body))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("key set down, nothing cached: %d, want 503", resp.StatusCode)
	}
	noHandler, _ := ds.NewWebhookReceiver(ds.WebhookOptions{Root: ks.root()})
	rec := httptest.NewRecorder()
	noHandler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(wakeBody)))
	if rec.Code != http.StatusNotImplemented {
		t.Fatalf("no handler: %d", rec.Code)
	}
}

func TestWebhookOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   ds.WebhookOptions
		fields []string
	}{
		{"ok", ds.WebhookOptions{Root: "http://h/v1/stream"}, nil},
		{"everything wrong", ds.WebhookOptions{Root: "h/v1", JWKSURL: "ftp://x", ReplayWindow: -1, SubscriptionIDs: []string{"a", ""}, MaxBodyBytes: -1},
			[]string{"WebhookOptions.Root", "WebhookOptions.JWKSURL", "WebhookOptions.ReplayWindow", "WebhookOptions.SubscriptionIDs[1]", "WebhookOptions.MaxBodyBytes"}},
		{"no root", ds.WebhookOptions{}, []string{"WebhookOptions.Root"}},
	} {
		_, err := ds.NewWebhookReceiver(tc.opts)
		checkFields(t, tc.name, err, tc.fields)
	}
}

// checkFields checks that err is an options error naming exactly fields (none: nil).
func checkFields(t *testing.T, name string, err error, fields []string) {
	t.Helper()
	if len(fields) == 0 {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		return
	}
	var oe *optcheck.Error
	if !errors.As(err, &oe) || !errors.Is(err, ds.ErrInvalidArgument) {
		t.Errorf("%s: %v, want an options error", name, err)
		return
	}
	var got []string
	for _, p := range oe.Problems {
		got = append(got, p.Field)
	}
	if strings.Join(got, ",") != strings.Join(fields, ",") {
		t.Errorf("%s: fields %v, want %v (%v)", name, got, fields, err)
	}
}
