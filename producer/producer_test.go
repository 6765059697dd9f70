package producer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer"
)

// collect runs prod through a pipeline that records each message's data, until the
// producer's input ends, and returns the data sorted.
func collect(t *testing.T, prod pipeline.Producer[int], concurrency int) (data []int) {
	t.Helper()
	var mu sync.Mutex
	p, err := pipeline.New(pipeline.Options[int]{
		Producer:            prod,
		ProducerConcurrency: concurrency,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, MaxDemand: 5, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			mu.Lock()
			data = append(data, m.Data)
			mu.Unlock()
			return nil
		})}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	slices.Sort(data)
	return data
}

// recorder is an acknowledger recording references.
type recorder struct {
	mu   sync.Mutex
	refs []uint64
}

func (r *recorder) Ack(s []ack.Ref, f []ack.Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range s {
		r.refs = append(r.refs, x.N)
	}
	for _, x := range f {
		r.refs = append(r.refs, x.Ref.N)
	}
}

func (r *recorder) sorted() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := slices.Clone(r.refs)
	slices.Sort(s)
	return s
}

func want(n int) ([]int, []uint64) {
	d := make([]int, n)
	r := make([]uint64, n)
	for i := range n {
		d[i], r[i] = i, uint64(i)
	}
	return d, r
}

func TestProducers(t *testing.T) {
	const n = 103
	wantData, wantRefs := want(n)
	items := wantData
	cases := map[string]func(a ack.Acknowledger) pipeline.Producer[int]{
		"Slice": func(a ack.Acknowledger) pipeline.Producer[int] { return producer.Slice(items, a) },
		"Generate": func(a ack.Acknowledger) pipeline.Producer[int] {
			return producer.Generate(func(i int) (int, bool) { return i, i < n }, a)
		},
		"Seq": func(a ack.Acknowledger) pipeline.Producer[int] { return producer.Seq(slices.Values(items), a) },
		"FromChan": func(a ack.Acknowledger) pipeline.Producer[int] {
			ch := make(chan int, 10)
			go func() {
				defer close(ch)
				for i := range n {
					ch <- i
				}
			}()
			return producer.FromChan(ch, a)
		},
	}
	for name, mk := range cases {
		for _, conc := range []int{1, 3} {
			t.Run(name, func(t *testing.T) {
				rec := &recorder{}
				data := collect(t, mk(rec), conc)
				if !slices.Equal(data, wantData) {
					t.Errorf("concurrency %d: data %v, want 0..%d once each", conc, data, n-1)
				}
				if got := rec.sorted(); !slices.Equal(got, wantRefs) {
					t.Errorf("concurrency %d: refs %v, want 0..%d once each", conc, got, n-1)
				}
			})
		}
	}
}

func TestProducersWithoutAcknowledger(t *testing.T) {
	data := collect(t, producer.Slice([]int{4, 5, 6}, nil), 1)
	if !slices.Equal(data, []int{4, 5, 6}) {
		t.Errorf("data %v", data)
	}
}

func TestChanHonoursContextWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int)
		c := producer.FromChan(ch, nil)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() {
			_, err := c.Produce(ctx, make([]pipeline.Message[int], 4))
			errc <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Produce after cancel: %v", err)
		}
	})
}

func TestChanTakesWhatIsReadyWithoutWaitingToFill(t *testing.T) {
	ch := make(chan int, 10)
	ch <- 1
	ch <- 2
	msgs := make([]pipeline.Message[int], 5)
	n, err := producer.FromChan(ch, nil).Produce(context.Background(), msgs)
	if n != 2 || err != nil || msgs[0].Data != 1 || msgs[1].Data != 2 {
		t.Errorf("Produce: %d, %v, want the 2 ready values at once", n, err)
	}
	close(ch)
	if n, err := producer.FromChan(ch, nil).Produce(context.Background(), msgs); n != 0 || !errors.Is(err, pipeline.ErrEndOfInput) {
		t.Errorf("Produce on a closed channel: %d, %v", n, err)
	}
}

func TestSeqIsReleasedWhenTheRunEnds(t *testing.T) {
	stopped := false
	seq := func(yield func(int) bool) {
		defer func() { stopped = true }()
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
	it := producer.Seq(seq, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := pipeline.New(pipeline.Options[int]{
		Producer: it,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			cancel() // the iterator is endless: stop after the first message
			return nil
		})}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !stopped {
		t.Errorf("the iterator was not stopped when the run ended (Close)")
	}
}
