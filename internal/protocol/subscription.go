package protocol

import "time"

// Reserved control routes (PROTOCOL.md sections 6 and 7). They live under the stream root
// ({stream-url}, "/v1/stream/" on the reference server): a subscription at
// {stream-url}__ds/subscriptions/{id}, its actions below it, the webhook signing keys at
// {stream-url}__ds/jwks.json.
const (
	// ReservedSegment is the first stream-root-relative segment of every control route; no
	// application stream may start with it.
	ReservedSegment = "__ds"
	// SubscriptionsRoute is the stream-root-relative route of subscriptions; the id follows.
	SubscriptionsRoute = "__ds/subscriptions/"
	// JWKSRoute is the stream-root-relative route of the webhook signing key set.
	JWKSRoute = "__ds/jwks.json"
)

// Routes below a subscription ({stream-url}__ds/subscriptions/{id}/{action}).
const (
	SubscriptionStreams  = "streams" // POST: add explicit streams; DELETE streams/{path}: remove one
	SubscriptionClaim    = "claim"
	SubscriptionAck      = "ack"
	SubscriptionRelease  = "release"
	SubscriptionCallback = "callback"
)

// Subscription types, link types and statuses (sections 6.1 to 6.3).
const (
	SubscriptionWebhook  = "webhook"
	SubscriptionPullWake = "pull-wake"

	LinkGlob     = "glob"
	LinkExplicit = "explicit"

	StatusActive = "active"
	StatusFailed = "failed"

	// WakeEventType is the type of the events a pull-wake subscription writes to its wake
	// stream.
	WakeEventType = "wake"
)

// Subscription error codes, in the body {"error":{"code":...}} (section 7 and the reference
// server 0.3.7).
const (
	CodeInvalidRequest       = "INVALID_REQUEST"             // 400
	CodeSubscriptionNotFound = "SUBSCRIPTION_NOT_FOUND"      // 404
	CodeSubscriptionExists   = "SUBSCRIPTION_ALREADY_EXISTS" // 409: same id, another configuration
	CodeWebhookURLRejected   = "WEBHOOK_URL_REJECTED"        // 400
	CodeTokenInvalid         = "TOKEN_INVALID"               // 401
	CodeTokenExpired         = "TOKEN_EXPIRED"               // 401
	CodeFenced               = "FENCED"                      // 409: stale wake or generation
	CodeAlreadyClaimed       = "ALREADY_CLAIMED"             // 409, with current_holder and generation
	CodeNoPendingWork        = "NO_PENDING_WORK"             // 409: a claim with nothing to do
	CodeInvalidOffset        = "INVALID_OFFSET"              // 409: an ack before the cursor, past the tail, or unknown
)

// Webhook signing (sections 6.5 and 7.1).
const (
	// HeaderWebhookSignature carries t=<unix seconds>,kid=<key id>,ed25519=<base64url
	// signature, unpadded> over "<t>.<raw body>".
	HeaderWebhookSignature = "Webhook-Signature"
	SignatureTimestamp     = "t"
	SignatureKeyID         = "kid"
	SignatureEd25519       = "ed25519"
	// SigningAlg is the alg of a subscription's webhook.signing metadata.
	SigningAlg = "ed25519"
	// ContentTypeJWKSet is the content type of the JWKS route.
	ContentTypeJWKSet = "application/jwk-set+json"
	// KeyIDPrefix starts the key ids the reference server mints ("ds_" and a JWK thumbprint).
	KeyIDPrefix = "ds_"
	// HeaderAuthorization carries "Bearer <token>" on callback, ack and release.
	HeaderAuthorization = "Authorization"
	BearerPrefix        = "Bearer "
)

// Leases and webhook retries (sections 6.2 and 7.1).
const (
	DefaultLeaseTTL = 30 * time.Second
	MinLeaseTTL     = time.Second
	MaxLeaseTTL     = 10 * time.Minute

	WebhookRetryMin    = time.Second
	WebhookRetryMax    = 60 * time.Second
	WebhookRetryJitter = 0.2 // each delay is scaled by a random factor in [1-j, 1+j]
	// WebhookReplayWindow is the largest difference between a signature's timestamp and the
	// receiver's clock that receivers should accept.
	WebhookReplayWindow = 5 * time.Minute
)
