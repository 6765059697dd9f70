package gostreams_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"
	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer/gostreams"
)

type recorder struct {
	mu        sync.Mutex
	succeeded []uint64
	failed    []error
}

func (r *recorder) Ack(s []ack.Ref, f []ack.Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range s {
		r.succeeded = append(r.succeeded, x.N)
	}
	for _, x := range f {
		r.failed = append(r.failed, x.Err)
	}
}

// summing is a pipeline that sums the ints it sees in batches.
func summing(t *testing.T, prod pipeline.Producer[int]) (*pipeline.Pipeline[int], func() []int) {
	var mu sync.Mutex
	var seen []int
	p, err := pipeline.New(pipeline.Options[int]{
		Producer:   prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, Handler: pipeline.HandlerFunc[int](func(context.Context, *pipeline.Message[int]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 4, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range b {
				seen = append(seen, m.Data)
			}
			return nil
		})}},
		DefaultBatcher: "b",
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, func() []int {
		mu.Lock()
		defer mu.Unlock()
		s := slices.Clone(seen)
		slices.Sort(s)
		return s
	}
}

func TestSourceFeedsAPipeline(t *testing.T) {
	in := make(chan any)
	// A go-streams source through a go-streams flow: the pipeline reads the flow's outlet.
	src := extension.NewChanSource(in).Via(flow.NewMap(func(x int) int { return x * 2 }, 1))
	go func() {
		defer close(in)
		for i := range 10 {
			in <- i
		}
	}()
	rec := &recorder{}
	p, seen := summing(t, gostreams.NewSource[int](src, rec))
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := seen(), []int{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}; !slices.Equal(got, want) {
		t.Errorf("batched %v, want %v", got, want)
	}
	if len(rec.succeeded) != 10 || len(rec.failed) != 0 {
		t.Errorf("acks: %d succeeded, failed %v", len(rec.succeeded), rec.failed)
	}
}

func TestSourceFailsElementsOfTheWrongType(t *testing.T) {
	in := make(chan any, 3)
	in <- 1
	in <- "two"
	in <- 3
	close(in)
	rec := &recorder{}
	p, seen := summing(t, gostreams.NewSource[int](extension.NewChanSource(in), rec))
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := seen(); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("batched %v", got)
	}
	if len(rec.failed) != 1 || !errors.Is(rec.failed[0], gostreams.ErrType) {
		t.Fatalf("failures %v, want one ErrType", rec.failed)
	}
	if got := rec.failed[0].Error(); got != "gostreams: element of the wrong type: got string, want int" {
		t.Errorf("error text %q", got)
	}
}

func TestSinkFeedsAPipeline(t *testing.T) {
	rec := &recorder{}
	sink := gostreams.NewSink[int](0, rec)
	p, seen := summing(t, sink)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(context.Background()) }()

	in := make(chan any)
	go func() {
		defer close(in)
		for i := range 25 {
			in <- i
		}
	}()
	// To blocks until the sink completes: the pipeline has acknowledged every element.
	extension.NewChanSource(in).Via(flow.NewFilter(func(x int) bool { return x%5 != 0 }, 1)).To(sink)
	rec.mu.Lock()
	acked := len(rec.succeeded)
	rec.mu.Unlock()
	if acked != 20 {
		t.Errorf("AwaitCompletion returned with %d of 20 acknowledged", acked)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := range 25 {
		if i%5 != 0 {
			want = append(want, i)
		}
	}
	if got := seen(); !slices.Equal(got, want) {
		t.Errorf("batched %v, want %v", got, want)
	}
}
