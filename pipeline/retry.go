package pipeline

import "time"

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
func (r *run[T]) retries() bool { return r.o.Failure.Policy == FailRetry }

// retry sends the messages of msgs that failed in this stage (they had not failed before its
// handler, whose state s saved) through the stage's handler again, each from its state before
// the handler, until they succeed or the policy gives up on them. A message that succeeds has
// its attempt count reset: attempts count per handler, the next one starts at 1.
func (r *run[T]) retry(st retrier[T], s *retryScratch[T], msgs []Message[T]) {
	defer clear(s.orig)
	for attempt := 1; attempt <= r.o.Failure.MaxRetries; attempt++ {
		s.idx = s.idx[:0]
		for i := range msgs {
			if msgs[i].err != nil && s.orig[i].err == nil {
				s.idx = append(s.idx, i)
			}
		}
		if len(s.idx) == 0 {
			return
		}
		if !r.backoff(st.stage(), len(s.idx), attempt) {
			return
		}
		s.sub = s.sub[:0]
		for _, i := range s.idx {
			m := s.orig[i]
			m.attempt = int32(attempt)
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
}

// backoff reports a retry and waits before it; false when the handlers' context ended first.
func (r *run[T]) backoff(stage string, n, attempt int) bool {
	f := &r.o.Failure
	d := f.RetryBackoff
	for i := 1; i < attempt && d < f.MaxRetryBackoff; i++ {
		d *= 2
	}
	d = min(d, f.MaxRetryBackoff)
	if r.observed {
		r.obs.Retried(RetryEvent{Pipeline: r.o.Name, Stage: stage, Messages: n, Attempt: attempt + 1, Backoff: d})
	}
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
