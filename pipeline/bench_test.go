package pipeline_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// The micro-benchmarks run b.N messages through 4 processors and a batcher of 100 / 50ms
// doing almost no work, so that what is measured is the pipeline's own cost per message; the
// "limit" is the same topology written by hand with goroutines and channels handing over
// chunks of 64. Compare ns/op and allocs/op of the two.

type benchEvent struct {
	ID    int64
	Cents int64
	Pad   [3]int64
}

type benchCounter struct{ acked, failed atomic.Int64 }

func (c *benchCounter) Ack(s []ack.Ref, f []ack.Failure) {
	c.acked.Add(int64(len(s)))
	c.failed.Add(int64(len(f)))
}

func benchProducer(n int, a ack.Acknowledger) pipeline.Producer[benchEvent] {
	next := 0
	return pipeline.ProducerFunc[benchEvent](func(ctx context.Context, msgs []pipeline.Message[benchEvent]) (int, error) {
		i := 0
		for ; i < len(msgs) && next < n; i++ {
			msgs[i] = pipeline.NewMessage(benchEvent{ID: int64(next)}, a, ack.Ref{N: uint64(next)})
			next++
		}
		if next == n {
			return i, pipeline.ErrEndOfInput
		}
		return i, nil
	})
}

func BenchmarkPipeline(b *testing.B) {
	b.ReportAllocs()
	var sum atomic.Int64
	c := &benchCounter{}
	p, err := pipeline.New(pipeline.Options[benchEvent]{
		Producer: benchProducer(b.N, c),
		Processors: []pipeline.ProcessorOptions[benchEvent]{{
			Concurrency: 4,
			Handler: pipeline.HandlerFunc[benchEvent](func(_ context.Context, m *pipeline.Message[benchEvent]) error {
				m.Data.Cents = m.Data.ID%100*100 + 50
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[benchEvent]{"sum": {
			BatchSize: 100, BatchTimeout: 50 * time.Millisecond,
			Handler: pipeline.BatchHandlerFunc[benchEvent](func(_ context.Context, batch []pipeline.Message[benchEvent], _ pipeline.BatchInfo) error {
				var s int64
				for i := range batch {
					s += batch[i].Data.Cents
				}
				sum.Add(s)
				return nil
			}),
		}},
		DefaultBatcher: "sum",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	if got := c.acked.Load(); got != int64(b.N) {
		b.Fatalf("acked %d of %d", got, b.N)
	}
}

func BenchmarkLimit(b *testing.B) {
	b.ReportAllocs()
	n := b.N
	var sum, acked atomic.Int64
	const chunk = 64
	toProcess := make(chan []benchEvent, 4)
	toBatch := make(chan []benchEvent, 4)
	toHandle := make(chan []benchEvent, 1)
	free := make(chan []benchEvent, 16)
	freeBatches := make(chan []benchEvent, 4)
	get := func(f chan []benchEvent, size int) []benchEvent {
		select {
		case s := <-f:
			return s
		default:
			return make([]benchEvent, 0, size)
		}
	}
	put := func(f chan []benchEvent, s []benchEvent) {
		clear(s)
		select {
		case f <- s[:0]:
		default:
		}
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(toProcess)
		for i := 0; i < n; {
			c := get(free, chunk)
			for ; i < n && len(c) < chunk; i++ {
				c = append(c, benchEvent{ID: int64(i)})
			}
			toProcess <- c
		}
	})
	var procs sync.WaitGroup
	for range 4 {
		procs.Go(func() {
			for c := range toProcess {
				for i := range c {
					c[i].Cents = c[i].ID%100*100 + 50
				}
				toBatch <- c
			}
		})
	}
	wg.Go(func() { procs.Wait(); close(toBatch) })
	wg.Go(func() {
		defer close(toHandle)
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		var bt []benchEvent
		for {
			select {
			case c, ok := <-toBatch:
				if !ok {
					if len(bt) > 0 {
						toHandle <- bt
					}
					return
				}
				for _, e := range c {
					if bt == nil {
						bt = get(freeBatches, 100)
						timer.Reset(50 * time.Millisecond)
					}
					bt = append(bt, e)
					if len(bt) == 100 {
						timer.Stop()
						toHandle <- bt
						bt = nil
					}
				}
				put(free, c)
			case <-timer.C:
				if len(bt) > 0 {
					toHandle <- bt
					bt = nil
				}
			}
		}
	})
	wg.Go(func() {
		for bt := range toHandle {
			var s int64
			for _, e := range bt {
				s += e.Cents
			}
			sum.Add(s)
			acked.Add(int64(len(bt)))
			put(freeBatches, bt)
		}
	})
	wg.Wait()
	if acked.Load() != int64(n) {
		b.Fatalf("acked %d of %d", acked.Load(), n)
	}
}
