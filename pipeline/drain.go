package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// drain stops the run in order and returns Run's error. Each step waits for the one before:
//
//  1. the producer is told (its context is cancelled with cause ErrDraining, and
//     PrepareForDraining is called) and no Produce call is made after the running ones: a
//     producer goroutine that was waiting for room or credits gives them back rather than
//     call Produce (only a call already on its way as draining starts may begin with its
//     context cancelled, and returns at once with the context's error);
//  2. the processor pools finish their queues, each closing the next one's when done;
//  3. the batchers flush their partial batches;
//  4. the batch processors handle them, and every message is acknowledged.
//
// When ShutdownTimeout passes first, the handlers' context is cancelled, the remaining work is
// dropped without acknowledgement, and Run returns a ShutdownTimeoutError once every goroutine
// has ended. Finally the producer's Close, if any, is called.
func (r *run[T]) drain(ctx context.Context) error {
	start := time.Now()
	if ctx.Err() != nil {
		// Run's context ended: the producer's context ends with its cause, whichever of
		// the two cancellations reaches it first.
		r.pcancel(context.Cause(ctx))
	} else {
		r.pcancel(ErrDraining)
	}
	if d, ok := r.o.Producer.(DrainNotifier); ok {
		d.PrepareForDraining()
	}
	r.report(DrainStarted, start)
	timeout := r.o.ShutdownTimeout
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	timedOut := false
	var retrying int64 // messages failing transiently when the timeout passed
	step := func(done <-chan struct{}, s DrainStep) {
		if !timedOut {
			select {
			case <-done:
				r.report(s, start)
				return
			case <-timer.C:
				timedOut = true
				retrying = r.retrying.Load()
				r.abandon()
				r.report(DrainTimedOut, start)
			}
		}
		<-done
	}
	step(r.producersExited.wait(), DrainProducersStopped)
	step(r.pools[len(r.pools)-1].exited.wait(), DrainProcessorsFinished)
	step(r.batchersExited.wait(), DrainBatchersFlushed)
	step(r.batchProcsExited.wait(), DrainBatchProcessorsFinished)
	r.wg.Wait()
	r.hcancel()
	r.report(DrainDone, start)

	errs := []error{r.err()}
	if timedOut {
		te := &ShutdownTimeoutError{Timeout: timeout, Unfinished: int(r.inflight.Load()), Retrying: int(retrying)}
		if retrying > 0 {
			r.errMu.Lock()
			te.LastErr = r.lastTransient
			r.errMu.Unlock()
		}
		errs = append(errs, te)
	}
	if c, ok := r.o.Producer.(Closer); ok {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		if err := callClose(cctx, c); err != nil {
			errs = append(errs, fmt.Errorf("pipeline: producer close: %w", err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

// abandon gives up on the rest of the drain: handlers are cancelled and stages drop their work.
func (r *run[T]) abandon() {
	r.abandoned.Store(true)
	r.hcancel()
}

func (r *run[T]) report(s DrainStep, start time.Time) {
	if r.observed {
		r.obs.Drain(DrainEvent{Pipeline: r.o.Name, Step: s, Elapsed: time.Since(start), InFlight: int(r.inflight.Load())})
	}
}

func callClose(ctx context.Context, c Closer) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(v)
		}
	}()
	return c.Close(ctx)
}
