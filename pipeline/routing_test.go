package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/batcher"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

// copyLog records what a batch handler saw of fanned-out copies.
type copyLog struct {
	mu       sync.Mutex
	data     []int
	batchers []string
}

func (l *copyLog) add(m *pipeline.Message[int]) {
	l.mu.Lock()
	l.data = append(l.data, m.Data)
	l.batchers = append(l.batchers, m.Batcher())
	l.mu.Unlock()
}

func (l *copyLog) sorted() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(slices.Values(l.data))
}

// A message sent to two batchers is acknowledged once, after both copies were handled; each
// batcher sees every message, each copy names its own batcher and is a value of its own.
func TestFanOutAcknowledgesAfterEveryCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 30
		prod := pipelinetest.NewProducer[int]()
		var db, an copyLog
		release := make(chan struct{})
		p := mustNew(t, pipeline.Options[int]{
			Producer: prod,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				m.SetBatchers("database", "analytics", "database") // the repeat is ignored
				m.SetBatchKey(fmt.Sprint(m.Data % 2))
				return nil
			})}},
			Batchers: map[string]pipeline.BatcherOptions[int]{
				"database": {BatchSize: 10, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], info pipeline.BatchInfo) error {
					<-release // the database is slow
					for i := range b {
						if b[i].BatchKey() != info.Key {
							t.Errorf("copy of %d in a batch of key %q has key %q", b[i].Data, info.Key, b[i].BatchKey())
						}
						db.add(&b[i])
					}
					return nil
				})},
				"analytics": {BatchSize: 10, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
					for i := range b {
						an.add(&b[i])
						b[i].Data = -1 // its own copy: the database's is unchanged
						// Routing a copy again does nothing: it still counts as a copy.
						b[i].SetBatcher("database")
						b[i].SetBatchers("database", "analytics")
						b[i].SetAcknowledger(nil, ack.Ref{})
					}
					return nil
				})},
			},
		})
		run := pipelinetest.Start(t, p)
		d := prod.Push(seq(n)...)
		time.Sleep(2 * time.Second) // past the batch timeout: partial batches close
		synctest.Wait()
		if got := an.sorted(); !slices.Equal(got, seq(n)) {
			t.Fatalf("analytics saw %v, want every message", got)
		}
		if res := d.Result(); res.Pending != n {
			t.Fatalf("%d messages acknowledged while their database copy was not handled", n-res.Pending)
		}
		close(release)
		res := wait(t, d)
		prod.Close()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
		if len(res.Successful) != n || res.Duplicates != 0 {
			t.Errorf("result %+v, want %d successful, each once", res, n)
		}
		if got := db.sorted(); !slices.Equal(got, seq(n)) {
			t.Errorf("database saw %v, want every message unchanged by the analytics handler", got)
		}
		for _, name := range db.batchers {
			if name != "database" {
				t.Fatalf("a database copy says its batcher is %q", name)
			}
		}
		for _, name := range an.batchers {
			if name != "analytics" {
				t.Fatalf("an analytics copy says its batcher is %q", name)
			}
		}
	})
}

// A copy that fails transiently is retried on its batcher only; a copy that ends as bad data
// is seen by the failure handler and fails its message, whose other copy is still written; an
// unknown batcher fails the message before any copy is made.
func TestFanOutCopyFailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := pipelinetest.NewProducer[int]()
		var db, an copyLog
		var dbAttempts, anAttempts atomic.Int64
		var mu sync.Mutex
		var hookSaw []string
		rejected := errors.New("analytics: bad record")
		p := mustNew(t, pipeline.Options[int]{
			Producer: prod,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				if m.Data == 5 {
					m.SetBatchers("database", "nowhere")
				} else {
					m.SetBatchers("database", "analytics")
				}
				return nil
			})}},
			Batchers: map[string]pipeline.BatcherOptions[int]{
				"database": {BatchSize: 10, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
					if dbAttempts.Add(1) <= 2 {
						return errSinkDown // down for two attempts
					}
					for i := range b {
						db.add(&b[i])
					}
					return nil
				})},
				"analytics": {BatchSize: 10, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
					anAttempts.Add(1)
					for i := range b {
						if b[i].Data == 3 {
							b[i].Fail(pipeline.Permanent(rejected))
							continue
						}
						an.add(&b[i])
					}
					return nil
				})},
			},
			Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
				mu.Lock()
				defer mu.Unlock()
				for i := range msgs {
					hookSaw = append(hookSaw, fmt.Sprintf("%d@%s", msgs[i].Data, msgs[i].Batcher()))
				}
				return nil
			})},
			Logger: quietLogger,
		})
		run := pipelinetest.Start(t, p)
		res := wait(t, prod.Push(seq(10)...))
		prod.Close()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
		if dbAttempts.Load() != 3 || anAttempts.Load() != 1 {
			t.Errorf("%d database and %d analytics attempts, want 3 and 1: a transient failure is retried on its batcher only", dbAttempts.Load(), anAttempts.Load())
		}
		want := slices.DeleteFunc(seq(10), func(v int) bool { return v == 5 })
		if got := db.sorted(); !slices.Equal(got, want) {
			t.Errorf("database wrote %v, want %v", got, want)
		}
		want = slices.DeleteFunc(want, func(v int) bool { return v == 3 })
		if got := an.sorted(); !slices.Equal(got, want) {
			t.Errorf("analytics wrote %v, want %v", got, want)
		}
		if len(res.Successful) != 8 || len(res.Failed) != 2 || res.Duplicates != 0 {
			t.Fatalf("result %+v, want 3 and 5 failed, the 8 others successful", res)
		}
		if f := res.Failed[0]; f.Data != 3 || !errors.Is(f.Err, rejected) {
			t.Errorf("message 3 failed with %v, want the analytics copy's error", f.Err)
		}
		if f := res.Failed[1]; f.Data != 5 || !errors.Is(f.Err, pipeline.ErrUnknownBatcher) {
			t.Errorf("message 5 failed with %v, want ErrUnknownBatcher", f.Err)
		}
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(hookSaw)
		if !slices.Equal(hookSaw, []string{"3@analytics", "5@database"}) {
			t.Errorf("failure handler saw %v, want the analytics copy of 3 and message 5", hookSaw)
		}
	})
}

// A fanned-out message counts once under MaxInFlight and in the observer's counts.
func TestFanOutCountsOnceInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxInFlight = 40
		src := &endless{}
		var acked atomic.Int64
		release := make(chan struct{})
		obs := &pipelinetest.Observer{}
		blocked := pipeline.BatchHandlerFunc[int](func(context.Context, []pipeline.Message[int], pipeline.BatchInfo) error {
			<-release
			return nil
		})
		p := mustNew(t, pipeline.Options[int]{
			Producer: pipeline.ProducerFunc[int](func(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
				n, err := src.Produce(ctx, msgs)
				for i := range n {
					msgs[i].SetAcknowledger(ack.AcknowledgerFunc(func(s []ack.Ref, f []ack.Failure) {
						acked.Add(int64(len(s) + len(f)))
					}), ack.Ref{})
				}
				return n, err
			}),
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, MaxDemand: 10, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				m.SetBatchers("a", "b")
				return nil
			})}},
			Batchers: map[string]pipeline.BatcherOptions[int]{
				"a": {BatchSize: 5, Concurrency: 2, Handler: blocked},
				"b": {BatchSize: 5, Concurrency: 2, Handler: blocked},
			},
			MaxInFlight: maxInFlight,
			Observer:    obs,
		})
		run := pipelinetest.Start(t, p)
		synctest.Wait()
		if got := src.produced.Load(); got != maxInFlight {
			t.Errorf("%d messages produced while every batch handler was blocked, want exactly the bound %d", got, maxInFlight)
		}
		close(release)
		p.Stop()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
		produced := src.produced.Load()
		c := obs.Snapshot()
		if acked.Load() != produced || int64(c.Successful) != produced || c.Failed != 0 {
			t.Errorf("%d produced, %d acknowledged, observer counted %d successful: a message must count once", produced, acked.Load(), c.Successful)
		}
		if c.MaxInFlight > maxInFlight || c.Batched != 2*int(produced) {
			t.Errorf("observer: in flight up to %d (bound %d); %d batched, want 2 copies of each of %d", c.MaxInFlight, maxInFlight, c.Batched, produced)
		}
	})
}

func TestSetBatchers(t *testing.T) {
	var m pipeline.Message[int]
	if m.Batchers() != nil {
		t.Errorf("unrouted message: Batchers() = %v, want nil", m.Batchers())
	}
	m.SetBatchers("a", "", "b", "a")
	if got := m.Batchers(); !slices.Equal(got, []string{"a", "b"}) || m.Batcher() != "a" {
		t.Errorf("Batchers() = %v, Batcher() = %q; want [a b] and a", got, m.Batcher())
	}
	m.Batchers()[0] = "changed"
	if m.Batchers()[0] != "a" {
		t.Error("Batchers returned the message's own slice")
	}
	m.SetBatchers("c", "c")
	if got := m.Batchers(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("one distinct name: Batchers() = %v, want [c]", got)
	}
	m.SetBatchers()
	if got := m.Batchers(); got != nil || m.Batcher() != "" {
		t.Errorf("no name: Batchers() = %v, want nil (no batcher)", got)
	}
	m.SetBatchers("x", "y")
	m.SetBatcher("z")
	if got := m.Batchers(); !slices.Equal(got, []string{"z"}) {
		t.Errorf("SetBatcher after SetBatchers: %v, want [z]", got)
	}

	// The acknowledger is the producer's whatever the routing, in either order.
	a, b := &countingAcker{}, &countingAcker{}
	m.SetAcknowledger(a, ack.Ref{N: 1})
	m.SetBatchers("x", "y")
	if m.Acknowledger() != ack.Acknowledger(a) || m.Ref().N != 1 {
		t.Errorf("after SetBatchers: acknowledger %v, ref %v; want the producer's", m.Acknowledger(), m.Ref())
	}
	m.SetAcknowledger(b, ack.Ref{N: 2})
	if m.Acknowledger() != ack.Acknowledger(b) || m.Ref().N != 2 || !slices.Equal(m.Batchers(), []string{"x", "y"}) {
		t.Errorf("SetAcknowledger after SetBatchers: acknowledger %v, ref %v, batchers %v", m.Acknowledger(), m.Ref(), m.Batchers())
	}
	m.SetBatcher("z")
	if m.Acknowledger() != ack.Acknowledger(b) {
		t.Errorf("SetBatcher after SetBatchers: acknowledger %v, want the producer's", m.Acknowledger())
	}
}

// PartitionByKey keeps the order of each key through a pool, with string keys and no
// hand-written hash, and hashes without allocating.
func TestPartitionByKeyKeepsOrderPerKey(t *testing.T) {
	type item struct {
		user string
		seq  int
	}
	prod := pipelinetest.NewProducer[item]()
	var mu sync.Mutex
	last := map[string]int{}
	var disorder []string
	byUser := pipeline.PartitionByKey(func(m *pipeline.Message[item]) string { return m.Data.user })
	p := mustNew(t, pipeline.Options[item]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[item]{{
			Concurrency: 4, MaxDemand: 3, PartitionBy: byUser,
			Handler: pipeline.HandlerFunc[item](func(_ context.Context, m *pipeline.Message[item]) error {
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := last[m.Data.user]; ok && prev >= m.Data.seq {
					disorder = append(disorder, fmt.Sprintf("%s: %d after %d", m.Data.user, m.Data.seq, prev))
				}
				last[m.Data.user] = m.Data.seq
				return nil
			}),
		}},
	})
	run := pipelinetest.Start(t, p)
	var items []item
	for s := range 200 {
		for u := range 9 {
			items = append(items, item{user: fmt.Sprintf("user-%d", u), seq: s})
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
	if len(disorder) > 0 {
		t.Errorf("order broken %d times, first: %s", len(disorder), disorder[0])
	}
	m := &pipeline.Message[item]{Data: item{user: "user-3"}}
	if byUser(m) != batcher.Hash("user-3") || byUser(m) != byUser(&pipeline.Message[item]{Data: item{user: "user-3"}}) {
		t.Error("PartitionByKey is not the key's hash, the same for equal keys")
	}
	if a := testing.AllocsPerRun(100, func() { byUser(m) }); a != 0 {
		t.Errorf("PartitionByKey allocates %v per call", a)
	}
}

// Observers forwards every event to each observer; nil and no-op observers are left out.
func TestObserversForwardsToEach(t *testing.T) {
	if _, ok := pipeline.Observers().(pipeline.NopObserver); !ok {
		t.Error("Observers() is not a NopObserver")
	}
	if _, ok := pipeline.Observers(nil, pipeline.NopObserver{}).(pipeline.NopObserver); !ok {
		t.Error("Observers(nil, NopObserver{}) is not a NopObserver")
	}
	one := &pipelinetest.Observer{}
	if pipeline.Observers(nil, one) != pipeline.Observer(one) {
		t.Error("Observers of one observer is not that observer")
	}
	a, b, c := &pipelinetest.Observer{}, &pipelinetest.Observer{}, &pipelinetest.Observer{}
	prod := pipelinetest.NewProducer[int]()
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			if m.Data == 4 {
				return pipeline.Permanent(errors.New("bad"))
			}
			return nil
		})}},
		Batchers:       map[string]pipeline.BatcherOptions[int]{"db": {BatchSize: 3, Handler: nopBatch}},
		DefaultBatcher: "db",
		Observer:       pipeline.Observers(a, nil, pipeline.Observers(b, c), pipeline.NopObserver{}),
	})
	run := pipelinetest.Start(t, p)
	wait(t, prod.Push(seq(10)...))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	ca := a.Snapshot()
	if ca.Produced != 10 || ca.Successful != 9 || ca.Failed != 1 || ca.Batched != 9 || len(ca.Drain) == 0 {
		t.Fatalf("first observer counted %+v", ca)
	}
	for i, o := range []*pipelinetest.Observer{b, c} {
		cb := o.Snapshot()
		if cb.Produced != ca.Produced || cb.Successful != ca.Successful || cb.Failed != ca.Failed ||
			cb.Batches != ca.Batches || !slices.Equal(cb.Drain, ca.Drain) || cb.Processed["default"] != 10 {
			t.Errorf("observer %d counted %+v, want the same as the first, %+v", i+2, cb, ca)
		}
	}
}

// The drain of a pipeline whose handler routes to several batchers flushes every copy.
func TestFanOutDrainFlushesEveryCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := pipelinetest.NewProducer[int]()
		var db, an copyLog
		p := mustNew(t, pipeline.Options[int]{
			Producer: prod,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				if m.Data%2 == 0 {
					m.SetBatchers("database", "analytics")
				} else {
					m.SetBatcher("database")
				}
				return nil
			})}},
			Batchers: map[string]pipeline.BatcherOptions[int]{
				"database": {BatchSize: 100, BatchTimeout: time.Hour, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
					for i := range b {
						db.add(&b[i])
					}
					return nil
				})},
				"analytics": {BatchSize: 100, BatchTimeout: time.Hour, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
					for i := range b {
						an.add(&b[i])
					}
					return nil
				})},
			},
		})
		run := pipelinetest.Start(t, p)
		d := prod.Push(seq(9)...)
		synctest.Wait()
		p.Stop()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
		if res := d.Result(); len(res.Successful) != 9 || res.Duplicates != 0 {
			t.Errorf("after the drain: %+v", res)
		}
		if got := db.sorted(); !slices.Equal(got, seq(9)) {
			t.Errorf("database flushed %v", got)
		}
		if got := an.sorted(); !slices.Equal(got, []int{0, 2, 4, 6, 8}) {
			t.Errorf("analytics flushed %v", got)
		}
	})
}
