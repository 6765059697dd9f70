//go:build !race

package pipeline_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// countingObserver counts events with atomics: an observer that allocates nothing itself.
type countingObserver struct {
	events atomic.Int64
}

func (o *countingObserver) Produced(pipeline.ProducedEvent)   { o.events.Add(1) }
func (o *countingObserver) Processed(pipeline.ProcessedEvent) { o.events.Add(1) }
func (o *countingObserver) BatchHandled(pipeline.BatchEvent)  { o.events.Add(1) }
func (o *countingObserver) Retried(pipeline.RetryEvent)       { o.events.Add(1) }
func (o *countingObserver) Acked(pipeline.AckEvent)           { o.events.Add(1) }
func (o *countingObserver) Drain(pipeline.DrainEvent)         { o.events.Add(1) }

// mallocsOfRun returns the heap allocations made while running n messages through two
// processor pools, a keyed batcher (some messages go to no batcher) and an offset tracker,
// with obs as the observer. With fanOut, the messages that go to a batcher go to a second one
// too.
func mallocsOfRun(t *testing.T, n int, obs pipeline.Observer, fanOut bool) uint64 {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	next := 0
	prod := pipeline.ProducerFunc[benchEvent](func(ctx context.Context, msgs []pipeline.Message[benchEvent]) (int, error) {
		k := min(len(msgs), n-next)
		chunk, err := tr.Track(ctx, k, next+k) // one allocation per chunk, not per message
		if err != nil {
			return 0, err
		}
		for i := range k {
			msgs[i].Data = benchEvent{ID: int64(next + i)}
			msgs[i].SetAcknowledger(tr, ack.Ref{Ptr: chunk, N: uint64(i)})
			msgs[i].Metadata = pipeline.Metadata{Stream: "stream", Position: int64(next + i), Source: chunk}
		}
		next += k
		if next == n {
			return k, pipeline.ErrEndOfInput
		}
		return k, nil
	})
	keys := []string{"a", "b", "c"}
	p, err := pipeline.New(pipeline.Options[benchEvent]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[benchEvent]{
			{Name: "price", Concurrency: 2, Handler: pipeline.HandlerFunc[benchEvent](func(_ context.Context, m *pipeline.Message[benchEvent]) error {
				m.Data.Cents = m.Data.ID % 100
				return nil
			})},
			{Name: "route", Concurrency: 2, Handler: pipeline.HandlerFunc[benchEvent](func(_ context.Context, m *pipeline.Message[benchEvent]) error {
				switch {
				case m.Data.ID%4 == 0:
					m.SetBatcher("") // acknowledged after this pool
				case fanOut:
					m.SetBatchKey(keys[m.Data.ID%3])
					m.SetBatchers("sum", "copy")
				default:
					m.SetBatchKey(keys[m.Data.ID%3])
				}
				return nil
			})},
		},
		Batchers: map[string]pipeline.BatcherOptions[benchEvent]{
			"sum": {
				BatchSize: 50, BatchTimeout: time.Second, Concurrency: 2,
				Handler: pipeline.BatchHandlerFunc[benchEvent](func(context.Context, []pipeline.Message[benchEvent], pipeline.BatchInfo) error {
					return nil
				}),
			},
			"copy": {
				BatchSize: 50, BatchTimeout: time.Second,
				Handler: pipeline.BatchHandlerFunc[benchEvent](func(context.Context, []pipeline.Message[benchEvent], pipeline.BatchInfo) error {
					return nil
				}),
			},
		},
		DefaultBatcher: "sum",
		Observer:       obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if c := tr.Committed(); c != n {
		t.Fatalf("committed %d of %d", c, n)
	}
	return after.Mallocs - before.Mallocs
}

// TestHotPathAllocatesNothingPerMessage runs the pipeline with 20,000 and with 100,000
// messages: the difference in allocations, per extra message, must be near zero. What
// remains is per chunk (the tracker's), per batch key, and the warm-up of recycled slices.
func TestHotPathAllocatesNothingPerMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations of full runs")
	}
	for name, obs := range map[string]pipeline.Observer{"no observer": nil, "observer": &countingObserver{}} {
		small := mallocsOfRun(t, 20_000, obs, false)
		large := mallocsOfRun(t, 100_000, obs, false)
		perMsg := (float64(large) - float64(small)) / 80_000
		t.Logf("%s: %d allocations for 20,000 messages, %d for 100,000: %.3f per extra message", name, small, large, perMsg)
		// A tracked chunk is one allocation per up to 64 messages (1/64 ≈ 0.016).
		if perMsg > 0.05 {
			t.Errorf("%s: %.3f allocations per message, want none beyond the per-chunk one", name, perMsg)
		}
	}
}

// TestFanOutAllocatesOnlyPerFannedOutMessage: a message sent to two batchers costs what
// SetBatchers allocates (its names and the state its copies share), nothing more.
func TestFanOutAllocatesOnlyPerFannedOutMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations of full runs")
	}
	small := mallocsOfRun(t, 20_000, nil, true)
	large := mallocsOfRun(t, 100_000, nil, true)
	perMsg := (float64(large) - float64(small)) / 80_000
	t.Logf("%d allocations for 20,000 messages, %d for 100,000: %.3f per extra message (3 in 4 fanned out)", small, large, perMsg)
	if want := 0.75*2 + 0.05; perMsg > want {
		t.Errorf("%.3f allocations per message, want at most 2 per fanned-out message (%.2f)", perMsg, want)
	}
}
