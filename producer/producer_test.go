package producer_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer"
)

// refs is an acknowledger that records every reference it is told about.
type refs struct {
	mu     sync.Mutex
	ok     []uint64
	failed []uint64
}

func (r *refs) Ack(s []ack.Ref, f []ack.Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range s {
		r.ok = append(r.ok, x.N)
	}
	for _, x := range f {
		r.failed = append(r.failed, x.Ref.N)
	}
}

// checkOnce fails unless the references acknowledged are exactly 0..n-1, each once, all
// successful.
func (r *refs) checkOnce(t *testing.T, n int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failed) > 0 {
		t.Errorf("failed references %v", r.failed)
	}
	got := slices.Sorted(slices.Values(r.ok))
	if len(got) != n {
		t.Fatalf("%d acknowledgements, want %d", len(got), n)
	}
	for i, x := range got {
		if x != uint64(i) {
			t.Fatalf("references acknowledged are not 0..%d once each: position %d holds %d", n-1, i, x)
		}
	}
}

// produceAll calls Produce with a demand of demand until the input ends, and returns the
// data and references produced.
func produceAll[T any](t *testing.T, p pipeline.Producer[T], demand int) ([]T, []uint64) {
	t.Helper()
	var data []T
	var ns []uint64
	msgs := make([]pipeline.Message[T], demand)
	for range 10_000 {
		clear(msgs)
		n, err := p.Produce(t.Context(), msgs)
		if n < 0 || n > demand {
			t.Fatalf("Produce returned %d for a demand of %d", n, demand)
		}
		for _, m := range msgs[:n] {
			data = append(data, m.Data)
			ns = append(ns, m.Ref().N)
		}
		if errors.Is(err, pipeline.ErrEndOfInput) {
			return data, ns
		}
		if err != nil {
			t.Fatalf("Produce: %v", err)
		}
	}
	t.Fatal("the input never ended")
	return nil, nil
}

func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func asUint64(s []int) []uint64 {
	u := make([]uint64, len(s))
	for i, v := range s {
		u[i] = uint64(v)
	}
	return u
}

func TestProducersYieldInOrderAndEnd(t *testing.T) {
	items := upTo(10)
	cases := map[string]func(a ack.Acknowledger) pipeline.Producer[int]{
		"Slice": func(a ack.Acknowledger) pipeline.Producer[int] { return producer.Slice(items, a) },
		"Generate": func(a ack.Acknowledger) pipeline.Producer[int] {
			return producer.Generate(func(i int) (int, bool) { return i, i < len(items) }, a)
		},
		"Seq": func(a ack.Acknowledger) pipeline.Producer[int] { return producer.Seq(slices.Values(items), a) },
		"FromChan": func(a ack.Acknowledger) pipeline.Producer[int] {
			ch := make(chan int, len(items))
			for _, v := range items {
				ch <- v
			}
			close(ch)
			return producer.FromChan(ch, a)
		},
	}
	for name, mk := range cases {
		for _, demand := range []int{1, 3, 10, 64} {
			a := &refs{}
			p := mk(a)
			data, ns := produceAll(t, p, demand)
			if !slices.Equal(data, items) || !slices.Equal(ns, asUint64(items)) {
				t.Errorf("%s, demand %d: data %v, refs %v; want 0..9 in order for both", name, demand, data, ns)
			}
			msgs := make([]pipeline.Message[int], demand)
			if n, err := p.Produce(t.Context(), msgs); n != 0 || !errors.Is(err, pipeline.ErrEndOfInput) {
				t.Errorf("%s: Produce after the end = %d, %v; want 0, ErrEndOfInput", name, n, err)
			}
		}
	}
}

func TestProducersSetTheAcknowledger(t *testing.T) {
	a := &refs{}
	msgs := make([]pipeline.Message[int], 2)
	if _, err := producer.Slice([]int{7}, a).Produce(t.Context(), msgs); !errors.Is(err, pipeline.ErrEndOfInput) {
		t.Fatalf("Produce: %v", err)
	}
	if msgs[0].Acknowledger() != ack.Acknowledger(a) {
		t.Fatalf("message acknowledger %v, want the one given", msgs[0].Acknowledger())
	}
	if _, err := producer.Slice([]int{7}, nil).Produce(t.Context(), msgs); !errors.Is(err, pipeline.ErrEndOfInput) {
		t.Fatalf("Produce: %v", err)
	}
	if msgs[0].Acknowledger() != nil {
		t.Fatalf("with a nil acknowledger, message acknowledger %v", msgs[0].Acknowledger())
	}
}

func TestProducersHonourAnEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	never := make(chan int)
	for name, p := range map[string]pipeline.Producer[int]{
		"Slice":    producer.Slice([]int{1}, nil),
		"Generate": producer.Generate(func(i int) (int, bool) { return i, true }, nil),
		"Seq":      producer.Seq(slices.Values([]int{1}), nil),
		"FromChan": producer.FromChan(never, nil),
	} {
		n, err := p.Produce(ctx, make([]pipeline.Message[int], 4))
		if n != 0 || !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Produce with an ended context = %d, %v; want 0, context.Canceled", name, n, err)
		}
	}
}

func TestChanReturnsWhatIsReadyWithoutWaitingToFillTheDemand(t *testing.T) {
	ch := make(chan int, 8)
	ch <- 1
	ch <- 2
	p := producer.FromChan(ch, nil)
	msgs := make([]pipeline.Message[int], 8)
	n, err := p.Produce(t.Context(), msgs)
	if n != 2 || err != nil {
		t.Fatalf("Produce = %d, %v; want 2, nil", n, err)
	}
	ch <- 3
	close(ch)
	n, err = p.Produce(t.Context(), msgs)
	if n != 1 || msgs[0].Data != 3 || !errors.Is(err, pipeline.ErrEndOfInput) {
		t.Fatalf("Produce = %d (%d), %v; want 1 (3), ErrEndOfInput", n, msgs[0].Data, err)
	}
}

func TestChanBlocksUntilAValueArrivesOrTheContextEnds(t *testing.T) {
	ch := make(chan int)
	p := producer.FromChan(ch, nil)
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		n   int
		err error
	}
	res := make(chan result)
	go func() {
		n, err := p.Produce(ctx, make([]pipeline.Message[int], 4))
		res <- result{n, err}
	}()
	ch <- 5 // received only by a Produce call that is blocked waiting
	if r := <-res; r.n != 1 || r.err != nil {
		t.Fatalf("Produce = %d, %v; want 1, nil", r.n, r.err)
	}
	go func() {
		n, err := p.Produce(ctx, make([]pipeline.Message[int], 4))
		res <- result{n, err}
	}()
	cancel()
	if r := <-res; r.n != 0 || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Produce after cancel = %d, %v; want 0, context.Canceled", r.n, r.err)
	}
}

func TestSeqCloseStopsTheIterator(t *testing.T) {
	stopped := make(chan struct{})
	seq := func(yield func(int) bool) {
		defer close(stopped)
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
	p := producer.Seq(iter.Seq[int](seq), nil)
	msgs := make([]pipeline.Message[int], 3)
	if n, err := p.Produce(t.Context(), msgs); n != 3 || err != nil {
		t.Fatalf("Produce = %d, %v; want 3, nil", n, err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("Close returned and the iterator is still running")
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n, err := p.Produce(t.Context(), msgs); n != 0 || !errors.Is(err, pipeline.ErrEndOfInput) {
		t.Fatalf("Produce after Close = %d, %v; want 0, ErrEndOfInput", n, err)
	}
}

// TestConcurrentProducersDeliverEachValueOnce runs each producer in a pipeline with three
// producer goroutines: every value must be acknowledged exactly once.
func TestConcurrentProducersDeliverEachValueOnce(t *testing.T) {
	const n = 5000
	items := upTo(n)
	cases := map[string]func(a ack.Acknowledger) pipeline.Producer[int]{
		"Slice": func(a ack.Acknowledger) pipeline.Producer[int] { return producer.Slice(items, a) },
		"Generate": func(a ack.Acknowledger) pipeline.Producer[int] {
			return producer.Generate(func(i int) (int, bool) { return i, i < n }, a)
		},
		"Seq": func(a ack.Acknowledger) pipeline.Producer[int] { return producer.Seq(slices.Values(items), a) },
		"FromChan": func(a ack.Acknowledger) pipeline.Producer[int] {
			ch := make(chan int)
			go func() {
				defer close(ch)
				for _, v := range items {
					ch <- v
				}
			}()
			return producer.FromChan(ch, a)
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			a := &refs{}
			var mu sync.Mutex
			seen := make([]int, n)
			p, err := pipeline.New(pipeline.Options[int]{
				Producer:            mk(a),
				ProducerConcurrency: 3,
				Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, MaxDemand: 16, Handler: pipeline.HandlerFunc[int](
					func(_ context.Context, m *pipeline.Message[int]) error {
						if name != "FromChan" && m.Ref().N != uint64(m.Data) {
							// Chan numbers values as they are received, which concurrent
							// receivers do in no set order; the others serialise.
							t.Errorf("value %d has reference %d", m.Data, m.Ref().N)
						}
						mu.Lock()
						seen[m.Data]++
						mu.Unlock()
						return nil
					})}},
				ShutdownTimeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Run(t.Context()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			a.checkOnce(t, n)
			for v, k := range seen {
				if k != 1 {
					t.Fatalf("value %d handled %d times", v, k)
				}
			}
		})
	}
}
