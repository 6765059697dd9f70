package main

import (
	"context"
	"sync"

	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"
)

// prepareGoStreams builds the workload from reugn/go-streams operators as
// its documentation composes them: a channel source of *Event, a Map with
// parallelism 4, a Batch of 100 / 50 ms and a sink that sums each batch and
// acknowledges its messages. go-streams has no acknowledgements of its own:
// the sink is where a message ends.
func prepareGoStreams(n int, work workFunc, chk *checker) (func(context.Context) error, error) {
	return func(ctx context.Context) error {
		in := make(chan any)
		source := extension.NewChanSource(in)
		mapper := flow.NewMap(func(e *Event) *Event {
			process(e, work)
			return e
		}, processors)
		batch := flow.NewBatch[*Event](batchSize, batchTimeout)
		sink := newBatchSink(chk)

		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(in)
			for i := range int64(n) {
				select {
				case in <- &Event{ID: i, Payload: payload(i)}:
				case <-ctx.Done():
					return
				}
			}
		})
		source.Via(mapper).Via(batch).To(sink) // returns when the sink is done
		wg.Wait()
		return nil
	}, nil
}

// batchSink is a go-streams sink of []*Event batches.
type batchSink struct {
	in   chan any
	done chan struct{}
}

func newBatchSink(chk *checker) *batchSink {
	s := &batchSink{in: make(chan any), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for v := range s.in {
			ackBatch(chk, v.([]*Event))
		}
	}()
	return s
}

func (s *batchSink) In() chan<- any   { return s.in }
func (s *batchSink) AwaitCompletion() { <-s.done }

// ackBatch is the batch handler shared by the variants that carry *Event:
// sum the batch, then acknowledge each message.
func ackBatch(chk *checker, b []*Event) {
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
