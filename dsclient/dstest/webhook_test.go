package dstest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// A delivered webhook, as a receiver saw it.
type delivered struct {
	at        time.Time
	raw       string
	signature string
	payload   webhookPayload
}

// receiver is a webhook endpoint for tests: it records every delivery on a channel and
// answers as answer says (200 {} by default).
type receiver struct {
	t        *testing.T
	got      chan delivered
	mu       sync.Mutex
	n        int // deliveries so far
	inFlight int // deliveries being answered
	maxIn    int // most deliveries answered at once
	answer   func(n int, r *http.Request) (status int, body string)
}

func newReceiver(t *testing.T) *receiver {
	return &receiver{t: t, got: make(chan delivered, 100)}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		return
	}
	d := delivered{at: time.Now(), raw: string(raw), signature: r.Header.Get("Webhook-Signature")}
	if err := json.Unmarshal(raw, &d.payload); err != nil {
		rc.t.Errorf("receiver: %v in %q", err, raw)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.t.Errorf("receiver: Content-Type %q", ct)
	}
	rc.mu.Lock()
	rc.n++
	n := rc.n
	rc.inFlight++
	rc.maxIn = max(rc.maxIn, rc.inFlight)
	answer := rc.answer
	rc.mu.Unlock()
	rc.got <- d
	status, body := http.StatusOK, "{}"
	if answer != nil {
		status, body = answer(n, r)
	}
	rc.mu.Lock()
	rc.inFlight--
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (rc *receiver) setAnswer(f func(n int, r *http.Request) (int, string)) {
	rc.mu.Lock()
	rc.answer = f
	rc.mu.Unlock()
}

// next returns the next delivery; inside a synctest bubble it fails when none is coming.
func (rc *receiver) next() delivered {
	rc.t.Helper()
	select {
	case d := <-rc.got:
		return d
	case <-time.After(time.Hour):
		rc.t.Fatal("no webhook delivery")
		return delivered{}
	}
}

// none checks that no delivery is waiting (call after synctest.Wait).
func (rc *receiver) none() {
	rc.t.Helper()
	select {
	case d := <-rc.got:
		rc.t.Fatalf("unexpected delivery %s", d.raw)
	default:
	}
}

// roundTripper serves requests with a handler in the caller's goroutine: no sockets, so that
// deliveries are durably blocked inside a synctest bubble.
type roundTripper struct{ h http.Handler }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	rt.h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// webhookHarness is a subHarness whose deliveries go to a receiver in-process.
func webhookHarness(t *testing.T, opts Options) (*subHarness, *receiver) {
	rc := newReceiver(t)
	opts.WebhookClient = &http.Client{Transport: roundTripper{rc}}
	return newSubHarness(t, opts), rc
}

var signatureRe = regexp.MustCompile(`^t=(\d+),kid=([^,]+),ed25519=([A-Za-z0-9_-]+)$`)

// verifySignature checks a Webhook-Signature header over raw against the JWK Set jwks, as a
// receiver does, and returns its timestamp.
func verifySignature(t *testing.T, raw, header string, jwks []byte) time.Time {
	t.Helper()
	m := signatureRe.FindStringSubmatch(header)
	if m == nil {
		t.Fatalf("Webhook-Signature %q", header)
	}
	var set struct{ Keys []jwk }
	decode(t, string(jwks), &set)
	var key ed25519.PublicKey
	for _, k := range set.Keys {
		if k.KID == m[2] && k.Kty == "OKP" && k.Crv == "Ed25519" && k.Alg == "EdDSA" && k.Use == "sig" {
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if err != nil || len(x) != ed25519.PublicKeySize {
				t.Fatalf("JWK x %q: %v", k.X, err)
			}
			key = x
		}
	}
	if key == nil {
		t.Fatalf("no key %s in the JWKS %s", m[2], jwks)
	}
	sig, err := base64.RawURLEncoding.DecodeString(m[3])
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(key, []byte(m[1]+"."+raw), sig) {
		t.Fatalf("signature %s does not verify", header)
	}
	if ed25519.Verify(key, []byte(m[1]+"."+raw+" "), sig) {
		t.Fatal("the signature verifies another body")
	}
	ts, _ := strconv.ParseInt(m[1], 10, 64)
	return time.Unix(ts, 0)
}

func (d *delivered) stream(t *testing.T, path string) streamInfo {
	t.Helper()
	for _, s := range d.payload.Streams {
		if s.Path == path {
			return s
		}
	}
	t.Fatalf("delivery has no stream %s: %s", path, d.raw)
	return streamInfo{}
}

// callback calls back for a delivery and returns next_wake.
func (x *subHarness) callback(d delivered, done bool, acks ...string) bool {
	x.t.Helper()
	var r ackResult
	p := d.payload
	decode(x.t, x.want(http.StatusOK, "POST", sub(p.SubscriptionID)+"/callback", ackBody(p.WakeID, p.Generation, done, acks...), bearer(p.CallbackToken)...), &r)
	return r.NextWake
}

// The whole webhook path over the network: signing metadata, the JWKS, a signed delivery,
// and {"done":true} acking the wake's snapshot.
func TestWebhookDeliverySignedAndDone(t *testing.T) {
	rc := newReceiver(t)
	rc.setAnswer(func(int, *http.Request) (int, string) { return 200, `{"done":true}` })
	hook := httptest.NewServer(rc)
	defer hook.Close()
	srv := newTestServer(t, Options{})
	_, body := expect(t, 201, "PUT", srv.SubscriptionURL("hooks"),
		`{"type":"webhook","pattern":"events/*","webhook":{"url":"`+hook.URL+`/hook"},"lease_ttl_ms":60000}`)
	if strings.Contains(body, "secret") {
		t.Fatalf("the subscription shows a secret: %s", body)
	}
	var v subscriptionView
	decode(t, body, &v)
	kid, pub := srv.Handler().WebhookKey()
	if v.Webhook == nil || v.Webhook.URL != hook.URL+"/hook" || v.Webhook.Signing == nil ||
		v.Webhook.Signing.Alg != "ed25519" || v.Webhook.Signing.KID != kid || !strings.HasPrefix(kid, "ds_") ||
		v.Webhook.Signing.JWKSURL != srv.StreamURL("__ds/jwks.json") || v.WakeStream != "" {
		t.Fatalf("webhook view %+v %+v", v.Webhook, v.Webhook.Signing)
	}
	resp, jwks := expect(t, 200, "GET", v.Webhook.Signing.JWKSURL, "")
	header(t, resp, "Content-Type", "application/jwk-set+json")
	header(t, resp, "Cache-Control", "public, max-age=300")
	if want := base64.RawURLEncoding.EncodeToString(pub); !strings.Contains(jwks, `"x":"`+want+`"`) {
		t.Fatalf("JWKS %s lacks the public key %s", jwks, want)
	}

	expect(t, 201, "PUT", srv.StreamURL("events/a"), `{"n":1}`, "Content-Type", "application/json")
	d := rc.next()
	if ts := verifySignature(t, d.raw, d.signature, []byte(jwks)); time.Since(ts).Abs() > protocol.WebhookReplayWindow {
		t.Fatalf("signature timestamp %v is outside the replay window", ts)
	}
	p := d.payload
	if p.SubscriptionID != "hooks" || !strings.HasPrefix(p.WakeID, "w_") || p.Generation != 1 || p.CallbackToken == "" ||
		p.CallbackURL != srv.SubscriptionURL("hooks")+"/callback" {
		t.Fatalf("payload %s", d.raw)
	}
	a := d.stream(t, "events/a")
	if a.AckedOffset != "-1" || !a.HasPending || a.LinkType != "glob" {
		t.Fatalf("events/a in the delivery: %+v", a)
	}
	// The next wake comes only once the first is over: its delivery shows the cursor that
	// {"done":true} moved to the first wake's tail.
	expect(t, 204, "POST", srv.StreamURL("events/a"), `{"n":2}`, "Content-Type", "application/json")
	d2 := rc.next()
	verifySignature(t, d2.raw, d2.signature, []byte(jwks))
	if d2.payload.Generation != 2 || d2.payload.WakeID == p.WakeID {
		t.Fatalf("second delivery %s", d2.raw)
	}
	if got := d2.stream(t, "events/a").AckedOffset; got != a.TailOffset {
		t.Fatalf("after done, events/a acked at %s, want %s", got, a.TailOffset)
	}
}

func TestWebhookCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, rc := webhookHarness(t, Options{})
		x.stream("events/a", "")
		x.stream("events/b", "")
		x.create("s", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1/hook"},"lease_ttl_ms":1000}`)
		a1 := x.append("events/a", `{"n":1}`)
		d := rc.next()
		if d.payload.CallbackURL != "http://example.com/v1/stream/__ds/subscriptions/s/callback" {
			t.Fatalf("callback_url %s", d.payload.CallbackURL)
		}
		p := d.payload
		x.wantError(http.StatusUnauthorized, protocol.CodeTokenInvalid, "POST", sub("s")+"/callback", ackBody(p.WakeID, p.Generation, false))
		x.wantError(http.StatusUnauthorized, protocol.CodeTokenInvalid, "POST", sub("s")+"/callback", ackBody(p.WakeID, p.Generation, false), bearer("x.y")...)
		x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("s")+"/callback", ackBody("w_x", p.Generation, false), bearer(p.CallbackToken)...)
		// Pull-wake routes refuse a webhook subscription.
		x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "POST", sub("s")+"/claim", `{"worker":"w"}`)
		x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "POST", sub("s")+"/ack", ackBody(p.WakeID, p.Generation, false), bearer(p.CallbackToken)...)
		// Callbacks without done are heartbeats: they apply acks and extend the lease.
		for range 3 {
			time.Sleep(900 * time.Millisecond)
			if x.callback(d, false) {
				t.Fatal("next_wake on a heartbeat")
			}
		}
		x.append("events/b", `{"n":1}`)
		synctest.Wait()
		rc.none() // the wake in flight is not delivered again
		if x.callback(d, false, "events/a", a1) {
			t.Fatal("next_wake on a heartbeat")
		}
		if got := x.acked("s", "events/a"); got != a1 {
			t.Fatalf("cursor %s, want %s", got, a1)
		}
		// Done with events/b pending: the next wake is delivered.
		if !x.callback(d, true) {
			t.Fatal("no next_wake with events/b pending")
		}
		x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("s")+"/callback", ackBody(p.WakeID, p.Generation, true), bearer(p.CallbackToken)...)
		d2 := rc.next()
		if d2.payload.Generation != 2 || !d2.stream(t, "events/b").HasPending {
			t.Fatalf("next delivery %s", d2.raw)
		}
		// Without a callback the lease ends and the work is delivered again, one generation
		// on; the old holder is fenced.
		time.Sleep(time.Second)
		d3 := rc.next()
		if d3.payload.Generation != 3 || d3.payload.WakeID == d2.payload.WakeID {
			t.Fatalf("delivery after the lease %s", d3.raw)
		}
		x.wantError(http.StatusConflict, protocol.CodeFenced, "POST", sub("s")+"/callback", ackBody(d2.payload.WakeID, d2.payload.Generation, true), bearer(d2.payload.CallbackToken)...)
		if x.callback(d3, true, "events/b", d3.stream(t, "events/b").TailOffset) {
			t.Fatal("next_wake with nothing pending")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		rc.none()
	})
}

func TestWebhookRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, rc := webhookHarness(t, Options{})
		rc.setAnswer(func(n int, _ *http.Request) (int, string) {
			if n <= 7 {
				return http.StatusInternalServerError, "down"
			}
			return http.StatusOK, `{"done":true}`
		})
		x.stream("events/a", "")
		x.create("s", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1/hook"},"lease_ttl_ms":600000}`)
		x.append("events/a", `{"n":1}`)
		first := rc.next()
		last := first.at
		// 1s, 2s, 4s ... up to 60s, each within 20%.
		for i, base := range []time.Duration{1, 2, 4, 8, 16, 32, 60} {
			synctest.Wait()
			if i == 0 {
				v := x.get("s")
				if v.Status != "failed" || v.NextAttemptAt == nil {
					t.Fatalf("while retrying: status %q, next_attempt_at %v", v.Status, v.NextAttemptAt)
				}
				if at := time.UnixMilli(*v.NextAttemptAt); at.Sub(last) < 800*time.Millisecond || at.Sub(last) > 1200*time.Millisecond {
					t.Fatalf("next_attempt_at %v after the failure", at.Sub(last))
				}
			}
			d := rc.next()
			gap := d.at.Sub(last)
			lo, hi := time.Duration(float64(base*time.Second)*0.8), time.Duration(float64(base*time.Second)*1.2)
			if gap < lo || gap > hi {
				t.Fatalf("retry %d after %v, want %v-%v", i+1, gap, lo, hi)
			}
			if d.payload.WakeID != first.payload.WakeID || d.payload.Generation != 1 {
				t.Fatalf("retry %d delivers another wake: %s", i+1, d.raw)
			}
			last = d.at
		}
		synctest.Wait()
		v := x.get("s")
		if v.Status != "active" || v.NextAttemptAt != nil || v.Streams[0].AckedOffset != x.tail("events/a") {
			t.Fatalf("after success: %+v", v)
		}
	})
}

func TestWebhookRetryOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, rc := webhookHarness(t, Options{WebhookRetryMin: 10 * time.Millisecond, WebhookRetryMax: 40 * time.Millisecond})
		rc.setAnswer(func(int, *http.Request) (int, string) { return http.StatusServiceUnavailable, "" })
		x.stream("events/a", "")
		x.create("s", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1/hook"},"lease_ttl_ms":600000}`)
		x.append("events/a", `{"n":1}`)
		last := rc.next().at
		for i, base := range []time.Duration{10, 20, 40, 40, 40} {
			d := rc.next()
			gap := d.at.Sub(last)
			if lo, hi := base*time.Millisecond*8/10, base*time.Millisecond*12/10; gap < lo || gap > hi {
				t.Fatalf("retry %d after %v, want %v-%v", i+1, gap, lo, hi)
			}
			last = d.at
		}
		x.want(http.StatusNoContent, "DELETE", sub("s"), "") // no retry after deletion
		time.Sleep(time.Second)
		synctest.Wait()
		rc.none()
	})
}

func TestWebhookFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, rc := webhookHarness(t, Options{})
		rc.setAnswer(func(int, *http.Request) (int, string) { return 200, `{"done":true}` })
		x.stream("events/a", "")
		x.create("s", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1/hook"},"lease_ttl_ms":600000}`)

		// Two deliveries fail before they are sent: the receiver sees the second retry.
		must(t, x.h.InjectWebhookFault("s", Fault{Status: 503, Count: 1}))
		must(t, x.h.InjectWebhookFault("s", Fault{Drop: true}))
		if n := x.h.PendingFaults(); n != 2 {
			t.Fatalf("PendingFaults %d", n)
		}
		start := time.Now()
		x.append("events/a", `{"n":1}`)
		d := rc.next()
		if gap := time.Since(start); gap < 2400*time.Millisecond || gap > 3600*time.Millisecond {
			t.Fatalf("delivered after %v, want two retries (1s and 2s, each within 20%%)", gap)
		}
		synctest.Wait()
		if got := x.acked("s", "events/a"); got != d.stream(t, "events/a").TailOffset {
			t.Fatalf("cursor %s after done", got)
		}

		// The receiver's answer is lost: it gets the same wake again, and its second
		// {"done":true} acks it.
		must(t, x.h.InjectWebhookFault("s", Fault{DropMidBody: true}))
		x.append("events/a", `{"n":2}`)
		d1 := rc.next()
		d2 := rc.next()
		if d1.payload.WakeID != d2.payload.WakeID || d1.payload.Generation != d2.payload.Generation {
			t.Fatalf("the retry of a lost answer delivers another wake: %s then %s", d1.raw, d2.raw)
		}
		synctest.Wait()
		if got := x.acked("s", "events/a"); got != x.tail("events/a") {
			t.Fatalf("cursor %s after done", got)
		}

		// A delay holds the delivery back.
		must(t, x.h.InjectWebhookFault("s", Fault{Delay: 5 * time.Second}))
		start = time.Now()
		x.append("events/a", `{"n":3}`)
		if d := rc.next(); d.at.Sub(start) != 5*time.Second {
			t.Fatalf("delayed delivery after %v", d.at.Sub(start))
		}
		// A 2xx status stands for an answer without done: the wake waits for a callback.
		must(t, x.h.InjectWebhookFault("s", Fault{Status: 202}))
		x.append("events/a", `{"n":4}`)
		synctest.Wait()
		rc.none()
		if v := x.get("s"); v.Status != "active" {
			t.Fatalf("status %q after a 2xx", v.Status)
		}
	})
	h, err := NewHandler(Options{})
	must(t, err)
	defer h.Close()
	for _, tc := range []struct {
		f    Fault
		want string
	}{
		{Fault{Method: "GET", Status: 500}, "Fault.Method"},
		{Fault{Status: 503, RetryAfter: time.Second}, "Fault.RetryAfter"},
		{Fault{DropMidBody: true, DropAfterBytes: 3}, "Fault.DropAfterBytes"},
		{Fault{TruncateSSEAfter: 1}, "Fault.TruncateSSEAfter"},
		{Fault{}, "nothing to do"},
	} {
		if err := h.InjectWebhookFault("s", tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.f, err, tc.want)
		}
	}
	if err := h.InjectWebhookFault("", Fault{Status: 500}); err == nil {
		t.Error("empty id accepted")
	}
	if n := h.PendingFaults(); n != 0 {
		t.Errorf("invalid faults installed: %d", n)
	}
}

// At most one delivery of a subscription is in flight: a wake issued meanwhile (the lease
// ran out) is delivered when the slow one ends, and a delivery that takes longer than
// WebhookTimeout fails and is retried.
func TestWebhookOneDeliveryInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, rc := webhookHarness(t, Options{WebhookTimeout: 10 * time.Second})
		release := make(chan struct{})
		rc.setAnswer(func(n int, r *http.Request) (int, string) {
			if n == 1 {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
			return 200, `{"done":true}`
		})
		x.stream("events/a", "")
		x.create("s", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1/hook"},"lease_ttl_ms":1000}`)
		x.append("events/a", `{"n":1}`)
		d1 := rc.next()
		time.Sleep(3 * time.Second) // leases run out: generations 2, 3 and 4 are issued
		synctest.Wait()
		rc.none()
		close(release) // the first delivery's done is stale: it acks nothing
		d2 := rc.next()
		if d2.payload.Generation <= d1.payload.Generation {
			t.Fatalf("after the slow delivery: %s", d2.raw)
		}
		synctest.Wait()
		if got := x.acked("s", "events/a"); got != x.tail("events/a") {
			t.Fatalf("cursor %s", got)
		}
		rc.mu.Lock()
		maxIn := rc.maxIn
		rc.mu.Unlock()
		if maxIn != 1 {
			t.Fatalf("%d deliveries in flight at once", maxIn)
		}

		// A receiver that never answers: the attempt ends after WebhookTimeout, and is retried.
		rc.setAnswer(func(n int, r *http.Request) (int, string) {
			if n == 3 {
				<-r.Context().Done()
			}
			return 200, `{"done":true}`
		})
		x.append("events/a", `{"n":2}`)
		d3 := rc.next()
		d4 := rc.next()
		if gap := d4.at.Sub(d3.at); gap < 10*time.Second+800*time.Millisecond || gap > 10*time.Second+1200*time.Millisecond {
			t.Fatalf("retry %v after a delivery that timed out, want 10s and 1s within 20%%", gap)
		}
		synctest.Wait()
		if got := x.acked("s", "events/a"); got != x.tail("events/a") {
			t.Fatalf("cursor %s", got)
		}
	})
}

// Close cancels a delivery in flight and waits for it; nothing is delivered afterwards.
func TestWebhookClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, rc := webhookHarness(t, Options{})
		cancelled := make(chan struct{})
		rc.setAnswer(func(n int, r *http.Request) (int, string) {
			<-r.Context().Done()
			close(cancelled)
			return 200, "{}"
		})
		x.stream("events/a", "")
		x.create("s", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1/hook"}}`)
		x.append("events/a", `{"n":1}`)
		rc.next()
		x.h.Close()
		<-cancelled
		x.append("events/a", `{"n":2}`)
		time.Sleep(time.Hour)
		synctest.Wait()
		rc.none()
	})
}

// A webhook delivery whose subscription was deleted meanwhile changes nothing.
func TestWebhookDeletedDuringDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, rc := webhookHarness(t, Options{})
		proceed := make(chan struct{})
		rc.setAnswer(func(int, *http.Request) (int, string) {
			<-proceed
			return 500, ""
		})
		x.stream("events/a", "")
		x.create("s", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1/hook"}}`)
		x.append("events/a", `{"n":1}`)
		rc.next()
		x.want(http.StatusNoContent, "DELETE", sub("s"), "")
		close(proceed)
		time.Sleep(time.Hour) // no retry
		synctest.Wait()
		rc.none()
	})
}

func TestDisableWebhooks(t *testing.T) {
	x := newSubHarness(t, Options{DisableWebhooks: true})
	e := x.wantError(http.StatusBadRequest, protocol.CodeInvalidRequest, "PUT", sub("s"), `{"type":"webhook","streams":["a"],"webhook":{"url":"http://127.0.0.1/h"}}`)
	if !strings.Contains(e.Message, "not enabled") {
		t.Errorf("message %q", e.Message)
	}
	x.create("p", `{"type":"pull-wake","streams":["a"],"wake_stream":"w"}`) // pull-wake is always on
	x.want(http.StatusOK, "GET", "__ds/jwks.json", "")
	x.want(http.StatusMethodNotAllowed, "POST", "__ds/jwks.json", "")
}

func TestSigningKeyOption(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	h1, err := NewHandler(Options{SigningKey: key})
	must(t, err)
	defer h1.Close()
	h2, err := NewHandler(Options{SigningKey: key})
	must(t, err)
	defer h2.Close()
	kid1, pub1 := h1.WebhookKey()
	kid2, _ := h2.WebhookKey()
	if kid1 != kid2 || !pub1.Equal(key.Public()) {
		t.Fatalf("the same key gives key ids %s and %s", kid1, kid2)
	}
	h3, err := NewHandler(Options{})
	must(t, err)
	defer h3.Close()
	if kid3, _ := h3.WebhookKey(); kid3 == kid1 {
		t.Fatal("a generated key equals the given one")
	}
	// The key id is the RFC 7638 thumbprint: for the all-zero seed it is fixed.
	if want := "ds_" + thumbprintOf(t, pub1); kid1 != want {
		t.Fatalf("kid %s, want %s", kid1, want)
	}
}

func thumbprintOf(t *testing.T, pub ed25519.PublicKey) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"crv": "Ed25519", "kty": "OKP", "x": base64.RawURLEncoding.EncodeToString(pub)})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
