package durablestreams_test

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// checkBackpressure runs a pipeline whose batch handler blocks over a stream of n events that
// the server returns in one response: the producer reads no more than the pipeline's
// in-flight bound while the sink is blocked; once released, every event arrives once and the
// bound held throughout.
func checkBackpressure(t *testing.T, s *dsclient.Stream, n int) {
	// Below what the pipeline's stages could hold (2 processors × 2 × 64, plus 3 batches of
	// 500), so that the in-flight bound is the one that stops the reads.
	const maxPending = 1000
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	filled := make(chan struct{})
	var processed atomic.Int64
	var maxSeen atomic.Int64
	var once sync.Once
	got := newSeen()
	pl, err := pipeline.New(pipeline.Options[event]{
		Producer:    p,
		MaxInFlight: maxPending, // the one bound, which the producer honours
		Processors: []pipeline.ProcessorOptions[event]{{Concurrency: 2, MaxDemand: 64,
			Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error {
				if processed.Add(1) >= maxPending-64 {
					once.Do(func() { close(filled) })
				}
				return nil
			})}},
		// Batches close on size only, so that the stages hold whatever the producer hands out
		// (two blocked batches of 500 and one filling) and the producer's bound is what stops it.
		Batchers: map[string]pipeline.BatcherOptions[event]{"sink": {BatchSize: 500, BatchTimeout: time.Hour, Concurrency: 2,
			Handler: pipeline.BatchHandlerFunc[event](func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
				<-release
				if pend := int64(p.Stats().Pending); pend > maxSeen.Load() {
					maxSeen.Store(pend)
				}
				got.add(ms)
				return nil
			})}},
		DefaultBatcher:  "sink",
		ShutdownTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() { done <- pl.Run(ctx) }()
	select {
	case <-filled:
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatalf("the pipeline never filled up to the bound: %d processed, stats %+v", processed.Load(), p.Stats())
	}
	// The sink is blocked, so nothing has been acknowledged: every message handed out is still
	// in flight, and the producer cannot have handed out more than the bound.
	after := p.Stats()
	if after.Messages > maxPending || after.Pending > maxPending {
		t.Fatalf("with the sink blocked the producer went on: %d messages handed out, %d pending (bound %d)",
			after.Messages, after.Pending, maxPending)
	}
	if after.Messages >= uint64(n) || after.AtTail {
		t.Fatalf("the producer read the whole stream (%d messages) while the sink was blocked", after.Messages)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got.exactlyOnce(t, n)
	if m := maxSeen.Load(); m > maxPending {
		t.Fatalf("%d messages pending at once, cap %d", m, maxPending)
	}
}

// fillFast appends n events in appends of 10,000.
func fillFast(t *testing.T, s *dsclient.Stream, n int) {
	t.Helper()
	if _, err := s.Create(context.Background(), dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, 0, n, 10000)
}

// largeStreamSize is the length of the one-response streams of the backpressure and
// stop-inside tests: 1M events, or 200k under -short or the race detector (which slows a run
// about tenfold; one response is one response whatever its length).
func largeStreamSize() int {
	if testing.Short() || raceDetector {
		return 200_000
	}
	return 1_000_000
}

func TestProducerBackpressureOneResponse(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{}) // no chunk cap: one response holds the stream
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	n := largeStreamSize()
	fillFast(t, s, n)
	checkBackpressure(t, s, n)
}

func TestRefProducerBackpressureOneResponse(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := ref(t)
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	n := largeStreamSize()
	fillFast(t, s, n)
	checkBackpressure(t, s, n)
}

// Against the reference server: catch-up, live tail in long-poll and SSE modes, and close.
func TestRefProducerLiveAndClose(t *testing.T) {
	srv := ref(t)
	for _, mode := range []dsclient.LiveMode{dsclient.LiveOff, dsclient.LiveLongPoll, dsclient.LiveSSE} {
		t.Run(mode.String(), func(t *testing.T) {
			s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
			fillOpen(t, s, 500, 50)
			if mode != dsclient.LiveOff {
				checkLiveTail(t, s, mode, 500, 1500)
				return
			}
			appendEvents(t, s, 500, 1500, 50)
			p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
			if err != nil {
				t.Fatal(err)
			}
			runStopAfter(t, p, 0).exactlyOnce(t, 1500)
		})
	}
}

// Reference-server faults during a pipeline's catch-up: nothing lost or repeated.
func TestRefProducerFaults(t *testing.T) {
	srv := ref(t)
	faults := []refserver.Fault{
		{Status: 503, Count: 3, Method: "GET"},
		{Status: 429, Count: 2, Method: "GET"},
		{DropConnection: true, Count: 3, Method: "GET"},
		{TruncateBodyBytes: 3000, Count: 2, Method: "GET"},
	}
	for _, f := range faults {
		s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
		fillOpen(t, s, 3000, 100)
		u, _ := url.Parse(s.URL())
		f.Path = u.Path
		if err := srv.InjectFault(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
		if err != nil {
			t.Fatal(err)
		}
		runStopAfter(t, p, 0).exactlyOnce(t, 3000)
	}
}
