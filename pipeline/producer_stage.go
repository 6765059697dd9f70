package pipeline

import (
	"context"
	"errors"
	"fmt"
)

// producerLoop is one producer goroutine: it reserves room in the first pool and credits under
// MaxInFlight (the demand), waits for the rate limit, asks the producer for that many messages,
// and hands them to the first processor pool.
func (r *run[T]) producerLoop() {
	defer r.producerExit()
	first := r.pools[0]
	out := sender[T]{r: r, to: first}
	lo, hi := first.opts.MinDemand, first.opts.MaxDemand
	for {
		if r.pctx.Err() != nil {
			return
		}
		// Demand: room in the first pool's processors, then under the in-flight bound, then
		// under the rate limit. Each step may only lower the number; what is not used is
		// given back.
		room, err := r.room.acquire(r.pctx, lo, hi)
		if err != nil {
			return
		}
		want, err := r.credits.acquire(r.pctx, min(lo, room), room)
		if err != nil {
			r.room.release(room)
			return
		}
		r.room.release(room - want)
		if got, err := r.p.limiter.take(r.pctx, want); err != nil {
			r.credits.release(want)
			r.room.release(want)
			return
		} else if got < want {
			r.credits.release(want - got)
			r.room.release(want - got)
			want = got
		}
		if r.pctx.Err() != nil {
			// Draining started while this goroutine waited: the waits above may return
			// with what they were given rather than with the context's error, and no
			// Produce call starts once draining has.
			r.credits.release(want)
			r.room.release(want)
			r.p.limiter.giveBack(want)
			return
		}
		buf := r.chunks.get()[:want]
		t0 := r.now()
		n, err := callProduce(r.pctx, r.o.Producer, buf)
		if n < 0 || n > want {
			r.credits.release(want)
			r.room.release(want)
			r.chunks.put(buf)
			r.fail(fmt.Errorf("pipeline: producer returned %d messages for a demand of %d", n, want))
			return
		}
		r.credits.release(want - n)
		r.room.release(want - n)
		r.p.limiter.giveBack(want - n)
		if n > 0 {
			inflight := r.inflight.Add(int64(n))
			if r.observed {
				r.obs.Produced(ProducedEvent{Pipeline: r.o.Name, Messages: n, Demand: want, Duration: since(t0), InFlight: int(inflight)})
			}
			out.send(buf[:n])
		} else {
			r.chunks.put(buf)
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrEndOfInput):
			r.requestDrain()
			return
		case r.pctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrDraining)):
			return
		default:
			r.fail(fmt.Errorf("pipeline: producer: %w", err))
			return
		}
	}
}

// producerExit is deferred by each producer goroutine: the last one closes the first pool's
// queues, which starts the chain of stages finishing.
func (r *run[T]) producerExit() {
	r.producersExited.arrive(r.pools[0].closeInputs)
}

// sender hands chunks to a processor pool: whole when the pool shares one queue and the
// chunk fits its MaxDemand, else split by partition and MaxDemand into chunks of its own.
// Each sending goroutine owns one.
type sender[T any] struct {
	r       *run[T]
	to      *pool[T]
	pending [][]Message[T]
}

func (s *sender[T]) send(c []Message[T]) {
	to := s.to
	if len(to.ins) == 1 && len(c) <= to.opts.MaxDemand {
		to.ins[0] <- c
		return
	}
	if s.pending == nil {
		s.pending = make([][]Message[T], len(to.ins))
	}
	part := to.opts.PartitionBy
	for i := range c {
		m := &c[i]
		p := 0
		if part != nil && m.err == nil {
			p = callPartition(part, m, len(to.ins))
		}
		b := s.pending[p]
		if b == nil {
			b = s.r.chunks.get()
		}
		b = append(b, *m)
		if len(b) >= to.opts.MaxDemand {
			to.ins[p] <- b
			b = nil
		}
		s.pending[p] = b
	}
	for p, b := range s.pending {
		if len(b) > 0 {
			to.ins[p] <- b
			s.pending[p] = nil
		}
	}
	s.r.chunks.put(c)
}
