package pipeline

import (
	"math"
	"time"
)

// retrier is a stage whose handler the retry loop calls again: a processor pool or a
// batcher's batch processor.
type retrier[T any] interface {
	// handle makes one attempt of the stage's handler at msgs.
	handle(msgs []Message[T])
	// stage names the stage in retry events.
	stage() string
}

// retryScratch is a goroutine's reusable space for retries.
type retryScratch[T any] struct {
	orig []Message[T] // the messages as they were before the handler
	sub  []Message[T] // the messages being retried
	idx  []int        // their indexes in the group
}

// save keeps a copy of msgs as they are before the handler, for retries.
func (s *retryScratch[T]) save(msgs []Message[T]) { s.orig = append(s.orig[:0], msgs...) }

// retries reports whether the failure policy retries failed messages.
func (r *run[T]) retries() bool { return r.o.Failure.Policy.retries() }

// retry sends the messages of msgs that failed transiently in this stage (they had not
// failed before its handler, whose state s saved, and their error is not permanent) through
// the stage's handler again, each from its state before the handler, with backoff: under
// RetryTransient until none is left, under RetryThenFail at most MaxRetries times. It gives up
// early only when the handlers' context ends (the shutdown timeout passed): the messages
// still failing then are left unacknowledged by the abandoned drain. A message that succeeds
// has its attempt count reset: attempts count per handler, the next one starts at 1.
func (r *run[T]) retry(st retrier[T], s *retryScratch[T], msgs []Message[T]) {
	f := &r.o.Failure
	bounded := f.Policy != RetryTransient
	held := 0 // messages counted in r.retrying
	for attempt := 1; !bounded || attempt <= f.MaxRetries; attempt++ {
		s.idx = s.idx[:0]
		var first error
		for i := range msgs {
			if m := &msgs[i]; m.err != nil && s.orig[i].err == nil && !IsPermanent(m.err) {
				if first == nil {
					first = m.err
				}
				s.idx = append(s.idx, i)
			}
		}
		r.retrying.Add(int64(len(s.idx) - held))
		held = len(s.idx)
		if held == 0 {
			break
		}
		r.noteTransient(first)
		if !r.backoff(st.stage(), held, attempt, first) {
			break
		}
		s.sub = s.sub[:0]
		for _, i := range s.idx {
			m := s.orig[i]
			m.attempt = int32(min(attempt, math.MaxInt32))
			s.sub = append(s.sub, m)
		}
		st.handle(s.sub)
		for k, i := range s.idx {
			msgs[i] = s.sub[k]
			if msgs[i].err == nil {
				msgs[i].attempt = 0
			}
		}
		clear(s.sub)
	}
	r.retrying.Add(int64(-held))
	clear(s.orig)
}

// backoffFor returns the wait before the given retry (1 for the first): RetryBackoff doubled
// for each retry before it, capped at MaxRetryBackoff.
func (f *FailureOptions[T]) backoffFor(attempt int) time.Duration {
	d := f.RetryBackoff
	for i := 1; i < attempt && d < f.MaxRetryBackoff; i++ {
		if d > f.MaxRetryBackoff/2 {
			return f.MaxRetryBackoff
		}
		d *= 2
	}
	return min(d, f.MaxRetryBackoff)
}

// backoff reports a retry of n messages (observer event, log) and waits before it; false when
// the handlers' context ended first (the shutdown timeout passed), which ends the wait at
// once.
func (r *run[T]) backoff(stage string, n, attempt int, err error) bool {
	d := r.o.Failure.backoffFor(attempt)
	if r.observed {
		r.obs.Retried(RetryEvent{Pipeline: r.o.Name, Stage: stage, Messages: n, Attempt: attempt + 1, Backoff: d, Err: err})
	}
	r.o.Logger.Warn("pipeline: retrying failed messages", "pipeline", r.o.Name, "stage", stage,
		"messages", n, "attempt", attempt+1, "backoff", d, "err", err)
	if d <= 0 {
		return r.hctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.hctx.Done():
		return false
	}
}

// noteTransient records err as the last transient failure, for the shutdown timeout's error.
func (r *run[T]) noteTransient(err error) {
	r.errMu.Lock()
	r.lastTransient = err
	r.errMu.Unlock()
}
