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
	dests  []int
	fanIdx []int          // the batchers of a fanned-out message
	split  [][]Message[T] // per batcher, while routing a mixed chunk
	done   []Message[T]   // messages finishing in the processor, while routing a mixed chunk
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
	switch {
	case w.first:
		if r.decoder != nil {
			callDecode(r.decoder, c)
		}
		failedBefore = markProducerFailures(c)
	case r.observed || retry:
		failedBefore = countFailed(c)
	}
	if retry {
		w.retry.save(c)
	}
	failed := w.attempt(c)
	if retry && failed > failedBefore {
		r.retry(w, &w.retry, c)
		failed = countFailed(c)
	}
	if r.observed {
		r.obs.Processed(ProcessedEvent{
			Pipeline: r.o.Name, Processor: w.pl.opts.Name,
			Messages: len(c), Failed: failed - failedBefore, Duration: since(t0),
		})
	}
}

// attempt is one attempt of the pool's handler (and preparer) at the messages of c that have
// not failed. It returns how many messages of c have failed after it.
func (w *processorWorker[T]) attempt(c []Message[T]) (failed int) {
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
		if m.err == nil {
			if err := callHandle(r.hctx, h, m); err != nil {
				m.Fail(err)
			}
		}
		if m.err != nil {
			failed++
		}
	}
	return failed
}

// handle makes one more attempt at msgs, for a retry.
func (w *processorWorker[T]) handle(msgs []Message[T]) { w.attempt(msgs) }

// stage names the pool in retry events.
func (w *processorWorker[T]) stage() string { return w.pl.opts.Name }

// markProducerFailures marks the failures the messages of c arrived with from their producer
// (a message that could not be decoded, by the producer or by its DecodeMessages) as
// permanent: they are bad data. It returns how many there are.
func markProducerFailures[T any](c []Message[T]) int {
	n := 0
	for i := range c {
		if e := c[i].err; e != nil {
			c[i].err = Permanent(e)
			n++
		}
	}
	return n
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

// Where a message goes after the last pool, besides a batcher's index.
const (
	toNone = -1 // it finishes here: it failed, or goes to no batcher
	toMany = -2 // it goes to several batchers (fan-out)
)

// dest returns the index of the batcher m goes to, toNone, or toMany. A message routed to an
// unknown batcher fails.
func (w *processorWorker[T]) dest(m *Message[T]) int {
	if m.err != nil {
		return toNone
	}
	if m.fanned {
		return toMany
	}
	name := w.r.o.DefaultBatcher
	if m.routed {
		name = m.batcher
	}
	if name == "" {
		return toNone
	}
	idx := w.index(name)
	if idx < 0 {
		m.Fail(Permanent(fmt.Errorf("%w %q", ErrUnknownBatcher, name)))
		return toNone
	}
	return idx
}

// index returns the index of the named batcher, or -1.
func (w *processorWorker[T]) index(name string) int {
	if w.lastIdx != -2 && name == w.lastName {
		return w.lastIdx
	}
	for i, b := range w.r.batchers {
		if b.name == name {
			w.lastName, w.lastIdx = name, i
			return i
		}
	}
	return -1
}

// route sends each message of c, which went through the last pool, to its batcher (or a copy
// to each of its batchers), and finishes those that go to none. A chunk whose messages all go
// to one batcher, or all to none, is passed on whole.
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
		switch d := w.dests[0]; {
		case d >= 0:
			r.batchers[d].in <- c
			return
		case d == toNone:
			r.finish(&w.fin, c)
			r.chunks.put(c)
			return
		}
	}
	if w.split == nil {
		w.split = make([][]Message[T], len(r.batchers))
	}
	w.done = w.done[:0]
	for i, d := range w.dests {
		switch {
		case d == toNone:
			w.done = append(w.done, c[i])
		case d == toMany:
			w.fanOut(&c[i])
		default:
			w.add(d, &c[i])
		}
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

// add appends a copy of m to the split for batcher d.
func (w *processorWorker[T]) add(d int, m *Message[T]) {
	if w.split[d] == nil {
		w.split[d] = w.r.chunks.get()
	}
	w.split[d] = append(w.split[d], *m)
}

// fanOut appends a copy of m to the split of each of its batchers, each copy naming its own
// batcher and sharing the state that acknowledges m once they have all finished. When a name
// is unknown, m fails (and finishes here) before any copy is made.
func (w *processorWorker[T]) fanOut(m *Message[T]) {
	f := m.fan()
	w.fanIdx = w.fanIdx[:0]
	for _, name := range f.names {
		d := w.index(name)
		if d < 0 {
			m.Fail(Permanent(fmt.Errorf("%w %q", ErrUnknownBatcher, name)))
			w.done = append(w.done, *m)
			return
		}
		w.fanIdx = append(w.fanIdx, d)
	}
	f = f.claim(len(w.fanIdx))
	for k, d := range w.fanIdx {
		cp := *m
		cp.batcher, cp.acknowledger = f.names[k], f
		w.add(d, &cp)
	}
}
