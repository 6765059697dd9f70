package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// run is the state of one Run: channels, counters and the goroutines' shared state.
type run[T any] struct {
	p        *Pipeline[T]
	o        *Options[T]
	obs      Observer
	observed bool // an Observer was set: measure durations and report events

	pctx    context.Context // Produce's context: cancelled (cause ErrDraining) when draining starts
	pcancel context.CancelCauseFunc
	hctx    context.Context // handlers' context: cancelled at the shutdown timeout only
	hcancel context.CancelFunc

	decoder Decoder[T] // the producer, when the first pool decodes its messages

	credits   *credits // the in-flight bound, MaxInFlight
	room      *credits // the first pool's room: 2 × Concurrency × MaxDemand messages
	inflight  atomic.Int64
	abandoned atomic.Bool // the shutdown timeout passed: drop work, deliver no more acks

	drainReq  chan struct{}
	drainOnce sync.Once
	startOnce sync.Once

	retrying atomic.Int64 // messages failed transiently and waiting in a retry loop

	errMu         sync.Mutex
	fatal         error      // the first error that failed the run (producer, acknowledger)
	halt          *HaltError // the first halting failure
	lastTransient error      // the last transient failure retried

	chunks   freeList[Message[T]]
	pools    []*pool[T]
	batchers []*batcherStage[T] // sorted by name

	producersExited  latch // the producer goroutines
	batchersExited   latch // the batchers' accumulating goroutines
	batchProcsExited latch // every batcher's batch processors

	wg sync.WaitGroup
}

// pool is a processor pool at run time.
type pool[T any] struct {
	opts     ProcessorOptions[T]
	preparer MessagePreparer[T]
	ins      []chan []Message[T] // one shared queue, or one per goroutine when partitioned
	last     bool
	exited   latch // the pool's goroutines
}

func newRun[T any](p *Pipeline[T], ctx context.Context) *run[T] {
	o := &p.opts
	r := &run[T]{
		p:        p,
		o:        o,
		obs:      o.Observer,
		drainReq: make(chan struct{}),
		credits:  newCredits(int64(o.MaxInFlight), o.ProducerConcurrency),
	}
	first := o.Processors[0]
	r.room = newCredits(int64(2*first.Concurrency*first.MaxDemand), o.ProducerConcurrency)
	_, nop := o.Observer.(NopObserver)
	r.observed = !nop
	r.pctx, r.pcancel = context.WithCancelCause(ctx)
	r.hctx, r.hcancel = context.WithCancel(context.WithoutCancel(ctx))

	maxChunk := 0
	goroutines := o.ProducerConcurrency
	for i, po := range o.Processors {
		pl := &pool[T]{opts: po, last: i == len(o.Processors)-1}
		pl.preparer, _ = po.Handler.(MessagePreparer[T])
		if po.PartitionBy != nil {
			pl.ins = make([]chan []Message[T], po.Concurrency)
			for j := range pl.ins {
				pl.ins[j] = make(chan []Message[T], 1)
			}
		} else {
			pl.ins = []chan []Message[T]{make(chan []Message[T], po.Concurrency)}
		}
		pl.exited.init(po.Concurrency)
		r.pools = append(r.pools, pl)
		maxChunk = max(maxChunk, po.MaxDemand)
		goroutines += 2 * po.Concurrency
	}
	names := slices.Sorted(maps.Keys(o.Batchers))
	batchProcs := 0
	for _, name := range names {
		b := newBatcherStage(name, o.Batchers[name], len(r.pools[len(r.pools)-1].ins))
		r.batchers = append(r.batchers, b)
		batchProcs += b.opts.Concurrency
		goroutines += 2
	}
	r.batchersExited.init(len(r.batchers))
	r.batchProcsExited.init(batchProcs)
	if d, ok := o.Producer.(Decoder[T]); ok && o.Processors[0].PartitionBy == nil {
		r.decoder = d
	}
	r.chunks = newFreeList[Message[T]](4*goroutines+8, maxChunk)
	r.producersExited.init(o.ProducerConcurrency)
	return r
}

// start starts every goroutine of the run.
func (r *run[T]) start() {
	for _, b := range r.batchers {
		for i := range b.opts.Concurrency {
			in := b.outs[0]
			if b.opts.Ordered {
				in = b.outs[i]
			}
			r.wg.Go(func() { r.batchProcessorLoop(b, i, in) })
		}
		r.wg.Go(func() { r.batcherLoop(b) })
	}
	for k, pl := range r.pools {
		for i := range pl.opts.Concurrency {
			in := pl.ins[i%len(pl.ins)]
			var next *pool[T]
			if !pl.last {
				next = r.pools[k+1]
			}
			r.wg.Go(func() { r.processorLoop(pl, next, in) })
		}
	}
	if r.decoder != nil {
		if err := callDeferDecoding(r.decoder); err != nil {
			r.decoder = nil
			r.fail(fmt.Errorf("pipeline: producer DeferDecoding: %w", err))
		}
	}
	for range r.o.ProducerConcurrency {
		r.wg.Go(r.producerLoop)
	}
}

// requestDrain asks Run's goroutine to drain; it does not block.
func (r *run[T]) requestDrain() {
	r.drainOnce.Do(func() { close(r.drainReq) })
}

// fail records err as the run's error (the first wins) and asks for a drain.
func (r *run[T]) fail(err error) {
	r.errMu.Lock()
	if r.fatal == nil {
		r.fatal = err
	}
	r.errMu.Unlock()
	r.o.Logger.Error("pipeline failed", "pipeline", r.o.Name, "err", err)
	r.requestDrain()
}

// haltOn records the halt caused by m (the first wins) and asks for a drain.
func (r *run[T]) haltOn(m *Message[T], handlerErr error) {
	r.errMu.Lock()
	first := r.halt == nil
	if first {
		r.halt = &HaltError{Ref: m.ref, Metadata: m.Metadata, Attempt: m.Attempt(), Err: m.err, HandlerErr: handlerErr}
	}
	r.errMu.Unlock()
	if first {
		r.o.Logger.Error("pipeline halting on a failed message", "pipeline", r.o.Name, "err", r.halt)
	}
	r.requestDrain()
}

func (r *run[T]) err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	var errs []error
	if r.fatal != nil {
		errs = append(errs, r.fatal)
	}
	if r.halt != nil {
		errs = append(errs, r.halt)
	}
	return errors.Join(errs...)
}

// now returns the time when durations are measured, else the zero time.
func (r *run[T]) now() time.Time {
	if r.observed {
		return time.Now()
	}
	return time.Time{}
}

func since(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return time.Since(t)
}

// closeInputs closes a pool's input queues.
func (pl *pool[T]) closeInputs() {
	for _, c := range pl.ins {
		close(c)
	}
}
