package pipeline

import "fmt"

// processorWorker is one goroutine of a processor pool with its scratch space, reused for
// every chunk so that the hot path allocates nothing.
type processorWorker[T any] struct {
	r     *run[T]
	pl    *pool[T]
	out   *sender[T] // to the next pool; nil in the last pool, which routes to the batchers
	first bool       // the first pool: its room is given back as chunks leave it
	retry retryScratch[T]
	fin   finishScratch[T]
	// routing, in the last pool only
	dests []int
	split [][]Message[T] // per batcher, while routing a mixed chunk
	done  []Message[T]   // messages finishing in the processor, while routing a mixed chunk
	// route cache: the last batcher name resolved and its index
	lastName string
	lastIdx  int
}

// processorLoop is one goroutine of a processor pool.
func (r *run[T]) processorLoop(pl, next *pool[T], in <-chan []Message[T]) {
	defer r.processorExit(pl, next)
	w := &processorWorker[T]{r: r, pl: pl, first: pl == r.pools[0], lastIdx: -2}
	if next != nil {
		w.out = &sender[T]{r: r, to: next}
	}
	for c := range in {
		if r.abandoned.Load() {
			if w.first {
				r.room.release(len(c))
			}
			r.chunks.put(c)
			continue
		}
		n := len(c)
		w.process(c)
		if w.out != nil {
			w.out.send(c)
		} else {
			w.route(c)
		}
		if w.first { // handled and passed on: the messages leave the first pool's room
			r.room.release(n)
		}
	}
}

// processorExit is deferred by each processor goroutine: the last one of a pool closes the
// next stage's queues.
func (r *run[T]) processorExit(pl, next *pool[T]) {
	pl.exited.arrive(func() {
		if next != nil {
			next.closeInputs()
			return
		}
		for _, b := range r.batchers {
			close(b.in)
		}
	})
}

// process runs the pool's handler on every message of c that has not failed, and retries
// the failures the policy retries.
func (w *processorWorker[T]) process(c []Message[T]) {
	r := w.r
	t0 := r.now()
	retry := r.retries()
	failedBefore := 0
	if r.observed || retry {
		failedBefore = countFailed(c)
	}
	if retry {
		w.retry.save(c)
	}
	w.handle(c)
	if retry && countFailed(c) > failedBefore {
		r.retry(w, &w.retry, c)
	}
	if r.observed {
		r.obs.Processed(ProcessedEvent{
			Pipeline: r.o.Name, Processor: w.pl.opts.Name,
			Messages: len(c), Failed: countFailed(c) - failedBefore, Duration: since(t0),
		})
	}
}

// handle is one attempt of the pool's handler (and preparer) at the messages of c that have
// not failed.
func (w *processorWorker[T]) handle(c []Message[T]) {
	r, pl := w.r, w.pl
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

// stage names the pool in retry events.
func (w *processorWorker[T]) stage() string { return w.pl.opts.Name }

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
func (w *processorWorker[T]) dest(m *Message[T]) int {
	r := w.r
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
		m.Fail(Permanent(fmt.Errorf("%w %q", ErrUnknownBatcher, name)))
		return -1
	}
	w.lastName, w.lastIdx = name, idx
	return idx
}

// route sends each message of c, which went through the last pool, to its batcher, and
// finishes those that go to none. A chunk whose messages all go the same way is passed on
// whole.
func (w *processorWorker[T]) route(c []Message[T]) {
	r := w.r
	if len(r.batchers) == 0 {
		r.finish(&w.fin, c)
		r.chunks.put(c)
		return
	}
	w.dests = w.dests[:0]
	uniform := true
	for i := range c {
		d := w.dest(&c[i])
		w.dests = append(w.dests, d)
		if d != w.dests[0] {
			uniform = false
		}
	}
	if uniform {
		if d := w.dests[0]; d >= 0 {
			r.batchers[d].in <- c
		} else {
			r.finish(&w.fin, c)
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
	r.finish(&w.fin, w.done)
	clear(w.done)
	for d, b := range w.split {
		if len(b) > 0 {
			r.batchers[d].in <- b
			w.split[d] = nil
		}
	}
}
