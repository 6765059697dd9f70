package pipeline

import (
	"fmt"
	"time"
)

// worker is one goroutine's scratch space, reused for every chunk or batch it handles so that
// the hot path allocates nothing.
type worker[T any] struct {
	r      *run[T]
	acks   ackScratch
	failed []Message[T] // the failed messages of a group, for the failure handler
	orig   []Message[T] // messages as they were before their handler, for retries
	sub    []Message[T] // the messages being retried
	idx    []int
	dests  []int
	split  [][]Message[T] // per batcher, while routing a mixed chunk
	done   []Message[T]   // messages finishing in the processor, while routing a mixed chunk
	// route cache: the last batcher name resolved and its index
	lastName string
	lastIdx  int
}

func newWorker[T any](r *run[T]) *worker[T] { return &worker[T]{r: r, lastIdx: -2} }

// processorLoop is one goroutine of a processor pool.
func (r *run[T]) processorLoop(pl, next *pool[T], in <-chan []Message[T]) {
	defer r.processorExit(pl, next)
	w := newWorker(r)
	var out *sender[T]
	if next != nil {
		out = &sender[T]{r: r, to: next}
	}
	first := pl == r.pools[0]
	for c := range in {
		if r.abandoned.Load() {
			if first {
				r.room.release(len(c))
			}
			r.chunks.put(c)
			continue
		}
		n := len(c)
		r.process(pl, w, c)
		if out != nil {
			out.send(c)
		} else {
			r.route(w, c)
		}
		if first { // handled and passed on: the messages leave the first pool's room
			r.room.release(n)
		}
	}
}

// processorExit is deferred by each processor goroutine: the last one of a pool closes the
// next stage's queues.
func (r *run[T]) processorExit(pl, next *pool[T]) {
	if pl.left.Add(-1) != 0 {
		return
	}
	if next != nil {
		next.closeInputs()
	} else {
		for _, b := range r.batchers {
			close(b.in)
		}
	}
	close(pl.done)
}

// process runs the pool's handler on every message of c that has not failed.
func (r *run[T]) process(pl *pool[T], w *worker[T], c []Message[T]) {
	t0 := r.now()
	retry := r.o.Failure.Policy == FailRetry
	failedBefore := 0
	if r.observed || retry {
		failedBefore = countFailed(c)
	}
	if retry {
		w.orig = append(w.orig[:0], c...)
	}
	r.handleChunk(pl, c)
	if retry && countFailed(c) > failedBefore {
		r.retryChunk(pl, w, c)
		clear(w.orig)
	}
	if r.observed {
		r.obs.Processed(ProcessedEvent{
			Pipeline: r.o.Name, Processor: pl.opts.Name,
			Messages: len(c), Failed: countFailed(c) - failedBefore, Duration: since(t0),
		})
	}
}

func (r *run[T]) handleChunk(pl *pool[T], c []Message[T]) {
	if pl.preparer != nil {
		if err := callPrepare(r.hctx, pl.preparer, c); err != nil {
			for i := range c {
				c[i].Fail(err)
			}
		}
	}
	h := pl.opts.Handler
	for i := range c {
		m := &c[i]
		if m.err != nil {
			continue
		}
		if err := callHandle(r.hctx, h, m); err != nil {
			m.Fail(err)
		}
	}
}

// retryChunk sends the messages of c that failed in this pool through it again, from their
// state before the handler, until they succeed or run out of retries.
func (r *run[T]) retryChunk(pl *pool[T], w *worker[T], c []Message[T]) {
	for attempt := 1; attempt <= r.o.Failure.MaxRetries; attempt++ {
		w.idx = w.idx[:0]
		for i := range c {
			if c[i].err != nil && w.orig[i].err == nil {
				w.idx = append(w.idx, i)
			}
		}
		if len(w.idx) == 0 {
			return
		}
		if !r.backoff(pl.opts.Name, len(w.idx), attempt) {
			return
		}
		w.sub = w.sub[:0]
		for _, i := range w.idx {
			m := w.orig[i]
			m.attempt = int32(attempt)
			w.sub = append(w.sub, m)
		}
		r.handleChunk(pl, w.sub)
		for k, i := range w.idx {
			c[i] = w.sub[k]
			if c[i].err == nil {
				c[i].attempt = 0 // attempts count per handler: the next one starts at 1
			}
		}
		clear(w.sub)
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

func countFailed[T any](c []Message[T]) int {
	n := 0
	for i := range c {
		if c[i].err != nil {
			n++
		}
	}
	return n
}

// dest returns the index of the batcher m goes to, or -1 when it finishes here (it failed, or
// goes to no batcher). A message routed to an unknown batcher fails.
func (r *run[T]) dest(w *worker[T], m *Message[T]) int {
	if m.err != nil {
		return -1
	}
	name := r.o.DefaultBatcher
	if m.routed {
		name = m.batcher
	}
	if name == "" {
		return -1
	}
	if w.lastIdx != -2 && name == w.lastName {
		return w.lastIdx
	}
	idx := -1
	for i, b := range r.batchers {
		if b.name == name {
			idx = i
			break
		}
	}
	if idx < 0 {
		m.Fail(fmt.Errorf("%w %q", ErrUnknownBatcher, name))
		return -1
	}
	w.lastName, w.lastIdx = name, idx
	return idx
}

// route sends each message of c, which went through the last pool, to its batcher, and
// finishes those that go to none. A chunk whose messages all go the same way is passed on
// whole.
func (r *run[T]) route(w *worker[T], c []Message[T]) {
	if len(r.batchers) == 0 {
		r.finish(w, c)
		r.chunks.put(c)
		return
	}
	w.dests = w.dests[:0]
	uniform := true
	for i := range c {
		d := r.dest(w, &c[i])
		w.dests = append(w.dests, d)
		if d != w.dests[0] {
			uniform = false
		}
	}
	if uniform {
		if d := w.dests[0]; d >= 0 {
			r.batchers[d].in <- c
		} else {
			r.finish(w, c)
			r.chunks.put(c)
		}
		return
	}
	if w.split == nil {
		w.split = make([][]Message[T], len(r.batchers))
	}
	w.done = w.done[:0]
	for i, d := range w.dests {
		if d < 0 {
			w.done = append(w.done, c[i])
			continue
		}
		if w.split[d] == nil {
			w.split[d] = r.chunks.get()
		}
		w.split[d] = append(w.split[d], c[i])
	}
	r.chunks.put(c)
	r.finish(w, w.done)
	clear(w.done)
	for d, b := range w.split {
		if len(b) > 0 {
			r.batchers[d].in <- b
			w.split[d] = nil
		}
	}
}
