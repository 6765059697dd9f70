package pipeline_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

// endless is a producer with infinite input that counts what it was asked.
type endless struct {
	calls, produced atomic.Int64
	maxDemand       atomic.Int64
	limit           atomic.Int64 // when > 0, the input ends after this many messages
}

func (e *endless) Produce(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
	e.calls.Add(1)
	if int64(len(msgs)) > e.maxDemand.Load() {
		e.maxDemand.Store(int64(len(msgs)))
	}
	for i := range msgs {
		n := e.produced.Add(1)
		msgs[i].Data = int(n)
		if l := e.limit.Load(); l > 0 && n >= l {
			return i + 1, pipeline.ErrEndOfInput
		}
	}
	return len(msgs), nil
}

func TestBackpressureStopsAskingTheProducer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endless{}
		release := make(chan struct{})
		var batches atomic.Int64
		acked := atomic.Int64{}
		obs := &pipelinetest.Observer{}
		p := mustNew(t, pipeline.Options[int]{
			Producer: pipeline.ProducerFunc[int](func(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
				n, err := src.Produce(ctx, msgs)
				for i := range n {
					msgs[i].SetAcknowledger(ack.AcknowledgerFunc(func(s []ack.Ref, f []ack.Failure) { acked.Add(int64(len(s) + len(f))) }), ack.Ref{})
				}
				return n, err
			}),
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 4, MaxDemand: 16, Handler: nopHandler}},
			Batchers: map[string]pipeline.BatcherOptions[int]{"slow": {BatchSize: 50, Concurrency: 2, Handler: pipeline.BatchHandlerFunc[int](func(ctx context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
				batches.Add(1)
				<-release // the sink is stuck
				return nil
			})}},
			DefaultBatcher: "slow",
			Observer:       obs,
		})
		bound := p.MaxInFlight()
		if want := 2*4*16 + 3*50; bound != want {
			t.Fatalf("default MaxInFlight %d, want %d", bound, want)
		}
		run := pipelinetest.Start(t, p)
		synctest.Wait() // every goroutine is blocked: the sink, and everything behind it
		produced, calls := src.produced.Load(), src.calls.Load()
		if produced > int64(bound) || produced == 0 {
			t.Fatalf("produced %d with a stuck sink, want between 1 and the bound %d", produced, bound)
		}
		if src.maxDemand.Load() > 16 {
			t.Errorf("the producer was asked for %d at once, above MaxDemand 16", src.maxDemand.Load())
		}
		time.Sleep(time.Hour) // batch timeouts fire, nothing else can move
		synctest.Wait()
		if p2, c2 := src.produced.Load(), src.calls.Load(); p2 != produced || c2 != calls {
			t.Errorf("the producer was asked again while the sink was stuck: %d→%d messages, %d→%d calls", produced, p2, calls, c2)
		}
		if c := obs.Snapshot(); c.MaxInFlight > bound {
			t.Errorf("in flight reached %d, above %d", c.MaxInFlight, bound)
		}
		src.limit.Store(produced + 1000)
		close(release) // the sink recovers: the producer is asked again, until its input ends
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := src.produced.Load(); got != produced+1000 {
			t.Errorf("produced %d after the sink recovered, want %d", got, produced+1000)
		}
		if acked.Load() != src.produced.Load() {
			t.Errorf("acknowledged %d of %d produced messages after the drain", acked.Load(), src.produced.Load())
		}
	})
}

func TestMaxInFlightBoundsTheDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endless{}
		block := make(chan struct{})
		p := mustNew(t, pipeline.Options[int]{
			Producer: src,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, MaxDemand: 4, MinDemand: 1, Handler: pipeline.HandlerFunc[int](func(ctx context.Context, m *pipeline.Message[int]) error {
				<-block
				return nil
			})}},
			MaxInFlight: 10,
		})
		run := pipelinetest.Start(t, p)
		synctest.Wait()
		if got := src.produced.Load(); got != 10 {
			t.Errorf("produced %d with MaxInFlight 10 and blocked processors, want 10", got)
		}
		close(block)
		p.Stop()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestProducerAskedOnlyForWhatProcessorsHaveRoomFor: with a generous MaxInFlight, what bounds
// the demand is the first pool's room: each processor holds at most one chunk of MaxDemand in
// hand and one queued.
func TestProducerAskedOnlyForWhatProcessorsHaveRoomFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endless{}
		block := make(chan struct{})
		p := mustNew(t, pipeline.Options[int]{
			Producer: src,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, MaxDemand: 4, MinDemand: 1, Handler: pipeline.HandlerFunc[int](func(ctx context.Context, m *pipeline.Message[int]) error {
				<-block
				return nil
			})}},
			MaxInFlight: 1000,
		})
		run := pipelinetest.Start(t, p)
		synctest.Wait()
		if got := src.produced.Load(); got != 2*2*4 {
			t.Errorf("produced %d with blocked processors, want their room: 2 processors x 2 chunks x 4", got)
		}
		close(block)
		p.Stop()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRateLimitChangesWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endless{}
		p := mustNew(t, pipeline.Options[int]{
			Producer:   src,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: nopHandler}},
			RateLimit:  pipeline.RateLimit{Messages: 10, Interval: time.Second},
		})
		run := pipelinetest.Start(t, p)
		synctest.Wait()
		if got := src.produced.Load(); got != 10 {
			t.Fatalf("produced %d in the first interval, want 10", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := src.produced.Load(); got != 20 {
			t.Fatalf("produced %d after two intervals, want 20", got)
		}
		time.Sleep(500 * time.Millisecond) // mid-interval, the producer waits for the next one
		if err := p.SetRateLimit(pipeline.RateLimit{Messages: 3, Interval: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := src.produced.Load(); got != 23 {
			t.Fatalf("produced %d right after the change, want 23 (the new limit applies at once)", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := src.produced.Load(); got != 23+30 {
			t.Fatalf("produced %d a second after the change, want %d", got, 23+30)
		}
		p.Stop()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}

// lifecycleProducer records what the pipeline tells it.
type lifecycleProducer struct {
	*pipelinetest.Producer[int]
	mu       sync.Mutex
	events   []string
	cause    error
	closeErr error
	acked    func() int
}

func (l *lifecycleProducer) log(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *lifecycleProducer) Produce(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
	n, err := l.Producer.Produce(ctx, msgs)
	if err != nil && ctx.Err() != nil {
		l.mu.Lock()
		l.cause = context.Cause(ctx)
		l.mu.Unlock()
	}
	return n, err
}

func (l *lifecycleProducer) PrepareForDraining() { l.log("prepare") }

func (l *lifecycleProducer) Close(ctx context.Context) error {
	if l.acked != nil && l.acked() != 3 {
		l.log("close before every ack")
	}
	if ctx.Err() != nil {
		l.log("close with a cancelled context")
	}
	l.log("close")
	return l.closeErr
}

func TestProducerToldOfDrainAndClosedAfterTheLastAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := &lifecycleProducer{Producer: pipelinetest.NewProducer[int]()}
		p := mustNew(t, pipeline.Options[int]{
			Producer:       prod,
			Processors:     []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: nopHandler}},
			Batchers:       map[string]pipeline.BatcherOptions[int]{"b": {BatchTimeout: time.Hour, Handler: nopBatch}},
			DefaultBatcher: "b",
		})
		ctx, cancel := context.WithCancel(context.Background())
		d := prod.Push(1, 2, 3)
		prod.acked = func() int { r := d.Result(); return len(r.Successful) + len(r.Failed) }
		errc := make(chan error)
		go func() { errc <- p.Run(ctx) }()
		synctest.Wait()
		cancel() // the caller's context ends: a clean drain
		if err := <-errc; err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
		if got := d.Result(); len(got.Successful) != 3 {
			t.Errorf("after the drain: %+v", got)
		}
		prod.mu.Lock()
		defer prod.mu.Unlock()
		if len(prod.events) != 2 || prod.events[0] != "prepare" || prod.events[1] != "close" {
			t.Errorf("producer events %v, want [prepare close]", prod.events)
		}
		if !errors.Is(prod.cause, context.Canceled) {
			t.Errorf("Produce context cause %v", prod.cause)
		}
		if err := p.Run(context.Background()); !errors.Is(err, pipeline.ErrRunning) {
			t.Errorf("second Run: %v, want ErrRunning", err)
		}
	})
}

func TestProduceContextCauseIsErrDrainingOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := &lifecycleProducer{Producer: pipelinetest.NewProducer[int](), closeErr: errors.New("checkpoint not saved")}
		p := mustNew(t, pipeline.Options[int]{
			Producer:   prod,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: nopHandler}},
		})
		run := pipelinetest.Start(t, p)
		synctest.Wait()
		p.Stop()
		err := run.Wait()
		if err == nil || err.Error() != "pipeline: producer close: checkpoint not saved" {
			t.Errorf("Run: %v, want the Close error", err)
		}
		prod.mu.Lock()
		defer prod.mu.Unlock()
		if !errors.Is(prod.cause, pipeline.ErrDraining) {
			t.Errorf("Produce context cause %v, want ErrDraining", prod.cause)
		}
	})
}

type notFound struct{ stream string }

func (e *notFound) Error() string { return "stream " + e.stream + " not found" }

func TestProducerErrorEndsTheRunAfterDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		var acked atomic.Int64
		a := ack.AcknowledgerFunc(func(s []ack.Ref, f []ack.Failure) { acked.Add(int64(len(s))) })
		p := mustNew(t, pipeline.Options[int]{
			Producer: pipeline.ProducerFunc[int](func(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
				if calls.Add(1) == 1 {
					msgs[0] = pipeline.NewMessage(1, a, ack.Ref{})
					msgs[1] = pipeline.NewMessage(2, a, ack.Ref{})
					return 2, nil
				}
				msgs[0] = pipeline.NewMessage(3, a, ack.Ref{})
				return 1, &notFound{"orders"} // the last message comes with the error, and counts
			}),
			Processors:     []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: nopHandler}},
			Batchers:       map[string]pipeline.BatcherOptions[int]{"b": {BatchTimeout: time.Hour, Handler: nopBatch}},
			DefaultBatcher: "b",
		})
		err := p.Run(context.Background())
		var nf *notFound
		if !errors.As(err, &nf) || nf.stream != "orders" {
			t.Fatalf("Run: %v, want the producer's error", err)
		}
		if acked.Load() != 3 || calls.Load() != 2 {
			t.Errorf("%d acknowledged after %d calls, want 3 after 2 (drained, not asked again)", acked.Load(), calls.Load())
		}
	})
}

func TestProducerMisbehaviourAndPanic(t *testing.T) {
	for name, f := range map[string]pipeline.ProducerFunc[int]{
		"too many": func(ctx context.Context, msgs []pipeline.Message[int]) (int, error) { return len(msgs) + 1, nil },
		"panic":    func(ctx context.Context, msgs []pipeline.Message[int]) (int, error) { panic("producer bug") },
	} {
		t.Run(name, func(t *testing.T) {
			p := mustNew(t, pipeline.Options[int]{Producer: f, Processors: []pipeline.ProcessorOptions[int]{{Handler: nopHandler}}})
			err := p.Run(context.Background())
			var pe *pipeline.PanicError
			switch name {
			case "panic":
				if !errors.As(err, &pe) || pe.Value != "producer bug" {
					t.Errorf("Run: %v, want the panic", err)
				}
			default:
				if err == nil {
					t.Errorf("Run: nil, want an error about the count")
				}
			}
		})
	}
}

func TestNoGoroutineOutlivesTheRun(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := range 20 {
		prod := pipelinetest.NewProducer[int]()
		p := mustNew(t, pipeline.Options[int]{
			Producer:            prod,
			ProducerConcurrency: 2,
			Processors: []pipeline.ProcessorOptions[int]{
				{Name: "a", Concurrency: 3, Handler: nopHandler, PartitionBy: func(m *pipeline.Message[int]) uint64 { return uint64(m.Data) }},
				{Name: "b", Concurrency: 2, Handler: nopHandler},
			},
			Batchers: map[string]pipeline.BatcherOptions[int]{
				"x": {Concurrency: 3, Ordered: true, BatchSize: 7, Handler: nopBatch},
				"y": {Concurrency: 2, BatchSize: 5, Handler: nopBatch},
			},
			DefaultBatcher: "x",
		})
		prod.Push(seq(100)...)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() { errc <- p.Run(ctx) }()
		if i%2 == 0 {
			prod.Close()
		} else {
			cancel()
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	// Every goroutine a run started has ended before Run returned; give the runtime a moment
	// to reap the test's own helper goroutines.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after 20 runs:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
