package dsclient

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// WakeEvent is an event of a pull-wake subscription's wake stream (PROTOCOL.md section
// 7.2): the subscription has pending work at generation Generation, first seen on Stream.
// Read the wake stream with [JSONItems] and claim the subscription it names. Events are
// hints: a claim may find the work done ([ErrNoPendingWork]) or taken ([ErrAlreadyClaimed]).
type WakeEvent struct {
	// Type is "wake".
	Type string `json:"type"`
	// SubscriptionID is the subscription that has pending work.
	SubscriptionID string `json:"subscription_id"`
	// Stream is the linked stream whose append caused the wake.
	Stream string `json:"stream"`
	// Generation is the wake's generation.
	Generation int64 `json:"generation"`
	// TS is when the server wrote the event, in Unix milliseconds.
	TS int64 `json:"ts"`
}

// Time returns TS as a time.
func (e WakeEvent) Time() time.Time { return time.UnixMilli(e.TS) }

// StreamAck acknowledges a linked stream up to Offset, inclusive: the subscription's cursor
// on Stream moves to Offset, and the next claim reads from it. Offset is an offset the
// server returned for that stream (a [Chunk.NextOffset] or a [LinkedStream.TailOffset]),
// never before the stream's acked offset nor past its tail.
type StreamAck struct {
	// Stream is the stream's root-relative path ([LinkedStream.Path]).
	Stream string `json:"stream"`
	// Offset is the new cursor.
	Offset Offset `json:"offset"`
}

// AckResult is the server's answer to an ack or a webhook callback.
type AckResult struct {
	// NextWake reports, for an ack with done, that work arrived after the claim's snapshot:
	// the server has already issued the next wake (a new wake event, or a new webhook
	// delivery).
	NextWake bool
}

// Claim is the lease a worker holds on a pull-wake subscription, from
// [Subscription.Claim]. Its wake, generation, streams and TTL are fixed; its deadline moves
// with each heartbeat ([Claim.Ack] without done). The claim ends with an ack with done, a
// release, or when the lease passes: then the server fences it, and its acks fail with
// [ErrFenced]. Its methods are safe for concurrent use (a heartbeat goroutine beside the
// reading one).
//
// A worker reads each stream of [Claim.Pending] from its [LinkedStream.AckedOffset] with
// [Subscription.Stream] and [Stream.Reader], acks what it has processed with heartbeats
// well inside the lease (every LeaseTTL/3, say: a heartbeat extends the lease by the TTL
// from when the server receives it), and when its streams are caught up acks done (or
// releases the claim when it stops early). On [ErrFenced], or once [Claim.Deadline] has
// passed, it stops reading at once and commits nothing more: another worker owns the
// streams now and will deliver again from the last acked offsets.
//
// The claim token authorizes acks for a limited time (an hour on the reference server,
// however often the lease is extended): a worker ends its claim well before that and claims
// again. An ack with an expired token fails with [ErrUnauthorized] (code TOKEN_EXPIRED); a
// worker treats it like [ErrFenced].
type Claim struct {
	sub        *Subscription
	worker     string
	wakeID     string
	generation int64
	token      string
	streams    []LinkedStream
	ttl        time.Duration

	mu       sync.Mutex
	deadline time.Time // zero once the claim ended
}

// claimBody is the server's answer to a claim.
type claimBody struct {
	WakeID     string         `json:"wake_id"`
	Generation int64          `json:"generation"`
	Token      string         `json:"token"`
	Streams    []LinkedStream `json:"streams"`
	LeaseTTLMs int64          `json:"lease_ttl_ms"`
}

// Claim takes the lease of a pull-wake subscription for worker, a name that identifies the
// worker to others (it is what [SubscriptionError.Holder] reports to them). It fails with
// [ErrAlreadyClaimed] while another worker (or this one) holds the lease, and with
// [ErrNoPendingWork] when every linked stream is acked up to its tail.
//
// It blocks until the server answers. A claim is not idempotent: it is sent again only when
// it provably did not reach the server (or was refused unprocessed, 429 or 503). A claim
// whose answer is lost holds the lease until its TTL passes, and meanwhile claims fail
// with [ErrAlreadyClaimed] naming worker.
func (s *Subscription) Claim(ctx context.Context, worker string) (*Claim, error) {
	if worker == "" || !validHeaderValue(worker) {
		return nil, invalidArg(OpClaim, s.redacted("/"+protocol.SubscriptionClaim), "worker must be a non-empty name without control characters")
	}
	body := struct {
		Worker string `json:"worker"`
	}{worker}
	start := time.Now()
	var out claimBody
	if _, err := s.call(ctx, "/"+protocol.SubscriptionClaim, &request{op: OpClaim, method: http.MethodPost, safety: unsafe}, body, &out); err != nil {
		return nil, err
	}
	if out.WakeID == "" || out.Token == "" || out.LeaseTTLMs <= 0 {
		return nil, &Error{Op: OpClaim, URL: s.redacted("/" + protocol.SubscriptionClaim), Status: http.StatusOK, Kind: ErrParse,
			Detail: "claim answer lacks wake_id, token or lease_ttl_ms"}
	}
	ttl := time.Duration(out.LeaseTTLMs) * time.Millisecond
	return &Claim{sub: s, worker: worker, wakeID: out.WakeID, generation: out.Generation, token: out.Token,
		streams: out.Streams, ttl: ttl, deadline: start.Add(ttl)}, nil
}

// Subscription returns the subscription the claim is on.
func (c *Claim) Subscription() *Subscription { return c.sub }

// Worker returns the worker name the claim was made with.
func (c *Claim) Worker() string { return c.worker }

// WakeID returns the id of the wake the claim holds.
func (c *Claim) WakeID() string { return c.wakeID }

// Generation returns the claim's generation, the subscription's fencing counter.
func (c *Claim) Generation() int64 { return c.generation }

// LeaseTTL returns the lease duration: each heartbeat extends the lease by it.
func (c *Claim) LeaseTTL() time.Duration { return c.ttl }

// Streams returns every linked stream as of the claim, each with its acked and tail offset.
// The slice is the caller's.
func (c *Claim) Streams() []LinkedStream { return slices.Clone(c.streams) }

// Pending returns the streams that had data past their acked offset as of the claim. The
// slice is the caller's.
func (c *Claim) Pending() []LinkedStream {
	var p []LinkedStream
	for _, s := range c.streams {
		if s.HasPending {
			p = append(p, s)
		}
	}
	return p
}

// Deadline returns the time by which the lease passes unless a heartbeat extends it, by
// this process's clock: the claim's (or the last successful heartbeat's) send time plus
// the TTL, never later than the server's own deadline. It returns the zero time once the
// claim has ended: acked done, released, fenced, or its subscription deleted.
func (c *Claim) Deadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline
}

// ackBody is the body of an ack, release or callback.
type ackBody struct {
	WakeID     string      `json:"wake_id"`
	Generation int64       `json:"generation"`
	Acks       []StreamAck `json:"acks,omitempty"`
	Done       bool        `json:"done,omitempty"`
}

// ackAnswer is the server's answer to an ack or callback.
type ackAnswer struct {
	OK       bool `json:"ok"`
	NextWake bool `json:"next_wake"`
}

// Ack applies acks (the cursors move at once) and, without done, extends the lease by its
// TTL: an ack with no acks is a plain heartbeat. With done it ends the claim and releases
// the lease; the result says whether the server issued the next wake for work that
// arrived meanwhile.
//
// A fenced claim (its lease passed, or it already ended) fails with [ErrFenced] and moves
// no cursor; an ack of an unlinked stream, or of an offset before the cursor or past the
// tail, fails with [ErrInvalidAck] and applies none of acks. It blocks until the server
// answers. A heartbeat is retried on transient failures (it is idempotent); an ack with
// done only when it provably did not reach the server.
func (c *Claim) Ack(ctx context.Context, acks []StreamAck, done bool) (AckResult, error) {
	if err := checkAcks(OpAck, c.sub.redacted("/"+protocol.SubscriptionAck), acks); err != nil {
		return AckResult{}, err
	}
	r := &request{op: OpAck, method: http.MethodPost, safety: idempotent, header: []kv{c.auth()}}
	if done {
		r.safety = unsafe
	}
	start := time.Now()
	var out ackAnswer
	_, err := c.sub.call(ctx, "/"+protocol.SubscriptionAck, r, ackBody{WakeID: c.wakeID, Generation: c.generation, Acks: acks, Done: done}, &out)
	c.mu.Lock()
	switch {
	case ended(err) || err == nil && done:
		c.deadline = time.Time{}
	case err == nil && !c.deadline.IsZero() && start.Add(c.ttl).After(c.deadline):
		c.deadline = start.Add(c.ttl)
	}
	c.mu.Unlock()
	if err != nil {
		return AckResult{}, err
	}
	return AckResult{NextWake: out.NextWake}, nil
}

// Release gives the lease back without acking (204): the server wakes the subscription
// again if work is pending, for this or another worker to claim. A fenced claim fails with
// [ErrFenced]. It blocks until the server answers, and is sent again only when it provably
// did not reach the server.
func (c *Claim) Release(ctx context.Context) error {
	r := &request{op: OpRelease, method: http.MethodPost, safety: unsafe, header: []kv{c.auth()}}
	_, err := c.sub.call(ctx, "/"+protocol.SubscriptionRelease, r, ackBody{WakeID: c.wakeID, Generation: c.generation}, nil)
	if err == nil || ended(err) {
		c.mu.Lock()
		c.deadline = time.Time{}
		c.mu.Unlock()
	}
	return err
}

// ended reports whether err says that a claim is over: fenced, or its subscription deleted.
func ended(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, ErrSubscriptionNotFound)
}

func (c *Claim) auth() kv { return kv{protocol.HeaderAuthorization, protocol.BearerPrefix + c.token} }

// checkAcks rejects acks the server would refuse for their form: an empty stream or offset,
// or a sentinel offset.
func checkAcks(op Op, url string, acks []StreamAck) error {
	for i, a := range acks {
		switch {
		case a.Stream == "":
			return invalidArg(op, url, "acks[%d]: empty stream path", i)
		case a.Offset == "" || a.Offset == Beginning || a.Offset == Now:
			return invalidArg(op, url, "acks[%d] (%s): offset must be one the server returned, got %q", i, a.Stream, a.Offset)
		}
	}
	return nil
}
