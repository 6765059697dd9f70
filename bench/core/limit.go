package main

import (
	"context"
	"sync"
	"time"
)

// limitChunk is how many messages the limit hands from one stage to the next
// at once: a processor's demand window.
const limitChunk = 64

// prepareLimit is the yardstick: the same topology written by hand with
// goroutines and channels, as fast as plain Go makes it. Stages hand each
// other chunks of events by value (no allocation per message beyond the
// payload and the work), chunk and batch slices are recycled, and the batch
// timer is armed once per batch. What is bounded in a pipeline is bounded
// here too: at most about 1,100 messages are in flight (the channel
// capacities, one chunk per processor, the open batch and one batch in the
// handler).
func prepareLimit(n int, work workFunc, chk *checker) (func(context.Context) error, error) {
	return func(ctx context.Context) error {
		toProcess := make(chan []Event, processors)
		toBatch := make(chan []Event, processors)
		toHandle := make(chan []Event, 1)
		chunks := newFreeList(3*processors+2, limitChunk)
		batches := newFreeList(4, batchSize)

		var wg sync.WaitGroup
		wg.Go(func() { // producer
			defer close(toProcess)
			for i := 0; i < n; {
				c := chunks.get()
				for ; i < n && len(c) < limitChunk; i++ {
					c = append(c, Event{ID: int64(i), Payload: payload(int64(i))})
				}
				select {
				case toProcess <- c:
				case <-ctx.Done():
					return
				}
			}
		})

		var procs sync.WaitGroup
		for range processors {
			procs.Go(func() {
				for c := range toProcess {
					for i := range c {
						process(&c[i], work)
					}
					toBatch <- c
				}
			})
		}
		wg.Go(func() {
			procs.Wait()
			close(toBatch)
		})

		wg.Go(func() { // batcher: size or timeout from the batch's first message
			defer close(toHandle)
			timer := time.NewTimer(batchTimeout)
			timer.Stop()
			var b []Event
			flush := func() {
				timer.Stop()
				toHandle <- b
				b = nil
			}
			for {
				select {
				case c, ok := <-toBatch:
					if !ok {
						if len(b) > 0 {
							flush()
						}
						return
					}
					for _, e := range c {
						if b == nil {
							b = batches.get()
							timer.Reset(batchTimeout)
						}
						b = append(b, e)
						if len(b) == batchSize {
							flush()
						}
					}
					chunks.put(c)
				case <-timer.C:
					if len(b) > 0 {
						flush()
					}
				}
			}
		})

		wg.Go(func() { // batch processor: sum, then acknowledge the batch
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
				batches.put(b)
			}
		})
		wg.Wait()
		return nil
	}, nil
}

// freeList recycles slices of events between stages.
type freeList struct {
	free chan []Event
	size int
}

func newFreeList(capacity, size int) *freeList {
	return &freeList{free: make(chan []Event, capacity), size: size}
}

func (f *freeList) get() []Event {
	select {
	case s := <-f.free:
		return s
	default:
		return make([]Event, 0, f.size)
	}
}

func (f *freeList) put(s []Event) {
	clear(s)
	select {
	case f.free <- s[:0]:
	default:
	}
}
