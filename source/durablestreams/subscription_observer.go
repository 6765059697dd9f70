package durablestreams

import (
	"fmt"
	"time"
)

// SubscriptionObserver receives a [SubscriptionProducer]'s events: claims attempted (won,
// or refused because another worker holds the lease), claims ended (done, released,
// fenced, expired), lease renewals, and each subscription's lag. The metrics package
// implements it with Prometheus collectors. Embed [NopSubscriptionObserver] to implement
// only some methods.
//
// Methods are called synchronously from the producer's goroutines (one per subscription,
// and the webhook handler's), never per message, so they must be safe for concurrent use
// and fast (no I/O).
type SubscriptionObserver interface {
	// ClaimAttempted is called after each claim request of a pull-wake subscription, and
	// for each webhook wake taken on (Result [ClaimWon], Webhook true).
	ClaimAttempted(ClaimEvent)
	// ClaimEnded is called once for every claim won, when it ends.
	ClaimEnded(ClaimEndEvent)
	// Heartbeat is called after each heartbeat (an ack without done that renews the
	// lease), failed or not.
	Heartbeat(HeartbeatEvent)
	// Lag is called for each subscription at every heartbeat of its claim, and when the
	// claim ends (then with Held false and zero lag).
	Lag(LagEvent)
}

// ClaimResult is the outcome of a claim attempt.
type ClaimResult int

const (
	// ClaimWon: the worker holds the subscription's lease.
	ClaimWon ClaimResult = iota
	// ClaimAlreadyClaimed: another worker (named by ClaimEvent.Holder) holds the lease.
	ClaimAlreadyClaimed
	// ClaimNoPendingWork: every linked stream was acked up to its tail.
	ClaimNoPendingWork
	// ClaimFailed: the request failed (ClaimEvent.Err says why).
	ClaimFailed
)

// String returns "won", "already_claimed", "no_pending_work" or "failed", the metrics'
// label values.
func (r ClaimResult) String() string {
	switch r {
	case ClaimWon:
		return "won"
	case ClaimAlreadyClaimed:
		return "already_claimed"
	case ClaimNoPendingWork:
		return "no_pending_work"
	case ClaimFailed:
		return "failed"
	}
	return fmt.Sprintf("ClaimResult(%d)", int(r))
}

// ClaimEndReason says how a claim ended.
type ClaimEndReason int

const (
	// ClaimDone: every pending stream was read to its tail and committed, and the claim was
	// acked done.
	ClaimDone ClaimEndReason = iota
	// ClaimReleased: the worker stopped early (a drain, or the claim reached
	// SubscriptionOptions.MaxClaimAge), acked what it had committed and released the lease.
	ClaimReleased
	// ClaimFenced: the server answered FENCED (or the subscription is gone, or the token
	// was refused): another worker owns the streams now.
	ClaimFenced
	// ClaimExpired: no heartbeat succeeded in time, and the worker stopped the claim on its
	// own before its lease could pass under it.
	ClaimExpired
	// ClaimEndFailed: the final ack or release failed; the lease passes on the server's
	// clock, and the next holder reads again from what was committed.
	ClaimEndFailed
)

// String returns "done", "released", "fenced", "expired" or "failed", the metrics' label
// values.
func (r ClaimEndReason) String() string {
	switch r {
	case ClaimDone:
		return "done"
	case ClaimReleased:
		return "released"
	case ClaimFenced:
		return "fenced"
	case ClaimExpired:
		return "expired"
	case ClaimEndFailed:
		return "failed"
	}
	return fmt.Sprintf("ClaimEndReason(%d)", int(r))
}

// ClaimEvent describes a claim attempt.
type ClaimEvent struct {
	// Subscription is the subscription's id, and Worker the worker's name.
	Subscription, Worker string
	// Result is the attempt's outcome.
	Result ClaimResult
	// Webhook reports a webhook wake taken on, rather than a pull-wake claim.
	Webhook bool
	// Generation is the claim's generation (ClaimWon), or the holder's
	// (ClaimAlreadyClaimed, when the server says).
	Generation int64
	// Holder is the worker holding the lease, for ClaimAlreadyClaimed.
	Holder string
	// Streams is how many streams the subscription links, and Pending how many of them had
	// work, as of the claim (ClaimWon).
	Streams, Pending int
	// Duration is how long the claim request took (0 for a webhook wake).
	Duration time.Duration
	// Err is the failure, for ClaimFailed.
	Err error
}

// ClaimEndEvent describes the end of a claim.
type ClaimEndEvent struct {
	// Subscription is the subscription's id.
	Subscription string
	// Generation is the claim's generation.
	Generation int64
	// Reason says how the claim ended.
	Reason ClaimEndReason
	// Held is how long the worker held the claim.
	Held time.Duration
	// Messages is how many messages the claim handed to the pipeline.
	Messages int64
	// NextWake reports, for ClaimDone, that work arrived meanwhile and the server woke the
	// subscription again.
	NextWake bool
	// Err is what ended the claim, for ClaimFenced, ClaimExpired and ClaimEndFailed.
	Err error
}

// HeartbeatEvent describes a heartbeat: an ack without done that renews the lease and
// moves the server's cursors to what is committed.
type HeartbeatEvent struct {
	// Subscription is the subscription's id.
	Subscription string
	// Generation is the claim's generation.
	Generation int64
	// Acks is how many streams' cursors the heartbeat moved.
	Acks int
	// Duration is how long the request took.
	Duration time.Duration
	// Err is the failure, or nil when the lease was renewed.
	Err error
}

// LagEvent reports how far behind a subscription's held claim is.
type LagEvent struct {
	// Subscription is the subscription's id.
	Subscription string
	// Held reports whether this worker holds a claim on it.
	Held bool
	// StreamsLeft is how many of the claim's pending streams are not yet read to their
	// tail and committed.
	StreamsLeft int
	// Oldest is the age of the oldest work of the claim not yet committed: of the oldest
	// response read whose messages are not all finished, or, while a pending stream waits
	// for its turn to be read, the time since the claim began. 0 when nothing is left.
	Oldest time.Duration
}

// NopSubscriptionObserver is a [SubscriptionObserver] that ignores every event; embed it to
// implement only some methods.
type NopSubscriptionObserver struct{}

// ClaimAttempted does nothing.
func (NopSubscriptionObserver) ClaimAttempted(ClaimEvent) {}

// ClaimEnded does nothing.
func (NopSubscriptionObserver) ClaimEnded(ClaimEndEvent) {}

// Heartbeat does nothing.
func (NopSubscriptionObserver) Heartbeat(HeartbeatEvent) {}

// Lag does nothing.
func (NopSubscriptionObserver) Lag(LagEvent) {}
