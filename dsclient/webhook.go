package dsclient

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
	"github.com/sluice-go/sluice/internal/protocol"
)

// Kinds of webhook verification failures ([WebhookReceiver.Verify]).
var (
	// ErrSignatureInvalid: a webhook request has no Webhook-Signature header, a malformed
	// one, one naming a key the server's key set does not hold, or a signature that does not
	// match the body (a tampered or forged request).
	ErrSignatureInvalid = errors.New("dsclient: invalid webhook signature")
	// ErrSignatureExpired: a webhook signature's timestamp is outside the receiver's replay
	// window ([WebhookOptions.ReplayWindow]), too old or too far in the future: a replayed
	// request, or clocks far apart.
	ErrSignatureExpired = errors.New("dsclient: webhook signature outside the replay window")
)

// Token is a secret credential, such as a webhook callback token. It prints as
// "[redacted]" with every fmt verb, so that logging a value that holds one does not leak
// it; string(t) is the token, and JSON encoding keeps it.
type Token string

// String returns "[redacted]".
func (Token) String() string { return "[redacted]" }

// GoString returns `"[redacted]"`.
func (Token) GoString() string { return `"[redacted]"` }

// Wake is a webhook delivery (PROTOCOL.md section 7.1): the subscription has pending work
// on Streams, and the receiver holds its lease until it finishes the wake. Finish it by
// answering done (see [WakeHandler]) or by [Wake.Callback] with done; until then, callbacks
// without done are heartbeats that extend the lease. Its JSON form is the delivery's body,
// so a wake can be stored and called back later, from another process.
type Wake struct {
	// SubscriptionID is the subscription woken.
	SubscriptionID string `json:"subscription_id"`
	// WakeID identifies this wake.
	WakeID string `json:"wake_id"`
	// Generation is the wake's generation, the subscription's fencing counter.
	Generation int64 `json:"generation"`
	// Streams are the subscription's linked streams, each with its acked and tail offset.
	Streams []LinkedStream `json:"streams"`
	// CallbackURL is where [Wake.Callback] posts.
	CallbackURL string `json:"callback_url"`
	// CallbackToken authorizes callbacks for this wake only.
	CallbackToken Token `json:"callback_token"`

	recv *WebhookReceiver // the receiver that verified it, or nil
}

// Pending returns the streams that had data past their acked offset when the wake was
// issued.
func (w *Wake) Pending() []LinkedStream {
	var p []LinkedStream
	for _, s := range w.Streams {
		if s.HasPending {
			p = append(p, s)
		}
	}
	return p
}

// Stream returns the handle of a linked stream by its root-relative path, with the
// receiver's settings: under the receiver's [WebhookOptions.Root], or, for a wake decoded
// elsewhere, under the stream root of its callback URL. It does no I/O.
func (w *Wake) Stream(path string, opts ...Option) *Stream {
	if r := w.recv; r != nil {
		return (&Client{cfg: r.cfg}).Stream(streamURL(r.root, path, r.query), opts...)
	}
	root := ""
	if i := strings.Index(w.CallbackURL, "/"+protocol.SubscriptionsRoute); i >= 0 {
		root = w.CallbackURL[:i+1]
	}
	return defaultClient.Stream(streamURL(root, path, ""), opts...)
}

// Callback acks the wake's streams through its callback URL (PROTOCOL.md section 7.1). It
// works like [Claim.Ack]: acks move the cursors at once; without done it is a heartbeat that
// extends the lease; with done it ends the wake and the result says whether the next wake
// was issued. A stale wake fails with [ErrFenced]. It blocks until the server answers; a
// heartbeat is retried on transient failures, a callback with done only when it provably did
// not reach the server. It uses the receiver's client, or the default client for a wake
// decoded elsewhere.
func (w *Wake) Callback(ctx context.Context, acks []StreamAck, done bool) (AckResult, error) {
	if err := checkAcks(OpCallback, redactURL(w.CallbackURL), acks); err != nil {
		return AckResult{}, err
	}
	if w.CallbackToken == "" {
		return AckResult{}, invalidArg(OpCallback, redactURL(w.CallbackURL), "the wake has no callback token")
	}
	act := defaultClient.cfg
	act.httpClient = keepErrorBodies(act.httpClient)
	if w.recv != nil {
		act = w.recv.act
	}
	r := &request{op: OpCallback, method: http.MethodPost, safety: idempotent,
		header: []kv{{protocol.HeaderAuthorization, protocol.BearerPrefix + string(w.CallbackToken)}}}
	if done {
		r.safety = unsafe
	}
	var out ackAnswer
	if _, err := doControl(ctx, act, w.CallbackURL, r, ackBody{WakeID: w.WakeID, Generation: w.Generation, Acks: acks, Done: done}, &out); err != nil {
		return AckResult{}, err
	}
	return AckResult{NextWake: out.NextWake}, nil
}

// WakeHandler handles a verified wake. Returning done true finishes the wake at once: the
// receiver answers {"done":true}, and the server moves every stream's cursor to the wake's
// [LinkedStream.TailOffset] and releases the lease. The handler must then have processed
// each pending stream exactly that far: a read from the acked offset returns everything up
// to the stream's current tail, which is past the wake's tail when appends arrived since,
// and what lies past the wake's tail is delivered again by the next wake (at least once).
// To commit exactly what it read, a handler acks with [Wake.Callback] (its acks, and done)
// and returns false; do not combine callback acks with a done answer (the reference server
// 0.3.7 then sets the cursors back to the wake's tails).
//
// Returning done false leaves the wake open: the handler (or a goroutine it started) works
// on and calls [Wake.Callback], with heartbeats inside the lease, and finally with done. An
// error (or a panic) makes the receiver answer 500: the server delivers the wake again
// later.
//
// The context is the request's: it ends when the server stops waiting for the answer.
type WakeHandler func(ctx context.Context, w *Wake) (done bool, err error)

// WebhookOptions configures a [WebhookReceiver]. Root is required; the zero value of
// every other field means its documented default.
type WebhookOptions struct {
	// Root is the stream root URL of the server whose webhooks are received (such as
	// "https://streams.example.com/v1/stream/"): the signing keys are fetched from under it,
	// and [Wake.Stream] makes handles under it. Required.
	Root string
	// JWKSURL is where the signing keys are fetched from. Default: Root + "__ds/jwks.json"
	// (PROTOCOL.md section 6.5); a subscription's [WebhookSigning.JWKSURL] names it too.
	JWKSURL string
	// Handler is called by ServeHTTP with each verified wake. Required to serve HTTP;
	// Verify and VerifyPayload do not use it. Default: none, and ServeHTTP answers 501.
	Handler WakeHandler
	// ReplayWindow is the largest difference accepted between a signature's timestamp and
	// the receiver's clock, either way. Must be >= 0. Default (0): 5 minutes.
	ReplayWindow time.Duration
	// SubscriptionIDs, when not empty, are the only subscriptions whose wakes are accepted;
	// others are refused with [ErrForbidden] (PROTOCOL.md section 12.10). Default: any.
	SubscriptionIDs []string
	// MaxBodyBytes bounds a delivery's body; a larger one is refused with [ErrTooLarge].
	// Must be >= 0. Default (0): 16 MiB.
	MaxBodyBytes int64
	// Now is the receiver's clock, for the replay window. Default: time.Now.
	Now func() time.Time
}

const defaultMaxWebhookBody = 16 << 20

// Validate reports every invalid field at once, each by its Go field path
// (WebhookOptions.Root), in an error that matches [ErrInvalidArgument] with [errors.Is].
func (o WebhookOptions) Validate() error {
	k := optcheck.New("dsclient", ErrInvalidArgument)
	if u, err := url.Parse(o.Root); o.Root == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		k.Bad("WebhookOptions.Root", "must be the server's stream root URL (absolute, http or https)")
	}
	if o.JWKSURL != "" {
		if u, err := url.Parse(o.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			k.Bad("WebhookOptions.JWKSURL", "must be an absolute http or https URL")
		}
	}
	if o.ReplayWindow < 0 {
		k.Bad("WebhookOptions.ReplayWindow", "must be >= 0 (0 means %s), got %s", protocol.WebhookReplayWindow, o.ReplayWindow)
	}
	for i, id := range o.SubscriptionIDs {
		if id == "" {
			k.Bad("WebhookOptions.SubscriptionIDs["+strconv.Itoa(i)+"]", "must not be empty")
		}
	}
	if o.MaxBodyBytes < 0 {
		k.Bad("WebhookOptions.MaxBodyBytes", "must be >= 0 (0 means 16 MiB), got %d", o.MaxBodyBytes)
	}
	return k.Err()
}

// WebhookReceiver receives the wakes of webhook subscriptions (PROTOCOL.md sections 7.1 and
// 12.10). It is an [http.Handler]: it verifies each request's Ed25519 signature over
// "<t>.<raw body>" with the server's key named by the signature's kid (fetched from the
// key set and cached, see [JWKS]), refuses timestamps outside the replay window, and hands
// the [Wake] to [WebhookOptions.Handler], answering {"done":true} when the handler finished
// it. [WebhookReceiver.Verify] does the verification alone, for other HTTP stacks.
//
// Answers: 200 after the handler ran; 401 for a bad or stale signature; 403 for a
// subscription not in [WebhookOptions.SubscriptionIDs]; 400 for a malformed body; 413 for
// one too large; 503 when the keys cannot be fetched; 500 when the handler fails or panics
// (the server retries the delivery on every answer but 2xx).
//
// Make one with [Client.WebhookReceiver] or [NewWebhookReceiver]. It is safe for
// concurrent use.
type WebhookReceiver struct {
	o      WebhookOptions
	root   string // Root, ending in "/", without query
	query  string // Root's raw query
	cfg    config // the client's settings, for stream handles
	act    config // cfg with an HTTP client that keeps error bodies, for callbacks
	keys   *JWKS
	ids    map[string]bool
	window time.Duration
	max    int64
	now    func() time.Time
}

// WebhookReceiver returns a receiver with opts, which fetches keys, makes stream handles
// and calls back with this client's settings. It fails, naming every bad field, when opts
// are invalid. It does no I/O.
func (c *Client) WebhookReceiver(opts WebhookOptions) (*WebhookReceiver, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(opts.Root)
	r := &WebhookReceiver{o: opts, query: u.RawQuery, cfg: c.cfg, window: opts.ReplayWindow, max: opts.MaxBodyBytes, now: opts.Now}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	r.root = strings.TrimSuffix(u.String(), "/") + "/"
	r.act = c.cfg
	r.act.httpClient = keepErrorBodies(c.cfg.httpClient)
	jwks := opts.JWKSURL
	if jwks == "" {
		jwks = withQuery(r.root+protocol.JWKSRoute, r.query)
	}
	r.keys = c.JWKS(jwks)
	if len(opts.SubscriptionIDs) > 0 {
		r.ids = make(map[string]bool, len(opts.SubscriptionIDs))
		for _, id := range opts.SubscriptionIDs {
			r.ids[id] = true
		}
	}
	if r.window == 0 {
		r.window = protocol.WebhookReplayWindow
	}
	if r.max == 0 {
		r.max = defaultMaxWebhookBody
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// NewWebhookReceiver returns a receiver on a client with default settings; see
// [Client.WebhookReceiver].
func NewWebhookReceiver(opts WebhookOptions) (*WebhookReceiver, error) {
	return defaultClient.WebhookReceiver(opts)
}

// Keys returns the receiver's key set.
func (r *WebhookReceiver) Keys() *JWKS { return r.keys }

// Verify reads req's body (up to [WebhookOptions.MaxBodyBytes]) and returns the wake it
// carries once its signature is verified; see [WebhookReceiver.VerifyPayload]. It does not
// close the body. It blocks while it fetches keys; req's context bounds that.
func (r *WebhookReceiver) Verify(req *http.Request) (*Wake, error) {
	if req.Body == nil {
		return nil, r.fail(ErrSignatureInvalid, "empty request")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, r.max+1))
	if err != nil {
		return nil, &Error{Op: OpWebhook, URL: redactURL(r.root), Kind: ErrNetwork, Err: err}
	}
	if int64(len(body)) > r.max {
		return nil, r.fail(ErrTooLarge, "body larger than %d bytes", r.max)
	}
	return r.VerifyPayload(req.Context(), req.Header.Get(protocol.HeaderWebhookSignature), body)
}

// VerifyPayload verifies a delivery from its Webhook-Signature header and its exact body,
// and returns its wake. It fails with [ErrSignatureInvalid] when the header is missing or
// malformed, its key is unknown or the signature does not match; with [ErrSignatureExpired]
// when its timestamp is outside the replay window; with [ErrParse] when the signed body is
// not a wake; with [ErrForbidden] when the subscription is not accepted; or with the error
// of fetching the keys. It blocks while it fetches keys; ctx bounds that.
func (r *WebhookReceiver) VerifyPayload(ctx context.Context, signature string, body []byte) (*Wake, error) {
	ts, kid, sigs, err := parseSignature(signature)
	if err != nil {
		return nil, r.fail(ErrSignatureInvalid, "%s header: %v", protocol.HeaderWebhookSignature, err)
	}
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if skew := r.now().Sub(time.Unix(sec, 0)); skew > r.window || skew < -r.window {
		return nil, r.fail(ErrSignatureExpired, "signed at %s, %s from this clock; the replay window is %s",
			time.Unix(sec, 0).UTC().Format(time.RFC3339), skew.Round(time.Second), r.window)
	}
	key, err := r.keys.Key(ctx, kid)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, len(ts)+1+len(body))
	msg = append(append(append(msg, ts...), '.'), body...)
	ok := false
	for _, sig := range sigs {
		if ed25519.Verify(key, msg, sig) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, r.fail(ErrSignatureInvalid, "the signature does not match the body (key %s)", strconv.Quote(kid))
	}
	w := &Wake{recv: r}
	if err := json.Unmarshal(body, w); err != nil {
		return nil, &Error{Op: OpWebhook, URL: redactURL(r.root), Kind: ErrParse, Err: err}
	}
	if w.SubscriptionID == "" || w.WakeID == "" || w.CallbackURL == "" || w.CallbackToken == "" {
		return nil, r.fail(ErrParse, "the wake lacks subscription_id, wake_id, callback_url or callback_token")
	}
	if r.ids != nil && !r.ids[w.SubscriptionID] {
		return nil, r.fail(ErrForbidden, "subscription %s is not accepted by this receiver", strconv.Quote(w.SubscriptionID))
	}
	return w, nil
}

func (r *WebhookReceiver) fail(kind error, format string, args ...any) *Error {
	return &Error{Op: OpWebhook, URL: redactURL(r.root), Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// parseSignature reads t=<unix seconds>,kid=<key id>,ed25519=<base64url signature>; the
// header may carry several ed25519 signatures (any one may match).
func parseSignature(h string) (ts, kid string, sigs [][]byte, err error) {
	if h == "" {
		return "", "", nil, errors.New("missing")
	}
	for part := range strings.SplitSeq(h, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", "", nil, fmt.Errorf("malformed parameter %q", part)
		}
		switch name {
		case protocol.SignatureTimestamp:
			ts = v
		case protocol.SignatureKeyID:
			kid = v
		case protocol.SignatureEd25519:
			sig, derr := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
			if derr != nil || len(sig) != ed25519.SignatureSize {
				return "", "", nil, errors.New("malformed ed25519 signature")
			}
			sigs = append(sigs, sig)
		}
	}
	if _, perr := strconv.ParseInt(ts, 10, 64); perr != nil || strings.HasPrefix(ts, "+") {
		return "", "", nil, errors.New("missing or malformed timestamp t")
	}
	if kid == "" || len(sigs) == 0 {
		return "", "", nil, errors.New("missing kid or ed25519 signature")
	}
	return ts, kid, sigs, nil
}

// ServeHTTP verifies a delivery, calls the handler with its wake and answers; see
// [WebhookReceiver] for the statuses.
func (r *WebhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.o.Handler == nil {
		http.Error(w, "no wake handler", http.StatusNotImplemented)
		return
	}
	wake, err := r.Verify(req)
	if err != nil {
		status := http.StatusServiceUnavailable
		switch {
		case errors.Is(err, ErrSignatureInvalid), errors.Is(err, ErrSignatureExpired):
			status = http.StatusUnauthorized
		case errors.Is(err, ErrForbidden):
			status = http.StatusForbidden
		case errors.Is(err, ErrTooLarge):
			status = http.StatusRequestEntityTooLarge
		case errors.Is(err, ErrParse):
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}
	done, err := r.handle(req.Context(), wake)
	if err != nil {
		http.Error(w, "wake handler failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set(protocol.HeaderContentType, protocol.ContentTypeJSON)
	if done {
		io.WriteString(w, `{"`+protocol.WebhookDone+`":true}`)
	} else {
		io.WriteString(w, `{"`+protocol.WebhookDone+`":false}`)
	}
}

// handle calls the handler, turning a panic into an error.
func (r *WebhookReceiver) handle(ctx context.Context, w *Wake) (done bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			done, err = false, fmt.Errorf("dsclient: wake handler panicked: %v", p)
		}
	}()
	return r.o.Handler(ctx, w)
}
