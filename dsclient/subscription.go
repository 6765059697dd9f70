package dsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
	"github.com/sluice-go/sluice/internal/protocol"
)

// Subscription is a handle to one subscription of a Durable Streams server (PROTOCOL.md
// sections 6 and 7): a server-held cursor per linked stream, streams linked by a glob
// pattern and by explicit membership, and delivery of wakes to workers, either by pull-wake
// (wake events on a wake stream, claimed by workers under a lease) or by signed webhooks.
// The server coordinates the workers; the client holds no state between calls.
//
// A handle is made from a stream root URL (the URL that stream paths are relative to, such
// as "https://streams.example.com/v1/stream/") and a subscription id with
// [Client.Subscription] or [NewSubscription]. It is cheap, does no I/O until an operation is
// called, and is safe for concurrent use. Its operations:
//
//   - [Subscription.Create] creates or re-confirms the subscription with a
//     [SubscriptionConfig]; [Subscription.Get] reads it, [Subscription.Delete] deletes it;
//     [Subscription.AddStreams] and [Subscription.RemoveStream] change its explicit
//     members.
//   - [Subscription.Claim] takes the lease of a pull-wake subscription that has pending work
//     and returns a [Claim]: its wake, generation, lease and the linked streams with their
//     acked and tail offsets. [Claim.Ack] applies acks and extends the lease (a heartbeat),
//     or with done ends the claim; [Claim.Release] gives the lease back.
//   - [Subscription.Stream] returns the handle of a linked stream (or of the wake stream)
//     by its root-relative path, for reading it from its acked offset.
//
// Webhook subscriptions are delivered to a [WebhookReceiver], which verifies each signed
// [Wake] and hands it to the application; see [WebhookReceiver].
//
// Every error of an operation is an [*Error], except an invalid [SubscriptionConfig],
// reported before anything is sent as an options error that names each bad field. Server
// refusals carry their protocol code in a [*SubscriptionError] and a kind of their own:
// [ErrAlreadyClaimed], [ErrNoPendingWork], [ErrFenced], [ErrInvalidAck],
// [ErrSubscriptionNotFound], [ErrSubscriptionConflict]. Errors never show a password of
// the root URL, a claim token or a callback token.
type Subscription struct {
	id    string
	root  string // stream root URL: ends in "/", no query or fragment
	query string // the root URL's raw query, sent with every request
	url   string // the subscription URL, without query
	cfg   config // the handle's settings, for member streams
	act   config // cfg with an HTTP client that keeps error bodies, for the operations
	err   error  // deferred construction error
}

// Subscription operations, for errors and observer events.
const (
	OpCreateSubscription Op = "create-subscription"
	OpGetSubscription    Op = "get-subscription"
	OpDeleteSubscription Op = "delete-subscription"
	OpAddStreams         Op = "add-streams"
	OpRemoveStream       Op = "remove-stream"
	OpClaim              Op = "claim"
	OpAck                Op = "ack"
	OpRelease            Op = "release"
	OpCallback           Op = "callback"
	OpJWKS               Op = "jwks"
	OpWebhook            Op = "webhook"

	opSubscription Op = "subscription" // construction errors, reported by the first operation
)

// maxControlBody bounds what is read of a subscription response (a subscription with
// 100,000 linked streams is about 15 MB).
const maxControlBody = 32 << 20

// Subscription returns a handle to subscription id of the server whose streams live under
// root (the stream root URL, such as "https://streams.example.com/v1/stream/"; a missing
// trailing slash is added). It does no I/O. opts add to the client's headers and parameters
// (or replace its other settings) for this handle and the stream handles it makes.
//
// Subscription never fails: an invalid root, id or option is reported, as
// [ErrInvalidArgument], by the handle's first operation.
func (c *Client) Subscription(root, id string, opts ...Option) *Subscription {
	s := &Subscription{id: id, cfg: c.cfg}
	s.cfg.headers = slices.Clip(s.cfg.headers)
	s.cfg.params = slices.Clip(s.cfg.params)
	u, err := url.Parse(root)
	switch {
	case err != nil:
		s.err = invalidArg(opSubscription, redactURL(root), "invalid stream root URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		s.err = invalidArg(opSubscription, redactURL(root), "stream root URL scheme must be http or https")
	case u.Host == "":
		s.err = invalidArg(opSubscription, redactURL(root), "stream root URL has no host")
	}
	if s.err != nil {
		s.root, s.url = root, root
		return s
	}
	s.query = u.RawQuery
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	s.root = strings.TrimSuffix(u.String(), "/") + "/"
	s.url = s.root + protocol.SubscriptionsRoute + url.PathEscape(id)
	switch {
	case id == "":
		s.err = invalidArg(opSubscription, redactURL(s.url), "empty subscription id")
	case !validHeaderValue(id):
		s.err = invalidArg(opSubscription, redactURL(s.url), "subscription id has control characters")
	}
	for _, o := range opts {
		if s.err != nil {
			break
		}
		s.err = o(&s.cfg)
	}
	s.act = s.cfg
	s.act.httpClient = keepErrorBodies(s.cfg.httpClient)
	return s
}

// NewSubscription returns a handle on a client with default settings plus opts; see
// [Client.Subscription].
func NewSubscription(root, id string, opts ...Option) *Subscription {
	return defaultClient.Subscription(root, id, opts...)
}

// ID returns the subscription id.
func (s *Subscription) ID() string { return s.id }

// Root returns the stream root URL (ending in "/", without query parameters).
func (s *Subscription) Root() string { return s.root }

// URL returns the subscription URL, {root}__ds/subscriptions/{id} (without query
// parameters).
func (s *Subscription) URL() string { return s.url }

// Stream returns the handle of the stream at path, relative to the stream root: a linked
// stream ([LinkedStream.Path]) or the wake stream ([SubscriptionConfig.WakeStream]). It does
// no I/O; the handle has this handle's settings plus opts.
func (s *Subscription) Stream(path string, opts ...Option) *Stream {
	return (&Client{cfg: s.cfg}).Stream(streamURL(s.root, path, s.query), opts...)
}

// JWKS returns the handle of the server's webhook signing key set,
// {root}__ds/jwks.json (PROTOCOL.md section 6.5). It does no I/O.
func (s *Subscription) JWKS() *JWKS {
	return (&Client{cfg: s.cfg}).JWKS(withQuery(s.root+protocol.JWKSRoute, s.query))
}

// streamURL returns the URL of the root-relative path under root, each segment escaped.
func streamURL(root, path, query string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return withQuery(root+strings.Join(segs, "/"), query)
}

func withQuery(u, query string) string {
	if query == "" {
		return u
	}
	return u + "?" + query
}

// SubscriptionType is how a subscription delivers its wakes.
type SubscriptionType string

// Subscription types.
const (
	// SubscriptionPullWake writes wake events to a wake stream; workers claim the
	// subscription ([Subscription.Claim]).
	SubscriptionPullWake SubscriptionType = protocol.SubscriptionPullWake
	// SubscriptionWebhook POSTs signed wakes to a URL ([WebhookReceiver]).
	SubscriptionWebhook SubscriptionType = protocol.SubscriptionWebhook
)

// LinkType says why a stream belongs to a subscription.
type LinkType string

// Link types. A stream linked both ways is reported as explicit.
const (
	// LinkGlob: the stream matches the subscription's pattern.
	LinkGlob LinkType = protocol.LinkGlob
	// LinkExplicit: the stream was named in the configuration or added with
	// [Subscription.AddStreams].
	LinkExplicit LinkType = protocol.LinkExplicit
)

// SubscriptionStatus is the delivery status of a subscription.
type SubscriptionStatus string

// Statuses.
const (
	// SubscriptionActive: delivery is operating normally.
	SubscriptionActive SubscriptionStatus = protocol.StatusActive
	// SubscriptionFailed: a webhook delivery failed and a retry is scheduled.
	SubscriptionFailed SubscriptionStatus = protocol.StatusFailed
)

// SubscriptionConfig configures a subscription ([Subscription.Create]; PROTOCOL.md section
// 6.2). Stream paths are relative to the stream root ("events/abc"). A subscription needs a
// Pattern, Streams or both; everything else has a default, so
// SubscriptionConfig{Pattern: "events/*", WakeStream: "wake/pool"} is complete.
type SubscriptionConfig struct {
	// Type is the delivery mechanism. Default: [SubscriptionPullWake] when WakeStream is
	// set, [SubscriptionWebhook] when WebhookURL is set.
	Type SubscriptionType
	// Pattern links every stream whose path it matches: "*" matches one path segment, "**"
	// zero or more. Streams that exist when the subscription is created are linked at their
	// tail (their history is not delivered); streams created later are linked from their
	// beginning at their first append. Default: none.
	Pattern string
	// Streams are linked explicitly, at their tail when the subscription is created.
	// Default: none.
	Streams []string
	// WebhookURL receives the wakes of a webhook subscription. Required for
	// [SubscriptionWebhook], and only for it. Servers accept https URLs, and plain http only
	// for localhost and 127.0.0.x (development).
	WebhookURL string
	// WakeStream is the path of the stream that receives the wake events of a pull-wake
	// subscription (see [WakeEvent]); the application creates it, as a JSON stream.
	// Required for [SubscriptionPullWake], and only for it.
	WakeStream string
	// LeaseTTL is how long a claim (or a webhook wake) lasts without a heartbeat, in whole
	// milliseconds from 1s to 10 minutes. Default: 30s.
	LeaseTTL time.Duration
	// Description is a human-readable description. Default: none.
	Description string
}

// Validate reports every invalid field at once, each by its Go field path
// (SubscriptionConfig.LeaseTTL), in an error that matches [ErrInvalidArgument] with
// [errors.Is].
func (c SubscriptionConfig) Validate() error {
	k := optcheck.New("dsclient", ErrInvalidArgument)
	typ := c.typ()
	switch {
	case c.Type == "" && c.WakeStream != "" && c.WebhookURL != "":
		k.Bad("SubscriptionConfig.Type", "must be set when both WakeStream and WebhookURL are")
	case c.Type == "" && typ == "":
		k.Bad("SubscriptionConfig.Type", "must be set, or implied by WakeStream (pull-wake) or WebhookURL (webhook)")
	case typ != "" && typ != SubscriptionPullWake && typ != SubscriptionWebhook:
		k.Bad("SubscriptionConfig.Type", "must be %q or %q, got %q", SubscriptionPullWake, SubscriptionWebhook, c.Type)
	}
	if c.Pattern == "" && len(c.Streams) == 0 {
		k.Bad("SubscriptionConfig.Pattern", "a pattern, streams or both are required")
	}
	if c.Pattern != "" && strings.Trim(c.Pattern, "/") == "" {
		k.Bad("SubscriptionConfig.Pattern", "must name at least one path segment, got %q", c.Pattern)
	}
	for i, p := range c.Streams {
		if msg := badStreamPath(p); msg != "" {
			k.Bad("SubscriptionConfig.Streams["+strconv.Itoa(i)+"]", "%s", msg)
		}
	}
	switch {
	case typ == SubscriptionWebhook && c.WebhookURL == "":
		k.Bad("SubscriptionConfig.WebhookURL", "is required for a webhook subscription")
	case typ == SubscriptionPullWake && c.WebhookURL != "":
		k.Bad("SubscriptionConfig.WebhookURL", "is only for a webhook subscription")
	case c.WebhookURL != "":
		if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			k.Bad("SubscriptionConfig.WebhookURL", "must be an absolute http or https URL")
		}
	}
	switch {
	case typ == SubscriptionPullWake && c.WakeStream == "":
		k.Bad("SubscriptionConfig.WakeStream", "is required for a pull-wake subscription")
	case typ == SubscriptionWebhook && c.WakeStream != "":
		k.Bad("SubscriptionConfig.WakeStream", "is only for a pull-wake subscription")
	case c.WakeStream != "":
		if msg := badStreamPath(c.WakeStream); msg != "" {
			k.Bad("SubscriptionConfig.WakeStream", "%s", msg)
		}
	}
	if c.LeaseTTL != 0 && (c.LeaseTTL < protocol.MinLeaseTTL || c.LeaseTTL > protocol.MaxLeaseTTL || c.LeaseTTL%time.Millisecond != 0) {
		k.Bad("SubscriptionConfig.LeaseTTL", "must be whole milliseconds from %s to %s (0 means %s), got %s",
			protocol.MinLeaseTTL, protocol.MaxLeaseTTL, protocol.DefaultLeaseTTL, c.LeaseTTL)
	}
	return k.Err()
}

// typ returns the configured or implied type.
func (c SubscriptionConfig) typ() SubscriptionType {
	switch {
	case c.Type != "":
		return c.Type
	case c.WakeStream != "" && c.WebhookURL == "":
		return SubscriptionPullWake
	case c.WebhookURL != "" && c.WakeStream == "":
		return SubscriptionWebhook
	}
	return ""
}

// badStreamPath says what is wrong with a root-relative stream path, or "".
func badStreamPath(p string) string {
	t := strings.Trim(p, "/")
	switch {
	case t == "":
		return "must be a non-empty stream path"
	case t == protocol.ReservedSegment || strings.HasPrefix(t, protocol.ReservedSegment+"/"):
		return "must not start with the reserved segment " + protocol.ReservedSegment
	}
	return ""
}

// LinkedStream is a stream linked to a subscription, with its cursor.
type LinkedStream struct {
	// Path is the stream's path relative to the stream root; [Subscription.Stream] makes its
	// handle.
	Path string `json:"path"`
	// LinkType says why the stream is linked.
	LinkType LinkType `json:"link_type"`
	// AckedOffset is the subscription's cursor on the stream: everything up to it is
	// processed, and reading resumes from it ([ReadOptions.Offset]). It is [Beginning] for a
	// stream linked from its start.
	AckedOffset Offset `json:"acked_offset"`
	// TailOffset is the stream's tail when the claim or wake was made (empty in
	// [SubscriptionInfo]).
	TailOffset Offset `json:"tail_offset,omitempty"`
	// HasPending reports whether the stream had data past AckedOffset when the claim or
	// wake was made (false in [SubscriptionInfo]).
	HasPending bool `json:"has_pending,omitempty"`
}

// WebhookSigning describes how the server signs a webhook subscription's deliveries
// (PROTOCOL.md section 6.3).
type WebhookSigning struct {
	// Alg is the signature algorithm, "ed25519".
	Alg string `json:"alg"`
	// KeyID is the server's active signing key when the subscription was read; deliveries
	// name their own key, which a receiver must use.
	KeyID string `json:"kid"`
	// JWKSURL is the URL of the server's signing key set: the authoritative place to
	// fetch verification keys from.
	JWKSURL string `json:"jwks_url"`
}

// SubscriptionInfo describes a subscription, from [Subscription.Create] or
// [Subscription.Get].
type SubscriptionInfo struct {
	// ID is the subscription id.
	ID string
	// Type is the delivery mechanism.
	Type SubscriptionType
	// Pattern is the glob pattern, if any.
	Pattern string
	// Streams are the linked streams, each with its acked offset.
	Streams []LinkedStream
	// WebhookURL is where a webhook subscription's wakes go.
	WebhookURL string
	// Signing is how webhook deliveries are signed, when the server says (webhook
	// subscriptions only).
	Signing *WebhookSigning
	// WakeStream is the path of a pull-wake subscription's wake stream.
	WakeStream string
	// LeaseTTL is the lease duration.
	LeaseTTL time.Duration
	// CreatedAt is when the subscription was created, if the server says.
	CreatedAt time.Time
	// Status is the delivery status.
	Status SubscriptionStatus
	// Description is the description, if any.
	Description string
}

// subscriptionBody is a subscription as the server serializes it.
type subscriptionBody struct {
	ID             string         `json:"id"`
	SubscriptionID string         `json:"subscription_id"`
	Type           string         `json:"type"`
	Pattern        *string        `json:"pattern"`
	Streams        []LinkedStream `json:"streams"`
	Webhook        *struct {
		URL     string          `json:"url"`
		Signing *WebhookSigning `json:"signing"`
	} `json:"webhook"`
	WakeStream  *string `json:"wake_stream"`
	LeaseTTLMs  int64   `json:"lease_ttl_ms"`
	CreatedAt   string  `json:"created_at"`
	Status      string  `json:"status"`
	Description *string `json:"description"`
}

func (b *subscriptionBody) info() SubscriptionInfo {
	in := SubscriptionInfo{
		ID:       b.ID,
		Type:     SubscriptionType(b.Type),
		Streams:  b.Streams,
		LeaseTTL: time.Duration(b.LeaseTTLMs) * time.Millisecond,
		Status:   SubscriptionStatus(b.Status),
	}
	if in.ID == "" {
		in.ID = b.SubscriptionID
	}
	if b.Pattern != nil {
		in.Pattern = *b.Pattern
	}
	if b.Webhook != nil {
		in.WebhookURL, in.Signing = b.Webhook.URL, b.Webhook.Signing
	}
	if b.WakeStream != nil {
		in.WakeStream = *b.WakeStream
	}
	if b.Description != nil {
		in.Description = *b.Description
	}
	if t, err := time.Parse(time.RFC3339Nano, b.CreatedAt); err == nil {
		in.CreatedAt = t
	}
	return in
}

// Create creates the subscription with cfg (PUT), or re-confirms it: created is true when
// this call created it (201), false when it existed with the same configuration (200). A
// subscription with this id and another configuration is [ErrSubscriptionConflict]; an
// invalid cfg is an error naming every bad field, and nothing is sent. A pattern links the
// matching streams that exist at their tail: their history is not delivered.
//
// It blocks until the server answers, retrying transient failures (creating is
// idempotent); ctx bounds it.
func (s *Subscription) Create(ctx context.Context, cfg SubscriptionConfig) (info SubscriptionInfo, created bool, err error) {
	if err := cfg.Validate(); err != nil {
		return SubscriptionInfo{}, false, err
	}
	body := struct {
		Type    string   `json:"type"`
		Pattern string   `json:"pattern,omitempty"`
		Streams []string `json:"streams,omitempty"`
		Webhook *struct {
			URL string `json:"url"`
		} `json:"webhook,omitempty"`
		WakeStream  string `json:"wake_stream,omitempty"`
		LeaseTTLMs  int64  `json:"lease_ttl_ms"`
		Description string `json:"description,omitempty"`
	}{
		Type: string(cfg.typ()), Pattern: cfg.Pattern, Streams: cfg.Streams, WakeStream: cfg.WakeStream,
		LeaseTTLMs: cfg.LeaseTTL.Milliseconds(), Description: cfg.Description,
	}
	if cfg.LeaseTTL == 0 {
		body.LeaseTTLMs = protocol.DefaultLeaseTTL.Milliseconds()
	}
	if cfg.WebhookURL != "" {
		body.Webhook = &struct {
			URL string `json:"url"`
		}{cfg.WebhookURL}
	}
	var out subscriptionBody
	status, err := s.call(ctx, "", &request{op: OpCreateSubscription, method: http.MethodPut, safety: idempotent}, body, &out)
	if err != nil {
		return SubscriptionInfo{}, false, err
	}
	return out.info(), status == http.StatusCreated, nil
}

// Get reads the subscription (GET): its configuration and every linked stream with its
// acked offset. A missing subscription is [ErrSubscriptionNotFound]. It blocks until the
// server answers, retrying transient failures.
func (s *Subscription) Get(ctx context.Context) (SubscriptionInfo, error) {
	var out subscriptionBody
	if _, err := s.call(ctx, "", &request{op: OpGetSubscription, method: http.MethodGet, safety: idempotent}, nil, &out); err != nil {
		return SubscriptionInfo{}, err
	}
	return out.info(), nil
}

// Delete deletes the subscription (DELETE). Claims and wakes in flight are fenced: their
// acks fail and move no cursor. Deleting a missing subscription succeeds on servers that
// treat it as idempotent (the reference server does). It blocks until the server answers,
// retrying transient failures.
func (s *Subscription) Delete(ctx context.Context) error {
	_, err := s.call(ctx, "", &request{op: OpDeleteSubscription, method: http.MethodDelete, safety: idempotent}, nil, nil)
	return err
}

// AddStreams links paths explicitly (POST {id}/streams), each at its current tail; a
// stream already linked stays as it is. It blocks until the server answers, retrying
// transient failures (adding is idempotent).
func (s *Subscription) AddStreams(ctx context.Context, paths ...string) error {
	if len(paths) == 0 {
		return invalidArg(OpAddStreams, s.redacted("/"+protocol.SubscriptionStreams), "no stream paths")
	}
	for i, p := range paths {
		if msg := badStreamPath(p); msg != "" {
			return invalidArg(OpAddStreams, s.redacted("/"+protocol.SubscriptionStreams), "paths[%d]: %s", i, msg)
		}
	}
	body := struct {
		Streams []string `json:"streams"`
	}{paths}
	_, err := s.call(ctx, "/"+protocol.SubscriptionStreams, &request{op: OpAddStreams, method: http.MethodPost, safety: idempotent}, body, nil)
	return err
}

// RemoveStream removes the explicit link of path (DELETE {id}/streams/{path}). A stream
// that the pattern matches stays linked by it; removing a link that does not exist
// succeeds. It blocks until the server answers, retrying transient failures.
func (s *Subscription) RemoveStream(ctx context.Context, path string) error {
	if msg := badStreamPath(path); msg != "" {
		return invalidArg(OpRemoveStream, s.redacted("/"+protocol.SubscriptionStreams), "%s", msg)
	}
	suffix := streamURL("/"+protocol.SubscriptionStreams+"/", path, "")
	_, err := s.call(ctx, suffix, &request{op: OpRemoveStream, method: http.MethodDelete, safety: idempotent}, nil, nil)
	return err
}

// redacted returns the subscription URL plus suffix, with any password hidden.
func (s *Subscription) redacted(suffix string) string { return redactURL(s.url + suffix) }

// call sends r to the subscription URL plus suffix, with in (if not nil) as its JSON body,
// and decodes a JSON answer into out (if not nil). It returns the response status. Errors
// are *Error, refined by the server's error body (see classify), their URL redacted.
func (s *Subscription) call(ctx context.Context, suffix string, r *request, in, out any) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	return doControl(ctx, s.act, withQuery(s.url+suffix, s.query), r, in, out)
}

// doControl sends a control request (subscription, claim, webhook callback) to rawURL with
// the settings of cfg, whose HTTP client keeps error bodies (see keepErrorBodies).
func doControl(ctx context.Context, cfg config, rawURL string, r *request, in, out any) (int, error) {
	h := (&Client{cfg: cfg}).Stream(rawURL)
	if h.err != nil {
		return 0, h.err
	}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, &Error{Op: r.op, URL: redactURL(h.url), Kind: ErrInvalidArgument, Err: err}
		}
		r.body, r.ctype = b, protocol.ContentTypeJSON
	}
	slot := new(errorBody)
	resp, err := h.do(context.WithValue(ctx, errorBodyKey{}, slot), r)
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.URL = redactURL(e.URL)
		}
		return 0, classify(err, slot.body)
	}
	if out == nil {
		drain(resp)
		return resp.StatusCode, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxControlBody+1))
	switch {
	case err != nil:
		return 0, &Error{Op: r.op, URL: redactURL(h.url), Status: resp.StatusCode, Kind: ErrNetwork, Err: err}
	case len(b) > maxControlBody:
		return 0, &Error{Op: r.op, URL: redactURL(h.url), Status: resp.StatusCode, Kind: ErrTooLarge,
			Detail: "response larger than " + strconv.Itoa(maxControlBody) + " bytes"}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return 0, &Error{Op: r.op, URL: redactURL(h.url), Status: resp.StatusCode, Kind: ErrParse, Err: err}
	}
	return resp.StatusCode, nil
}

// redactURL hides the password of a URL's user information.
func redactURL(raw string) string {
	if !strings.Contains(raw, "@") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// errorBody receives the body of an error response of a control request, which the
// client's status mapping reads and closes: the server's error code and details are in it.
type errorBody struct{ body []byte }

type errorBodyKey struct{}

// keepErrorBodies returns a copy of hc whose transport, for requests whose context holds an
// *errorBody, copies the body (up to maxErrorBodyBytes) of a response of 400 or more into
// it and hands on a reader of the same bytes.
func keepErrorBodies(hc *http.Client) *http.Client {
	if hc == nil {
		return nil
	}
	c := *hc
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = &errorBodyTransport{rt: rt}
	return &c
}

type errorBodyTransport struct{ rt http.RoundTripper }

func (t *errorBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	slot, _ := req.Context().Value(errorBodyKey{}).(*errorBody)
	if slot == nil {
		return resp, nil
	}
	// A read error leaves what was read: the status mapping needs no more.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	resp.Body.Close()
	slot.body = b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the wrapped transport.
func (t *errorBodyTransport) CloseIdleConnections() {
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
