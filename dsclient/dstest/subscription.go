package dstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// Subscriptions (PROTOCOL.md sections 6 and 7), as the reference server 0.3.7 runs them: a
// server-held cursor (acked offset) per linked stream; a wake (a new generation and wake id)
// when an idle subscription has pending work; for pull-wake a wake event appended to the wake
// stream and a lease taken by a claim and renewed by acks; for webhooks a signed POST, a lease
// from the wake, and a callback.
//
// All subscriptions share one lock, subs.mu. Lock order: subs.mu, then Handler.mu, then a
// stream's mu; the stream code calls into subscriptions only after releasing its own locks.
//
// Memory is bounded per subscription by its links: one per stream it is linked to (those of
// its pattern are bounded by the streams that exist; explicit ones by
// Options.MaxExplicitStreams), each a path and an offset; a wake holds one snapshot of the
// linked streams' tails, and at most one webhook delivery is in flight and one retry
// scheduled per subscription. Per stream, nothing is kept beyond its links. The wake stream
// receives one event per wake, not per append.

// subConfig is a subscription's normalized configuration: two PUTs re-confirm each other when
// their configurations are equal (the protocol hashes them; comparing them is the same).
type subConfig struct {
	typ         string
	pattern     string   // "" for none
	streams     []string // explicit streams, sorted, without duplicates
	webhookURL  string
	wakeStream  string
	leaseTTL    int64 // milliseconds
	description *string
}

func (c *subConfig) equal(o *subConfig) bool {
	return c.typ == o.typ && c.pattern == o.pattern && slices.Equal(c.streams, o.streams) &&
		c.webhookURL == o.webhookURL && c.wakeStream == o.wakeStream && c.leaseTTL == o.leaseTTL &&
		(c.description == nil) == (o.description == nil) &&
		(c.description == nil || *c.description == *o.description)
}

// A link is a subscription's cursor on one stream.
type link struct {
	path     string // stream-root-relative
	glob     bool   // linked by the pattern
	explicit bool   // linked by streams[]
	acked    int64  // position of the last processed offset, inclusive; -1 before the first
}

// linkType is the link's type in responses: explicit takes precedence.
func (l *link) linkType() string {
	if l.explicit {
		return protocol.LinkExplicit
	}
	return protocol.LinkGlob
}

type subscription struct {
	id        string
	cfg       subConfig
	glob      glob   // nil without a pattern
	base      string // scheme://host of the request that created it: callback and JWKS URLs
	createdAt time.Time
	links     map[string]*link
	explicit  int // links with explicit set
	deleted   bool

	// The current wake: generation counts every wake; wakeID is "" when none is in flight.
	generation int64
	wakeID     string
	snapshot   map[string]int64 // webhook: the linked streams' tails when the wake was issued
	token      string           // the current claim or callback token
	holder     string           // pull-wake: the worker holding the lease
	lease      *time.Timer
	leaseSeq   uint64 // bumped whenever the lease changes, so that a stale timer does nothing

	// Webhook delivery.
	failed      bool // the last attempt failed and a retry is scheduled
	attempts    int  // failed attempts since the last success
	retry       *time.Timer
	retrySeq    uint64
	nextAttempt time.Time
	delivering  bool // a delivery is in flight
	redeliver   bool // a new wake was issued while it was
}

// subscriptions is a Handler's subscription state.
type subscriptions struct {
	mu     sync.Mutex
	byID   map[string]*subscription
	count  atomic.Int32 // len(byID), read without the lock on every append
	closed bool         // Handler.Close: no more wakes, timers or deliveries

	tokens  *tokenSigner
	signer  *webhookSigner
	client  *http.Client
	ctx     context.Context // cancelled by Close: ends deliveries
	cancel  context.CancelFunc
	working sync.WaitGroup // delivery goroutines
}

func (h *Handler) initSubscriptions() {
	ss := &h.subs
	ss.byID = make(map[string]*subscription)
	ss.tokens = newTokenSigner(h.opts.TokenTTL)
	ss.signer = newWebhookSigner(h.opts.SigningKey)
	ss.client = h.opts.WebhookClient
	if ss.client == nil {
		ss.client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	ss.ctx, ss.cancel = context.WithCancel(context.Background())
}

// closeSubscriptions stops every timer, cancels deliveries in flight and waits for them.
func (h *Handler) closeSubscriptions() {
	ss := &h.subs
	ss.mu.Lock()
	ss.closed = true
	for _, sub := range ss.byID {
		sub.stopTimers()
	}
	ss.mu.Unlock()
	ss.cancel()
	ss.working.Wait()
	if h.opts.WebhookClient == nil {
		ss.client.CloseIdleConnections()
	}
}

// resetSubscriptions deletes every subscription.
func (h *Handler) resetSubscriptions() {
	ss := &h.subs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, sub := range ss.byID {
		sub.deleted = true
		sub.stopTimers()
		delete(ss.byID, id)
	}
	ss.count.Store(0)
}

func (sub *subscription) stopTimers() {
	sub.clearLease()
	if sub.retry != nil {
		sub.retry.Stop()
		sub.retry = nil
	}
	sub.retrySeq++
}

// A subError is a subscription request's failure: its status and the body's error object.
type subError struct {
	status  int
	code    string
	message string
	holder  string // ALREADY_CLAIMED
	gen     int64  // ALREADY_CLAIMED
}

func errorf(status int, code, message string) *subError {
	return &subError{status: status, code: code, message: message}
}

var errNotFound = errorf(http.StatusNotFound, protocol.CodeSubscriptionNotFound, "subscription not found")

// normalizePath strips the slashes around a stream-root-relative path, as the reference
// server does.
func normalizePath(p string) string { return strings.Trim(p, "/") }

// reservedPath reports whether a stream-root-relative path lies under the reserved __ds
// segment.
func reservedPath(p string) bool {
	return p == protocol.ReservedSegment || strings.HasPrefix(p, protocol.ReservedSegment+"/")
}

// tail returns the tail position of the stream at the stream-root-relative path rel, 0 when
// there is none (as the reference server answers the zero offset for a missing stream).
func (h *Handler) tail(rel string) uint64 {
	h.mu.RLock()
	s := h.streams[h.opts.Prefix+rel]
	gone := s == nil || s.softDeleted
	h.mu.RUnlock()
	if gone || s.expired(time.Now()) {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.log.tail
}

// ackedOffset formats a link's cursor.
func ackedOffset(pos int64) string {
	if pos < 0 {
		return protocol.OffsetBeginning
	}
	return formatOffset(uint64(pos))
}

// streamInfo is a linked stream as claims and webhooks describe it.
type streamInfo struct {
	Path        string `json:"path"`
	LinkType    string `json:"link_type"`
	AckedOffset string `json:"acked_offset"`
	TailOffset  string `json:"tail_offset"`
	HasPending  bool   `json:"has_pending"`

	tail uint64
}

// infosLocked describes every linked stream, sorted by path. The caller holds subs.mu.
func (h *Handler) infosLocked(sub *subscription) []streamInfo {
	out := make([]streamInfo, 0, len(sub.links))
	for _, l := range sub.links {
		t := h.tail(l.path)
		out = append(out, streamInfo{
			Path: l.path, LinkType: l.linkType(), AckedOffset: ackedOffset(l.acked),
			TailOffset: formatOffset(t), HasPending: int64(t) > l.acked, tail: t,
		})
	}
	slices.SortFunc(out, func(a, b streamInfo) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// pendingLocked returns the first linked stream (by path) with a tail past its cursor, or
// false. The caller holds subs.mu.
func (h *Handler) pendingLocked(sub *subscription) (string, bool) {
	first, found := "", false
	for _, l := range sub.links {
		if int64(h.tail(l.path)) > l.acked && (!found || l.path < first) {
			first, found = l.path, true
		}
	}
	return first, found
}

// linkLocked links path to sub (or adds a link type to an existing link) with cursor acked
// for a new link. The caller holds subs.mu.
func (sub *subscription) linkLocked(path string, explicit bool, acked int64) {
	l := sub.links[path]
	if l == nil {
		l = &link{path: path, acked: acked}
		sub.links[path] = l
	}
	if explicit {
		if !l.explicit {
			sub.explicit++
		}
		l.explicit = true
	} else {
		l.glob = true
	}
}

// createSubscription creates subscription id, or re-confirms it when it exists with the same
// configuration. base is the scheme and host the request came to.
func (h *Handler) createSubscription(id string, cfg *subConfig, base string) (*subscription, bool, *subError) {
	ss := &h.subs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if old := ss.byID[id]; old != nil {
		if !old.cfg.equal(cfg) {
			return nil, false, errorf(http.StatusConflict, protocol.CodeSubscriptionExists,
				"a subscription with this id exists with a different configuration")
		}
		return old, false, nil
	}
	if cfg.typ == protocol.SubscriptionWebhook {
		if h.opts.DisableWebhooks {
			return nil, false, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest,
				"webhook subscriptions are not enabled on this server")
		}
		if msg := checkWebhookURL(cfg.webhookURL); msg != "" {
			return nil, false, errorf(http.StatusBadRequest, protocol.CodeWebhookURLRejected, msg)
		}
	}
	if len(ss.byID) >= h.opts.MaxSubscriptions {
		return nil, false, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest,
			"too many subscriptions: this server keeps at most "+strconv.Itoa(h.opts.MaxSubscriptions)+" (Options.MaxSubscriptions)")
	}
	sub := &subscription{
		id: id, cfg: *cfg, base: base, createdAt: time.Now(),
		links: make(map[string]*link),
	}
	if cfg.pattern != "" {
		sub.glob = parseGlob(cfg.pattern)
	}
	for _, p := range cfg.streams {
		sub.linkLocked(p, true, int64(h.tail(p)))
	}
	if sub.glob != nil {
		// Existing matching streams are linked at their tail: no history is replayed.
		for _, p := range h.streamPaths() {
			if p != cfg.wakeStream && sub.glob.match(p) {
				sub.linkLocked(p, false, int64(h.tail(p)))
			}
		}
	}
	ss.byID[id] = sub
	ss.count.Store(int32(len(ss.byID)))
	return sub, true, nil
}

// streamPaths lists the stream-root-relative paths of the streams clients can reach.
func (h *Handler) streamPaths() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.streams))
	for path, s := range h.streams {
		if !s.softDeleted {
			out = append(out, path[len(h.opts.Prefix):])
		}
	}
	return out
}

// deleteSubscription removes subscription id; requests for it fail from then on. Deleting
// an absent subscription succeeds.
func (h *Handler) deleteSubscription(id string) {
	ss := &h.subs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if sub := ss.byID[id]; sub != nil {
		sub.deleted = true
		sub.stopTimers()
		delete(ss.byID, id)
		ss.count.Store(int32(len(ss.byID)))
	}
}

// addStreams links paths explicitly to subscription id at their tails.
func (h *Handler) addStreams(id string, paths []string) *subError {
	ss := &h.subs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	sub := ss.byID[id]
	if sub == nil {
		return errNotFound
	}
	added := 0
	for _, p := range slices.Compact(slices.Sorted(slices.Values(paths))) {
		if l := sub.links[p]; l == nil || !l.explicit {
			added++
		}
	}
	if sub.explicit+added > h.opts.MaxExplicitStreams {
		return errorf(http.StatusBadRequest, protocol.CodeInvalidRequest,
			"too many explicit streams: a subscription keeps at most "+strconv.Itoa(h.opts.MaxExplicitStreams)+" (Options.MaxExplicitStreams)")
	}
	for _, p := range paths {
		sub.linkLocked(p, true, int64(h.tail(p)))
	}
	return nil
}

// removeStream removes the explicit link of path from subscription id; a glob link stays.
func (h *Handler) removeStream(id, path string) *subError {
	ss := &h.subs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	sub := ss.byID[id]
	if sub == nil {
		return errNotFound
	}
	if l := sub.links[path]; l != nil && l.explicit {
		l.explicit = false
		sub.explicit--
		if !l.glob {
			delete(sub.links, path)
		}
	}
	return nil
}

// streamAppended is called after data was appended to the stream at the absolute path (or a
// stream was created with data): subscriptions whose pattern matches link it, at -1 when it
// is new to them, and idle subscriptions linked to it wake. The caller holds no lock.
func (h *Handler) streamAppended(path string) {
	ss := &h.subs
	if ss.count.Load() == 0 {
		return
	}
	rel := path[len(h.opts.Prefix):]
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return
	}
	for _, sub := range ss.byID {
		l := sub.links[rel]
		if sub.glob != nil && (l == nil || !l.glob) && rel != sub.cfg.wakeStream && sub.glob.match(rel) {
			sub.linkLocked(rel, false, -1)
			l = sub.links[rel]
		}
		if l != nil {
			h.maybeWakeLocked(sub, rel)
		}
	}
}

// streamDeleted unlinks the stream at the absolute path from every subscription, as the
// reference server does.
func (h *Handler) streamDeleted(path string) {
	ss := &h.subs
	if ss.count.Load() == 0 {
		return
	}
	rel := path[len(h.opts.Prefix):]
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, sub := range ss.byID {
		if l := sub.links[rel]; l != nil {
			if l.explicit {
				sub.explicit--
			}
			delete(sub.links, rel)
		}
	}
}

// maybeWakeLocked issues a wake when sub is idle (no wake in flight, no lease held) and has
// pending work; triggeredBy is the stream that changed. The caller holds subs.mu.
func (h *Handler) maybeWakeLocked(sub *subscription, triggeredBy string) {
	if sub.wakeID != "" || sub.holder != "" {
		return
	}
	if l := sub.links[triggeredBy]; l == nil || int64(h.tail(triggeredBy)) <= l.acked {
		var ok bool
		if triggeredBy, ok = h.pendingLocked(sub); !ok {
			return
		}
	}
	h.wakeLocked(sub, triggeredBy)
}

// wakeLocked issues a wake: the next generation and a new wake id; for a pull-wake
// subscription a wake event on its wake stream, for a webhook subscription a token, a lease
// and a delivery. The caller holds subs.mu.
func (h *Handler) wakeLocked(sub *subscription, triggeredBy string) {
	if h.subs.closed {
		return
	}
	sub.generation++
	sub.wakeID = newWakeID()
	if sub.cfg.typ == protocol.SubscriptionWebhook {
		sub.snapshot = make(map[string]int64, len(sub.links))
		for _, l := range sub.links {
			sub.snapshot[l.path] = int64(h.tail(l.path))
		}
		sub.token = h.subs.tokens.mint(sub.id, sub.generation, time.Now())
		h.extendLeaseLocked(sub)
		h.deliverLocked(sub)
		return
	}
	h.writeWakeEvent(sub, triggeredBy)
}

// wakeEvent is what a pull-wake subscription appends to its wake stream.
type wakeEvent struct {
	Type           string `json:"type"`
	SubscriptionID string `json:"subscription_id"`
	Stream         string `json:"stream"`
	Generation     int64  `json:"generation"`
	TS             int64  `json:"ts"` // Unix milliseconds
}

// writeWakeEvent appends a wake event for sub's current generation to its wake stream. A
// missing or closed wake stream gets nothing (the wake stays in flight for a claim), as on
// the reference server. Wake events wake no subscription. The caller holds subs.mu.
func (h *Handler) writeWakeEvent(sub *subscription, triggeredBy string) {
	ev, _ := json.Marshal(wakeEvent{
		Type: protocol.WakeEventType, SubscriptionID: sub.id, Stream: triggeredBy,
		Generation: sub.generation, TS: time.Now().UnixMilli(),
	})
	path := h.opts.Prefix + sub.cfg.wakeStream
	s, status := h.lookup(path)
	if status != 0 {
		h.warn("wake stream missing: the wake event was not written",
			slog.String("subscription", sub.id), slog.String("wake_stream", sub.cfg.wakeStream))
		return
	}
	rec := ev
	if s.json {
		rec = append(ev, ',')
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead.Load() || s.closed {
		h.warn("wake stream closed or deleted: the wake event was not written",
			slog.String("subscription", sub.id), slog.String("wake_stream", sub.cfg.wakeStream))
		return
	}
	s.log.append(rec)
	s.notifyLocked()
	s.touch(now)
}

// warn logs a Warn record when Options.Logger is set.
func (h *Handler) warn(msg string, attrs ...slog.Attr) {
	if h.opts.Logger != nil {
		h.opts.Logger.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
	}
}

func newWakeID() string {
	var b [12]byte
	rand.Read(b[:])
	return "w_" + hex.EncodeToString(b[:])
}

// endWakeLocked ends the current wake: no lease, holder, token or wake in flight. The
// caller holds subs.mu.
func (sub *subscription) endWakeLocked() {
	sub.clearLease()
	sub.token, sub.holder, sub.wakeID, sub.snapshot = "", "", "", nil
}

// nextWakeLocked issues the next wake when sub has pending work, and reports whether it did.
// The caller holds subs.mu.
func (h *Handler) nextWakeLocked(sub *subscription) bool {
	p, ok := h.pendingLocked(sub)
	if !ok {
		return false
	}
	h.wakeLocked(sub, p)
	return true
}

// extendLeaseLocked (re)starts sub's lease: when it runs out, the holder and token are
// cleared and, with pending work, the next wake is issued. The caller holds subs.mu.
func (h *Handler) extendLeaseLocked(sub *subscription) {
	sub.clearLease()
	if h.subs.closed {
		return
	}
	seq := sub.leaseSeq
	sub.lease = time.AfterFunc(time.Duration(sub.cfg.leaseTTL)*time.Millisecond, func() {
		ss := &h.subs
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if sub.deleted || ss.closed || sub.leaseSeq != seq {
			return
		}
		sub.lease = nil
		sub.endWakeLocked()
		h.nextWakeLocked(sub)
	})
}

func (sub *subscription) clearLease() {
	if sub.lease != nil {
		sub.lease.Stop()
		sub.lease = nil
	}
	sub.leaseSeq++
}

// claimResult is the body of a successful claim.
type claimResult struct {
	WakeID     string       `json:"wake_id"`
	Generation int64        `json:"generation"`
	Token      string       `json:"token"`
	Streams    []streamInfo `json:"streams"`
	LeaseTTLMS int64        `json:"lease_ttl_ms"`
}

// claim gives worker the lease of pull-wake subscription id.
func (h *Handler) claim(id, worker string) (*claimResult, *subError) {
	ss := &h.subs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	sub := ss.byID[id]
	switch {
	case sub == nil:
		return nil, errNotFound
	case sub.cfg.typ != protocol.SubscriptionPullWake:
		return nil, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, "the subscription is not pull-wake")
	case sub.holder != "":
		e := errorf(http.StatusConflict, protocol.CodeAlreadyClaimed, "another worker holds the lease")
		e.holder, e.gen = sub.holder, sub.generation
		return nil, e
	}
	first, pending := h.pendingLocked(sub)
	if !pending {
		// A wake whose work went away (its streams were deleted or unlinked) is over, so
		// that the next append wakes again.
		sub.wakeID = ""
		return nil, errorf(http.StatusConflict, protocol.CodeNoPendingWork, "the subscription has no pending work")
	}
	if sub.wakeID == "" {
		h.wakeLocked(sub, first)
		if sub.wakeID == "" { // closed
			return nil, errorf(http.StatusServiceUnavailable, protocol.CodeInvalidRequest, "the server is closing")
		}
	}
	sub.holder = worker
	sub.token = ss.tokens.mint(sub.id, sub.generation, time.Now())
	h.extendLeaseLocked(sub)
	return &claimResult{
		WakeID: sub.wakeID, Generation: sub.generation, Token: sub.token,
		Streams: h.infosLocked(sub), LeaseTTLMS: sub.cfg.leaseTTL,
	}, nil
}

// ackRequest is the body of an ack, a callback or a release.
type ackRequest struct {
	WakeID     *string      `json:"wake_id"`
	Generation *json.Number `json:"generation"`
	Acks       []ackEntry   `json:"acks"`
	Done       bool         `json:"done"`
}

type ackEntry struct {
	Stream string `json:"stream"`
	Path   string `json:"path"` // accepted for stream, as on the reference server
	Offset string `json:"offset"`
}

// ackAction is what an ack request is.
type ackAction int

const (
	actionAck      ackAction = iota // pull-wake ack (heartbeat, or done)
	actionCallback                  // webhook callback
	actionRelease                   // pull-wake release
)

// ack applies an ack, a callback or a release to subscription id. It returns whether a next
// wake was issued.
func (h *Handler) ack(id, token string, req *ackRequest, action ackAction) (nextWake bool, e *subError) {
	ss := &h.subs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	sub := ss.byID[id]
	if sub == nil {
		return false, errNotFound
	}
	if action != actionCallback && sub.cfg.typ != protocol.SubscriptionPullWake {
		return false, errorf(http.StatusBadRequest, protocol.CodeInvalidRequest, "the subscription is not pull-wake")
	}
	gen, code := ss.tokens.check(token, id, time.Now())
	if code != "" {
		msg := "invalid token"
		if code == protocol.CodeTokenExpired {
			msg = "token expired"
		}
		return false, errorf(http.StatusUnauthorized, code, msg)
	}
	if sub.wakeID == "" || gen != sub.generation || req.WakeID == nil || *req.WakeID != sub.wakeID ||
		!sameGeneration(req.Generation, sub.generation) {
		return false, errorf(http.StatusConflict, protocol.CodeFenced, "the wake generation is stale")
	}
	if action == actionRelease {
		sub.endWakeLocked()
		h.nextWakeLocked(sub)
		return false, nil
	}
	if e := h.applyAcksLocked(sub, req.Acks); e != nil {
		return false, e
	}
	h.extendLeaseLocked(sub)
	if !req.Done {
		return false, nil
	}
	sub.endWakeLocked()
	return h.nextWakeLocked(sub), nil
}

// sameGeneration reports whether a request's generation, a JSON number, is gen.
func sameGeneration(n *json.Number, gen int64) bool {
	if n == nil {
		return false
	}
	f, err := n.Float64()
	return err == nil && f == float64(gen)
}

// applyAcksLocked moves the cursors of acks, all or none: each names a linked stream and an
// offset between its cursor and its tail. The caller holds subs.mu.
func (h *Handler) applyAcksLocked(sub *subscription, acks []ackEntry) *subError {
	pos := make([]int64, len(acks))
	links := make([]*link, len(acks))
	for i, a := range acks {
		p := a.Stream
		if p == "" {
			p = a.Path
		}
		p = normalizePath(p)
		l := sub.links[p]
		if p == "" || l == nil {
			return errorf(http.StatusConflict, protocol.CodeInvalidOffset, "an ack names a stream the subscription is not linked to: "+strconv.Quote(p))
		}
		if a.Offset == protocol.OffsetBeginning {
			return errorf(http.StatusConflict, protocol.CodeInvalidOffset, "an ack offset must not be -1")
		}
		off, ok := parseOffset(a.Offset)
		switch {
		case !ok:
			return errorf(http.StatusConflict, protocol.CodeInvalidOffset, "an ack offset is not an offset this server returned: "+strconv.Quote(a.Offset))
		case off > h.tail(p):
			return errorf(http.StatusConflict, protocol.CodeInvalidOffset, "an ack offset is beyond the tail of "+strconv.Quote(p))
		case int64(off) < l.acked:
			return errorf(http.StatusConflict, protocol.CodeInvalidOffset, "an ack offset regresses the cursor of "+strconv.Quote(p))
		}
		pos[i], links[i] = int64(off), l
	}
	for i, l := range links {
		l.acked = pos[i]
	}
	return nil
}

// subscriptionView is a subscription as PUT and GET answer it.
type subscriptionView struct {
	ID             string       `json:"id"`
	SubscriptionID string       `json:"subscription_id"`
	Type           string       `json:"type"`
	Pattern        string       `json:"pattern,omitempty"`
	Streams        []linkView   `json:"streams"`
	Webhook        *webhookView `json:"webhook,omitempty"`
	WakeStream     string       `json:"wake_stream,omitempty"`
	LeaseTTLMS     int64        `json:"lease_ttl_ms"`
	CreatedAt      string       `json:"created_at"`
	Status         string       `json:"status"`
	Description    *string      `json:"description,omitempty"`
	NextAttemptAt  *int64       `json:"next_attempt_at,omitempty"` // Unix milliseconds, while failed
}

type linkView struct {
	Path        string `json:"path"`
	LinkType    string `json:"link_type"`
	AckedOffset string `json:"acked_offset"`
}

type webhookView struct {
	URL     string       `json:"url"`
	Signing *signingView `json:"signing,omitempty"`
}

type signingView struct {
	Alg     string `json:"alg"`
	KID     string `json:"kid"`
	JWKSURL string `json:"jwks_url"`
}

// viewLocked describes sub. The caller holds subs.mu.
func (h *Handler) viewLocked(sub *subscription) *subscriptionView {
	v := &subscriptionView{
		ID: sub.id, SubscriptionID: sub.id, Type: sub.cfg.typ, Pattern: sub.cfg.pattern,
		Streams:    []linkView{},
		WakeStream: sub.cfg.wakeStream, LeaseTTLMS: sub.cfg.leaseTTL,
		CreatedAt:   sub.createdAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		Status:      protocol.StatusActive,
		Description: sub.cfg.description,
	}
	for _, in := range h.infosLocked(sub) {
		v.Streams = append(v.Streams, linkView{Path: in.Path, LinkType: in.LinkType, AckedOffset: in.AckedOffset})
	}
	if sub.cfg.typ == protocol.SubscriptionWebhook {
		v.Webhook = &webhookView{URL: sub.cfg.webhookURL, Signing: &signingView{
			Alg: protocol.SigningAlg, KID: h.subs.signer.kid, JWKSURL: sub.base + h.opts.Prefix + protocol.JWKSRoute,
		}}
	}
	if sub.failed {
		v.Status = protocol.StatusFailed
		n := sub.nextAttempt.UnixMilli()
		v.NextAttemptAt = &n
	}
	return v
}

// view describes subscription id, or returns nil when there is none.
func (h *Handler) view(id string) *subscriptionView {
	ss := &h.subs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if sub := ss.byID[id]; sub != nil {
		return h.viewLocked(sub)
	}
	return nil
}
