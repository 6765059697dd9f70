package main

import (
	"context"
	"sync"
	"time"
)

// prepareChannels is the same topology as the limit written the way a
// pipeline is usually first written in Go: one message per channel
// operation, a fresh slice per batch. It shows what the limit's chunked
// hand-offs are worth.
func prepareChannels(n int, work workFunc, chk *checker) (func(context.Context) error, error) {
	return func(ctx context.Context) error {
		toProcess := make(chan Event, limitChunk)
		toBatch := make(chan Event, limitChunk)
		toHandle := make(chan []Event, 1)

		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(toProcess)
			for i := range int64(n) {
				select {
				case toProcess <- Event{ID: i, Payload: payload(i)}:
				case <-ctx.Done():
					return
				}
			}
		})
		var procs sync.WaitGroup
		for range processors {
			procs.Go(func() {
				for e := range toProcess {
					process(&e, work)
					toBatch <- e
				}
			})
		}
		wg.Go(func() {
			procs.Wait()
			close(toBatch)
		})
		wg.Go(func() {
			defer close(toHandle)
			timer := time.NewTimer(batchTimeout)
			timer.Stop()
			var b []Event
			for {
				select {
				case e, ok := <-toBatch:
					if !ok {
						if len(b) > 0 {
							toHandle <- b
						}
						return
					}
					if b == nil {
						b = make([]Event, 0, batchSize)
						timer.Reset(batchTimeout)
					}
					b = append(b, e)
					if len(b) == batchSize {
						timer.Stop()
						toHandle <- b
						b = nil
					}
				case <-timer.C:
					if len(b) > 0 {
						toHandle <- b
						b = nil
					}
				}
			}
		})
		wg.Go(func() {
			for b := range toHandle {
				var sum int64
				good := 0
				for _, e := range b {
					if e.Cents != failedCents {
						sum += e.Cents
						good++
					}
				}
				chk.batch(good, sum)
				for _, e := range b {
					if e.Cents == failedCents {
						chk.failed.Add(1)
					} else {
						chk.mark(e.ID)
					}
				}
				chk.count(len(b))
			}
		})
		wg.Wait()
		return nil
	}, nil
}
