package gostreams_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"
	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
	"github.com/sluice-go/sluice/producer/gostreams"
)

// outcome is an acknowledger that records which references succeeded and which failed.
type outcome struct {
	mu     sync.Mutex
	ok     []uint64
	failed map[uint64]error
}

func (o *outcome) Ack(s []ack.Ref, f []ack.Failure) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range s {
		o.ok = append(o.ok, r.N)
	}
	if o.failed == nil {
		o.failed = map[uint64]error{}
	}
	for _, x := range f {
		o.failed[x.Ref.N] = x.Err
	}
}

// collector is a pipeline whose one processor collects the values it sees.
type collector struct {
	mu   sync.Mutex
	seen []int
}

func (c *collector) pipeline(t *testing.T, p pipeline.Producer[int], failures pipeline.FailureHandler[int]) *pipeline.Pipeline[int] {
	t.Helper()
	pl, err := pipeline.New(pipeline.Options[int]{
		Producer: p,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](
			func(_ context.Context, m *pipeline.Message[int]) error {
				c.mu.Lock()
				c.seen = append(c.seen, m.Data)
				c.mu.Unlock()
				return nil
			})}},
		Failure:         pipeline.FailureOptions[int]{Handler: failures},
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func TestSourceTurnsElementsIntoMessages(t *testing.T) {
	in := make(chan any, 8)
	for _, v := range []any{1, 2, "three", 4} {
		in <- v
	}
	close(in)
	src := extension.NewChanSource(in)
	through := src.Via(flow.NewPassThrough()) // any Outlet will do, a Flow included

	out := &outcome{}
	var col collector
	var hookSaw []error
	hook := pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
		for i := range msgs {
			hookSaw = append(hookSaw, msgs[i].Err())
		}
		return nil
	})
	pl := col.pipeline(t, gostreams.NewSource[int](through, out), hook)
	if err := pl.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !slices.Equal(col.seen, []int{1, 2, 4}) {
		t.Errorf("processor saw %v, want [1 2 4]: the string skips the processors", col.seen)
	}
	if got := slices.Sorted(slices.Values(out.ok)); !slices.Equal(got, []uint64{0, 1, 3}) {
		t.Errorf("successful references %v, want [0 1 3]", got)
	}
	if err := out.failed[2]; len(out.failed) != 1 || !errors.Is(err, gostreams.ErrType) {
		t.Errorf("failures %v, want reference 2 failed with ErrType", out.failed)
	}
	if len(hookSaw) != 1 || !errors.Is(hookSaw[0], gostreams.ErrType) {
		t.Errorf("failure handler saw %v, want the one ErrType failure", hookSaw)
	}
}

func TestSourceProduceHonoursItsContext(t *testing.T) {
	src := extension.NewChanSource(make(chan any))
	s := gostreams.NewSource[int](src, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := s.Produce(ctx, make([]pipeline.Message[int], 4)); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Produce = %d, %v; want 0, context.Canceled", n, err)
	}
}

// TestSinkFeedsAPipeline runs a go-streams flow into a Sink that a pipeline consumes: To
// returns only after the pipeline has finished every element (the pipeline closes the sink
// after its last acknowledgement).
func TestSinkFeedsAPipeline(t *testing.T) {
	const n = 1000
	in := make(chan any)
	go func() {
		defer close(in)
		for i := range n {
			in <- i
		}
	}()
	double := flow.NewMap(func(x int) int { return 2 * x }, 2)

	sink := gostreams.NewSink[int](16, nil)
	var col collector
	pl := col.pipeline(t, sink, nil)
	run := pipelinetest.Start(t, pl)

	extension.NewChanSource(in).Via(double).To(sink) // returns once the pipeline is done
	col.mu.Lock()
	handled := len(col.seen)
	col.mu.Unlock()
	if handled != n {
		t.Fatalf("To returned when the pipeline had handled %d of %d elements", handled, n)
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	slices.Sort(col.seen)
	if len(col.seen) != n {
		t.Fatalf("pipeline saw %d elements, want %d", len(col.seen), n)
	}
	for i, v := range col.seen {
		if v != 2*i {
			t.Fatalf("pipeline saw %v…, want every doubled value once", col.seen[:i+1])
		}
	}
}

func TestSinkCompletesWhenThePipelineStopsEarly(t *testing.T) {
	sink := gostreams.NewSink[int](0, nil)
	var col collector
	pl := col.pipeline(t, sink, nil)
	run := pipelinetest.Start(t, pl)
	sink.In() <- 1
	pl.Stop()
	sink.AwaitCompletion() // released by the pipeline's Close at the end of the run
	if err := run.Wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
