package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

func mustNew[T any](t testing.TB, o pipeline.Options[T]) *pipeline.Pipeline[T] {
	t.Helper()
	p, err := pipeline.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func wait[T any](t testing.TB, d *pipelinetest.Delivery[T]) pipelinetest.Result[T] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := d.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != 0 {
		t.Errorf("%d duplicate acknowledgements", res.Duplicates)
	}
	return res
}

// batchLog records the batches a batch handler saw.
type batchLog struct {
	mu      sync.Mutex
	batches []loggedBatch
}

type loggedBatch struct {
	info pipeline.BatchInfo
	data []int
}

func (l *batchLog) handler(fail func(m *pipeline.Message[int]) error) pipeline.BatchHandler[int] {
	return pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], info pipeline.BatchInfo) error {
		lb := loggedBatch{info: info}
		for i := range b {
			lb.data = append(lb.data, b[i].Data)
			if fail != nil {
				if err := fail(&b[i]); err != nil {
					b[i].Fail(err)
				}
			}
		}
		l.mu.Lock()
		l.batches = append(l.batches, lb)
		l.mu.Unlock()
		return nil
	})
}

func (l *batchLog) get() []loggedBatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.batches)
}

func (l *batchLog) data() []int {
	var all []int
	for _, b := range l.get() {
		all = append(all, b.data...)
	}
	slices.Sort(all)
	return all
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestEveryMessageAcknowledgedOnceThroughProcessorsAndBatcher(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	var log batchLog
	obs := &pipelinetest.Observer{}
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{
			Concurrency: 3, MaxDemand: 7,
			Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				m.Data *= 10 // replace the data
				return nil
			}),
		}},
		Batchers:       map[string]pipeline.BatcherOptions[int]{"sum": {BatchSize: 10, Concurrency: 2, Handler: log.handler(nil)}},
		DefaultBatcher: "sum",
		Observer:       obs,
	})
	run := pipelinetest.Start(t, p)
	const n = 1000
	d := prod.Push(seq(n)...)
	res := wait(t, d)
	if len(res.Successful) != n || len(res.Failed) != 0 {
		t.Fatalf("%d successful, %d failed, want %d successful", len(res.Successful), len(res.Failed), n)
	}
	got := log.data()
	for i, v := range got {
		if v != i*10 {
			t.Fatalf("batched data[%d] = %d, want %d (every message once, with its replaced data)", i, v, i*10)
		}
	}
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := obs.Snapshot()
	if c.Produced != n || c.Processed["default"] != n || c.Batched != n || c.Successful != n || c.Failed != 0 {
		t.Errorf("observer counts: %+v", c)
	}
	if c.MaxInFlight > p.MaxInFlight() {
		t.Errorf("in flight reached %d, above the bound %d", c.MaxInFlight, p.MaxInFlight())
	}
	for _, size := range c.BatchSizes {
		if size > 10 {
			t.Errorf("a batch of %d, above BatchSize 10", size)
		}
	}
	want := []pipeline.DrainStep{pipeline.DrainStarted, pipeline.DrainProducersStopped, pipeline.DrainProcessorsFinished,
		pipeline.DrainBatchersFlushed, pipeline.DrainBatchProcessorsFinished, pipeline.DrainDone}
	if !slices.Equal(c.Drain, want) {
		t.Errorf("drain steps %v, want %v", c.Drain, want)
	}
}

func TestRouting(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	var even, odd batchLog
	var noBatcher atomic.Int64
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{
			Concurrency: 2,
			Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				switch {
				case m.Data%5 == 0:
					m.SetBatcher("") // to no batcher: acknowledged after this processor
					noBatcher.Add(1)
				case m.Data%7 == 0:
					m.SetBatcher("nowhere")
				case m.Data%2 == 1:
					m.SetBatcher("odd")
				}
				// even numbers stay with the default batcher
				m.SetBatchKey(fmt.Sprint(m.Data % 3))
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[int]{
			"even": {BatchSize: 4, Handler: even.handler(nil)},
			"odd":  {BatchSize: 4, Handler: odd.handler(nil)},
		},
		DefaultBatcher: "even",
	})
	run := pipelinetest.Start(t, p)
	const n = 200
	res := wait(t, prod.Push(seq(n)...))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	var wantEven, wantOdd, wantFailed []int
	for i := range n {
		switch {
		case i%5 == 0:
		case i%7 == 0:
			wantFailed = append(wantFailed, i)
		case i%2 == 1:
			wantOdd = append(wantOdd, i)
		default:
			wantEven = append(wantEven, i)
		}
	}
	if got := even.data(); !slices.Equal(got, wantEven) {
		t.Errorf("default batcher got %v, want %v", got, wantEven)
	}
	if got := odd.data(); !slices.Equal(got, wantOdd) {
		t.Errorf("batcher odd got %v, want %v", got, wantOdd)
	}
	var failed []int
	for _, f := range res.Failed {
		failed = append(failed, f.Data)
		if !errors.Is(f.Err, pipeline.ErrUnknownBatcher) {
			t.Errorf("message %d failed with %v, want ErrUnknownBatcher", f.Data, f.Err)
		}
	}
	if !slices.Equal(failed, wantFailed) {
		t.Errorf("failed %v, want %v (those routed to an unknown batcher)", failed, wantFailed)
	}
	if len(res.Successful)+len(res.Failed) != n || noBatcher.Load() != int64(n/5) {
		t.Errorf("%d successful + %d failed, %d to no batcher", len(res.Successful), len(res.Failed), noBatcher.Load())
	}
	for _, b := range append(even.get(), odd.get()...) {
		for _, v := range b.data {
			if fmt.Sprint(v%3) != b.info.Key {
				t.Errorf("batch of key %q holds %d", b.info.Key, v)
			}
		}
	}
}

func TestProcessorPoolsInSeries(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	var seen sync.Map
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{
			{Name: "double", Concurrency: 2, MaxDemand: 5, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				if m.Data == 3 {
					return pipeline.Permanent(errors.New("three"))
				}
				m.Data *= 2
				return nil
			})},
			{Name: "inc", Concurrency: 3, MaxDemand: 2, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				seen.Store(m.Data, true)
				m.Data++
				return nil
			})},
		},
	})
	run := pipelinetest.Start(t, p)
	res := wait(t, prod.Push(seq(50)...))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 1 || res.Failed[0].Data != 3 || res.Failed[0].Err.Error() != "three" {
		t.Fatalf("failed %+v, want message 3 with error three", res.Failed)
	}
	if _, ok := seen.Load(6); ok {
		t.Errorf("the second pool handled the message that failed in the first")
	}
	for i := range 50 {
		if _, ok := seen.Load(2 * i); ok == (i == 3) {
			t.Errorf("second pool saw %d: %v", 2*i, ok)
		}
	}
}

// countingAcker counts Ack calls and messages; it is a pointer, so that == would work too.
type countingAcker struct {
	mu    sync.Mutex
	calls int
	refs  []uint64
	fails []uint64
}

func (a *countingAcker) Ack(s []ack.Ref, f []ack.Failure) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	for _, r := range s {
		a.refs = append(a.refs, r.N)
	}
	for _, x := range f {
		a.fails = append(a.fails, x.Ref.N)
	}
}

func TestAcknowledgementsGroupedPerBatchPerAcknowledger(t *testing.T) {
	// Two acknowledgers, one of them a function (which == cannot compare), interleaved in
	// one batch of 10: each must be called once for the batch, with its own messages.
	a := &countingAcker{}
	var fcalls, fmsgs atomic.Int64
	f := ack.AcknowledgerFunc(func(s []ack.Ref, fl []ack.Failure) {
		fcalls.Add(1)
		fmsgs.Add(int64(len(s) + len(fl)))
	})
	var msgs []pipeline.Message[int]
	for i := range 10 {
		var acker ack.Acknowledger = a
		if i%2 == 1 {
			acker = f
		}
		msgs = append(msgs, pipeline.NewMessage(i, acker, ack.Ref{N: uint64(i)}))
	}
	if msgs[3].Data != 3 || msgs[3].Ref().N != 3 || msgs[3].Acknowledger() == nil {
		t.Fatal("NewMessage did not set data, ref and acknowledger")
	}
	var log batchLog
	done := make(chan struct{})
	p := mustNew(t, pipeline.Options[int]{
		Producer: pipeline.ProducerFunc[int](func(ctx context.Context, out []pipeline.Message[int]) (int, error) {
			if len(out) < len(msgs) {
				return 0, fmt.Errorf("demand %d, want at least %d", len(out), len(msgs))
			}
			return copy(out, msgs), pipeline.ErrEndOfInput
		}),
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			if m.Data == 4 {
				return pipeline.Permanent(errors.New("four"))
			}
			return nil
		})}},
		Batchers: map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 10, Handler: log.handler(func(m *pipeline.Message[int]) error {
			if m.Data == 8 {
				return pipeline.Permanent(errors.New("eight"))
			}
			return nil
		})}},
		DefaultBatcher: "b",
		Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(context.Context, []pipeline.Message[int]) error {
			return nil
		})},
	})
	go func() { defer close(done); _ = p.Run(context.Background()) }()
	<-done
	// Message 4 failed in the processor: acknowledged with the processor's group (one call
	// to a); the batch of the other 9 gives one call to each acknowledger.
	if a.calls != 2 {
		t.Errorf("acknowledger a called %d times, want 2 (the processor's failure, then the batch)", a.calls)
	}
	slices.Sort(a.refs)
	if !slices.Equal(a.refs, []uint64{0, 2, 6}) || !slices.Equal(a.fails, []uint64{4, 8}) {
		t.Errorf("a: successful %v failed %v, want [0 2 6] and [4 8]", a.refs, a.fails)
	}
	if fcalls.Load() != 1 || fmsgs.Load() != 5 {
		t.Errorf("function acknowledger: %d calls for %d messages, want 1 call for 5", fcalls.Load(), fmsgs.Load())
	}
}

func TestPartitionByKeepsOrderPerKey(t *testing.T) {
	type item struct{ key, seq int }
	prod := pipelinetest.NewProducer[item]()
	var mu sync.Mutex
	last := map[int]int{}
	var disorder []string
	var batchMu sync.Mutex
	batchLast := map[string]int{}
	p := mustNew(t, pipeline.Options[item]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[item]{{
			Concurrency: 4, MaxDemand: 3,
			PartitionBy: func(m *pipeline.Message[item]) uint64 { return uint64(m.Data.key) },
			Handler: pipeline.HandlerFunc[item](func(_ context.Context, m *pipeline.Message[item]) error {
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := last[m.Data.key]; ok && prev >= m.Data.seq {
					disorder = append(disorder, fmt.Sprintf("key %d: %d after %d", m.Data.key, m.Data.seq, prev))
				}
				last[m.Data.key] = m.Data.seq
				m.SetBatchKey(fmt.Sprint(m.Data.key))
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[item]{"ordered": {
			BatchSize: 4, Concurrency: 3, Ordered: true,
			Handler: pipeline.BatchHandlerFunc[item](func(_ context.Context, b []pipeline.Message[item], info pipeline.BatchInfo) error {
				batchMu.Lock()
				defer batchMu.Unlock()
				for _, m := range b {
					if prev, ok := batchLast[info.Key]; ok && prev >= m.Data.seq {
						disorder = append(disorder, fmt.Sprintf("batch key %s: %d after %d", info.Key, m.Data.seq, prev))
					}
					batchLast[info.Key] = m.Data.seq
				}
				return nil
			}),
		}},
		DefaultBatcher: "ordered",
	})
	run := pipelinetest.Start(t, p)
	var items []item
	for s := range 300 {
		for k := range 7 {
			items = append(items, item{key: k, seq: s})
		}
	}
	res := wait(t, prod.Push(items...))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(res.Successful) != len(items) {
		t.Fatalf("%d successful of %d", len(res.Successful), len(items))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(disorder) > 0 {
		t.Errorf("order broken %d times, first: %s", len(disorder), disorder[0])
	}
}
