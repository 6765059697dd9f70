package pipeline

import (
	"time"

	"github.com/sluice-go/sluice/batcher"
)

// batcherStage is a batcher at run time: one goroutine accumulating batches (with one timer
// for every key) and Concurrency batch processors handling them.
type batcherStage[T any] struct {
	name    string
	opts    BatcherOptions[T]
	in      chan []Message[T]
	outs    []chan batchJob[T] // one shared queue, or one per batch processor when Ordered
	batches freeList[Message[T]]
}

// batchJob is a closed batch on its way to a batch processor.
type batchJob[T any] struct {
	msgs []Message[T]
	info BatchInfo
}

func newBatcherStage[T any](name string, o BatcherOptions[T], senders int) *batcherStage[T] {
	b := &batcherStage[T]{
		name:    name,
		opts:    o,
		in:      make(chan []Message[T], max(senders, 1)),
		batches: newFreeList[Message[T]](2*o.Concurrency+4, o.BatchSize),
	}
	if o.Ordered {
		b.outs = make([]chan batchJob[T], o.Concurrency)
		for i := range b.outs {
			b.outs[i] = make(chan batchJob[T], 1)
		}
	} else {
		b.outs = []chan batchJob[T]{make(chan batchJob[T], o.Concurrency)}
	}
	return b
}

// batcherLoop is a batcher's accumulating goroutine. It owns the accumulator and its timer;
// when its input closes (the processors are done) it flushes every partial batch, closes the
// batch processors' queues and ends.
func (r *run[T]) batcherLoop(b *batcherStage[T]) {
	defer r.batcherExit(b)
	acc := batcher.New(batcher.Config{
		Size:     b.opts.BatchSize,
		MaxBytes: b.opts.MaxBatchBytes,
		Timeout:  b.opts.BatchTimeout,
	}, b.batches.get)
	var fin finishScratch[T]
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var armed time.Time // the deadline the timer is set for; zero when stopped
	var ready []batcher.Batch[Message[T]]
	rearm := func(now time.Time) {
		d, ok := acc.NextDeadline()
		switch {
		case !ok:
			if !armed.IsZero() {
				timer.Stop()
				armed = time.Time{}
			}
		case !d.Equal(armed):
			timer.Reset(d.Sub(now))
			armed = d
		}
	}
	for {
		select {
		case c, ok := <-b.in:
			if !ok {
				acc.Flush()
				ready = r.emit(b, acc, ready)
				return
			}
			if r.abandoned.Load() {
				r.chunks.put(c)
				continue
			}
			now := time.Now()
			sizeOf := b.opts.SizeOf
			for i := range c {
				m := &c[i]
				size := 0
				if sizeOf != nil {
					if size = callSizeOf(sizeOf, m); m.err != nil {
						r.finish(&fin, c[i:i+1])
						continue
					}
				}
				acc.Add(m.batchKey, m, size, now)
			}
			r.chunks.put(c)
			ready = r.emit(b, acc, ready)
			rearm(now)
		case <-timer.C:
			armed = time.Time{}
			now := time.Now()
			acc.Expire(now)
			ready = r.emit(b, acc, ready)
			rearm(now)
		}
	}
}

// emit sends the accumulator's closed batches to the batch processors, in the order they
// closed; with Ordered, each to the processor of its key.
func (r *run[T]) emit(b *batcherStage[T], acc *batcher.Accumulator[Message[T]], ready []batcher.Batch[Message[T]]) []batcher.Batch[Message[T]] {
	ready = acc.TakeReady(ready[:0])
	for i, rb := range ready {
		ready[i] = batcher.Batch[Message[T]]{}
		if r.abandoned.Load() {
			b.batches.put(rb.Items)
			continue
		}
		job := batchJob[T]{msgs: rb.Items, info: BatchInfo{
			Batcher: b.name, Key: rb.Key, Size: len(rb.Items), Bytes: rb.Bytes, Trigger: rb.Trigger,
		}}
		out := b.outs[0]
		if len(b.outs) > 1 {
			out = b.outs[batcher.Partition(rb.Key, len(b.outs))]
		}
		out <- job
	}
	return ready[:0]
}

// batcherExit is deferred by each batcher goroutine: it closes its batch processors' queues.
func (r *run[T]) batcherExit(b *batcherStage[T]) {
	for _, c := range b.outs {
		close(c)
	}
	r.batchersExited.arrive(nil)
}
