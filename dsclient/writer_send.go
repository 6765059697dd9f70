package dsclient

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// send posts one batch, retrying transient failures for as long as the writer lives, and
// records the outcome. It runs on its own goroutine, one per batch in flight.
func (w *Writer) send(b *wbatch) {
	defer w.wg.Done()
	w.mu.Lock()
	if b.first.IsZero() {
		b.first = time.Now()
	}
	// The batch keeps its (epoch, seq) while it is in flight: a new epoch starts only when
	// nothing is.
	opts := AppendOptions{ContentType: w.ctype, Close: b.closeStream,
		Idempotent: &IdempotentHeaders{ID: w.o.ID, Epoch: b.epoch, Seq: b.seq}}
	w.mu.Unlock()
	// The client's one retrier, for as long as the writer lives: each attempt is a single
	// request (w.once), and a transient failure is reported, waited for and tried again here.
	var rt *retrier
	for {
		res, err := w.once.Append(w.ctx, b.body, opts)
		w.mu.Lock()
		b.attempts++
		if e := w.transient(b, err); e != nil {
			if rt == nil {
				p := w.s.cfg.retry.RetryPolicy
				p.MaxAttempts = UnlimitedAttempts
				rt = newRetrier(p, w.s.cfg.observer, w.s.url)
			}
			w.mu.Unlock()
			if rt.retry(w.ctx, e) == nil {
				continue
			}
			w.mu.Lock() // closing: the last failure is the outcome
		}
		notify := w.record(b, res, err)
		w.mu.Unlock()
		if notify != nil && w.o.OnError != nil {
			w.o.OnError(notify) // outside the lock: the callback may use the writer (not Close)
		}
		return
	}
}

// transient returns the error of a failed attempt that is to be retried, or nil; it marks
// the batch as possibly stored when the attempt may have reached the server. Called with mu
// held.
func (w *Writer) transient(b *wbatch, err error) *Error {
	var e *Error
	if err == nil || !errors.As(err, &e) || !e.Temporary() || w.ctx.Err() != nil {
		return nil
	}
	if mayHaveStored(e) {
		b.maybeStored = true
	}
	return e
}

// mayHaveStored reports whether a failed append may have been stored by the server: it got no
// answer after the request could have been sent, or a 5xx other than 503 (429 and 503 refuse
// a request unprocessed).
func mayHaveStored(e *Error) bool {
	if e.Status == 0 {
		return !isDialError(e.Err)
	}
	return !refusedStatus(e.Status)
}

// record applies a batch's outcome; it returns the error to report when the writer fails.
// Called with mu held.
func (w *Writer) record(b *wbatch, res AppendResult, err error) error {
	defer w.broadcast()
	w.inflight--
	switch {
	case b.closeOnly():
		res.Duplicate = false // a close answers 204 whether or not it repeats one
	case res.Duplicate && res.NextOffset != "" && !res.Closed:
		// A duplicate has no tail offset to report: this 204 comes from a server that stored
		// the batch without the protocol's producer semantics.
		res.Duplicate = false
	}
	var e *Error
	errors.As(err, &e)
	switch {
	case err == nil && res.Duplicate && !b.closeStream && !w.mine(b, res):
		// The server holds (epoch, seq) from a writer that is not this one: the batch is not
		// in the stream.
		cause := &Error{Op: OpAppend, URL: w.s.url, Status: http.StatusNoContent, Kind: ErrEpochInUse,
			Detail: fmt.Sprintf("writer %q, epoch %d: the server holds sequences up to %d, and sequence %d was never sent by this writer",
				w.o.ID, b.epoch, res.ProducerSeq, b.seq)}
		b.collisions++
		if w.o.EpochPolicy == EpochFixed || b.collisions > maxCollisions {
			w.event(b, false, cause)
			return w.failLocked(cause)
		}
		if err := w.moveEpoch(b, b.epoch+1, cause); err != nil {
			return err
		}
	case err == nil:
		b.res = res
		w.unacked = slices.DeleteFunc(w.unacked, func(x *wbatch) bool { return x == b })
		w.buffered -= b.bytes(w.json)
		w.stats.Batches++
		w.stats.Items += int64(b.items)
		w.stats.Bytes += int64(len(b.body))
		if res.Duplicate {
			w.stats.Duplicates++
		}
		if b.epoch == w.epoch {
			w.owned = true
		}
		if b.closeStream {
			w.final = &b.res
		}
		w.event(b, res.Duplicate, nil)
	case e != nil && e.Kind == ErrSequenceGap && b.hadPred:
		// A predecessor had not reached the server yet: send again once it is stored. The gap
		// also says that no attempt stored this batch.
		b.afterGap, b.maybeStored = true, false
		w.requeue(b)
	case e != nil && e.Kind == ErrSequenceGap && w.o.EpochPolicy == EpochClaim && w.ctx.Err() == nil:
		// Every earlier batch is stored, yet the server expects an earlier sequence: it lost
		// this writer's state. Start over in a new epoch.
		if err := w.moveEpoch(b, b.epoch+1, e); err != nil {
			return err
		}
	case e != nil && e.Kind == ErrStaleEpoch && w.ctx.Err() == nil &&
		(w.o.AutoClaim || w.o.EpochPolicy == EpochClaim && !w.owned):
		// At start (claim) or with AutoClaim: take the ID over above the server's epoch.
		if err := w.moveEpoch(b, e.Epoch+1, e); err != nil {
			return err
		}
	default:
		if w.ctx.Err() != nil && w.err == nil {
			err = &Error{Op: OpAppend, URL: w.s.url, Kind: ErrWriterClosed, Detail: "writer closed before the batch was stored", Err: err}
		}
		w.event(b, false, err)
		return w.failLocked(err)
	}
	w.pump()
	return nil
}

// maxCollisions bounds how often one batch moves to a new epoch because the server answered
// it as another writer's duplicate: more than a few in a row means the server does not
// behave as the protocol says, and sending again would loop.
const maxCollisions = 8

// mine reports whether a duplicate answer to b confirms b itself: an earlier attempt at b's
// (epoch, seq) may have been stored, and the server's last sequence in the epoch is one this
// writer sent. Called with mu held.
func (w *Writer) mine(b *wbatch, res AppendResult) bool {
	return b.maybeStored && res.ProducerSeq <= w.sentSeq
}

// moveEpoch requeues b and starts a new epoch of at least target once nothing is in flight;
// the resend is reported as a retry caused by cause. It fails the writer when no epoch is
// left. Called with mu held.
func (w *Writer) moveEpoch(b *wbatch, target int64, cause error) error {
	if target > maxProducerNumber {
		w.event(b, false, cause)
		return w.noEpochLeft()
	}
	w.moving = true
	w.moveTo = max(w.moveTo, target)
	w.requeue(b)
	w.retryEvent(b, 0, cause)
	return nil
}

// noEpochLeft fails the writer: its epoch cannot grow. Called with mu held.
func (w *Writer) noEpochLeft() error {
	return w.failLocked(&Error{Op: OpAppend, URL: w.s.url, Kind: ErrInvalidArgument,
		Detail: fmt.Sprintf("writer %q: no epoch left below 2^53", w.o.ID)})
}

func (w *Writer) event(b *wbatch, dup bool, err error) {
	if obs := w.s.cfg.observer; obs != nil {
		obs.WriterBatch(WriterBatchEvent{URL: w.s.url, WriterID: w.o.ID, Epoch: b.epoch, Seq: b.seq,
			Items: b.items, Bytes: len(b.body), Duration: time.Since(b.first), Duplicate: dup, Err: err})
	}
}

func (w *Writer) retryEvent(b *wbatch, d time.Duration, cause error) {
	if obs := w.s.cfg.observer; obs != nil {
		op := OpAppend
		if b.closeOnly() {
			op = OpClose
		}
		obs.Retry(RetryEvent{Op: op, URL: w.s.url, Attempt: b.attempts + 1, Delay: d, Err: cause})
	}
}
