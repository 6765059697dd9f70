package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

// batcherPipeline runs a pipeline with one pass-through processor and one batcher "b", for
// the trigger tests.
func batcherPipeline(t *testing.T, b pipeline.BatcherOptions[int], log *batchLog) (*pipelinetest.Producer[int], *pipeline.Pipeline[int], *pipelinetest.Run) {
	prod := pipelinetest.NewProducer[int]()
	b.Handler = log.handler(nil)
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			m.SetBatchKey(fmt.Sprint(m.Data / 100)) // 0xx, 1xx, ... share a key
			return nil
		})}},
		Batchers:       map[string]pipeline.BatcherOptions[int]{"b": b},
		DefaultBatcher: "b",
	})
	return prod, p, pipelinetest.Start(t, p)
}

func triggers(bs []loggedBatch) []string {
	var out []string
	for _, b := range bs {
		out = append(out, fmt.Sprintf("%s:%d:%s", b.info.Key, b.info.Size, b.info.Trigger))
	}
	slices.Sort(out)
	return out
}

func TestBatchClosesOnSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log batchLog
		prod, _, run := batcherPipeline(t, pipeline.BatcherOptions[int]{BatchSize: 3, BatchTimeout: time.Hour}, &log)
		prod.Push(0, 1, 2, 3, 4, 5, 100, 101)
		synctest.Wait() // everything that can happen without time passing has happened
		if got, want := triggers(log.get()), []string{"0:3:size", "0:3:size"}; !slices.Equal(got, want) {
			t.Errorf("batches %v, want %v (the key-1 pair waits for its timeout)", got, want)
		}
		prod.Close()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
		if got, want := triggers(log.get()), []string{"0:3:size", "0:3:size", "1:2:flush"}; !slices.Equal(got, want) {
			t.Errorf("after the drain: batches %v, want %v", got, want)
		}
	})
}

func TestBatchClosesOnTimeoutFromItsFirstMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log batchLog
		prod, _, run := batcherPipeline(t, pipeline.BatcherOptions[int]{BatchSize: 100, BatchTimeout: 10 * time.Second}, &log)
		prod.Push(1)
		synctest.Wait()
		time.Sleep(6 * time.Second)
		d := prod.Push(2, 100) // 2 joins key 0's batch; 100 opens key 1's, whose timer starts now
		synctest.Wait()
		time.Sleep(4*time.Second - time.Nanosecond)
		synctest.Wait()
		if got := log.get(); len(got) != 0 {
			t.Fatalf("batches closed before their timeout: %v", triggers(got))
		}
		time.Sleep(time.Nanosecond) // 10s after key 0's first message
		synctest.Wait()
		if got, want := triggers(log.get()), []string{"0:2:timeout"}; !slices.Equal(got, want) {
			t.Errorf("at 10s: %v, want %v", got, want)
		}
		time.Sleep(6 * time.Second) // 10s after key 1's first message
		<-d.Done()
		if got, want := triggers(log.get()), []string{"0:2:timeout", "1:1:timeout"}; !slices.Equal(got, want) {
			t.Errorf("at 16s: %v, want %v", got, want)
		}
		prod.Close()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBatchClosesOnBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log batchLog
		prod, _, run := batcherPipeline(t, pipeline.BatcherOptions[int]{
			BatchSize: 100, BatchTimeout: time.Hour, MaxBatchBytes: 10,
			SizeOf: func(m *pipeline.Message[int]) int { return m.Data % 100 },
		}, &log)
		// sizes 4, 4 (8), then 3 would make 11: the batch closes before it; 3, 7 make 10: closes
		// at the limit; 12 alone is above it: a batch of its own.
		for _, v := range []int{4, 4, 3, 7, 12} {
			prod.Push(v)
			synctest.Wait() // keep the order through the two processors
		}
		prod.Close()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range log.get() {
			got = append(got, fmt.Sprintf("%v=%d:%s", b.data, b.info.Bytes, b.info.Trigger))
		}
		want := []string{"[4 4]=8:bytes", "[3 7]=10:bytes", "[12]=12:bytes"}
		if !slices.Equal(got, want) {
			t.Errorf("batches %v, want %v", got, want)
		}
	})
}

func TestDrainFlushesPartialBatchesAndAcknowledgesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log batchLog
		obs := &pipelinetest.Observer{}
		prod := pipelinetest.NewProducer[int]()
		release := make(chan struct{})
		p := mustNew(t, pipeline.Options[int]{
			Producer: prod,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(ctx context.Context, m *pipeline.Message[int]) error {
				if m.Data == 9 {
					<-release // in a processor when the drain starts
				}
				return nil
			})}},
			Batchers:       map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 100, BatchTimeout: time.Hour, Handler: log.handler(nil)}},
			DefaultBatcher: "b",
			Observer:       obs,
		})
		run := pipelinetest.Start(t, p)
		d := prod.Push(seq(10)...)
		synctest.Wait()
		p.Stop()
		synctest.Wait()
		if len(log.get()) != 0 {
			t.Fatalf("a batch was handled while a processor still had messages")
		}
		close(release)
		if err := run.Wait(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		res := d.Result()
		if len(res.Successful) != 10 || res.Pending != 0 {
			t.Errorf("after the drain: %d successful, %d pending, want all 10 acknowledged", len(res.Successful), res.Pending)
		}
		if got, want := triggers(log.get()), []string{":10:flush"}; !slices.Equal(got, want) {
			t.Errorf("batches %v, want the partial batch flushed: %v", got, want)
		}
		if c := obs.Snapshot(); c.Triggers[pipeline.TriggerFlush] != 1 || c.Drain[len(c.Drain)-1] != pipeline.DrainDone {
			t.Errorf("observer: %+v", c)
		}
	})
}

func TestShutdownTimeoutNamesUnfinishedMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := pipelinetest.NewProducer[int]()
		started := make(chan struct{})
		obs := &pipelinetest.Observer{}
		p := mustNew(t, pipeline.Options[int]{
			Producer:   prod,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: nopHandler}},
			Batchers: map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 5, BatchTimeout: time.Hour,
				Handler: pipeline.BatchHandlerFunc[int](func(ctx context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
					close(started)
					<-ctx.Done() // a sink that hangs until the shutdown timeout cancels it
					return ctx.Err()
				})}},
			DefaultBatcher:  "b",
			ShutdownTimeout: 5 * time.Second,
			Observer:        obs,
		})
		run := pipelinetest.Start(t, p)
		d := prod.Push(seq(7)...) // a batch of 5 hangs; 2 wait in a partial batch
		<-started
		synctest.Wait()
		t0 := time.Now()
		p.Stop()
		err := run.Wait()
		if el := time.Since(t0); el != 5*time.Second {
			t.Errorf("Run returned %v after Stop, want the shutdown timeout, 5s", el)
		}
		var te *pipeline.ShutdownTimeoutError
		if !errors.As(err, &te) || te.Unfinished != 7 || te.Timeout != 5*time.Second {
			t.Fatalf("Run: %v, want a ShutdownTimeoutError with 7 unfinished", err)
		}
		if !strings.Contains(err.Error(), "7 messages unfinished") {
			t.Errorf("error text %q does not say how many messages were unfinished", err)
		}
		if res := d.Result(); res.Pending != 7 {
			t.Errorf("%d messages acknowledged after the timeout (%+v); unfinished ones must not be", 7-res.Pending, res)
		}
		c := obs.Snapshot()
		if !slices.Contains(c.Drain, pipeline.DrainTimedOut) {
			t.Errorf("drain steps %v lack %v", c.Drain, pipeline.DrainTimedOut)
		}
	})
}

func TestPartialBatchFailure(t *testing.T) {
	var log batchLog
	prod := pipelinetest.NewProducer[int]()
	var hookSaw []int
	p := mustNew(t, pipeline.Options[int]{
		Producer:   prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: nopHandler}},
		Batchers: map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 10, Handler: log.handler(func(m *pipeline.Message[int]) error {
			if m.Data%3 == 0 {
				return pipeline.Permanent(fmt.Errorf("bad %d", m.Data))
			}
			return nil
		})}},
		DefaultBatcher: "b",
		Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
			for _, m := range msgs {
				hookSaw = append(hookSaw, m.Data) // one batch processor: no lock needed
			}
			return nil
		})},
	})
	run := pipelinetest.Start(t, p)
	res := wait(t, prod.Push(seq(10)...))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Successful, []int{1, 2, 4, 5, 7, 8}) {
		t.Errorf("successful %v", res.Successful)
	}
	var failed []string
	for _, f := range res.Failed {
		failed = append(failed, f.Err.Error())
		if f.Halt {
			t.Errorf("failure of %d reported with Halt", f.Data)
		}
	}
	if !slices.Equal(failed, []string{"bad 0", "bad 3", "bad 6", "bad 9"}) {
		t.Errorf("failed %v", failed)
	}
	if !slices.Equal(hookSaw, []int{0, 3, 6, 9}) {
		t.Errorf("failure handler saw %v", hookSaw)
	}
}

func TestBatchHandlerErrorFailsTheRestOfTheBatch(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	boom := errors.New("insert failed")
	p := mustNew(t, pipeline.Options[int]{
		Producer:   prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: nopHandler}},
		Batchers: map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 4, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
			b[0].Fail(errors.New("first is bad"))
			return boom
		})}},
		DefaultBatcher: "b",
		Failure:        pipeline.FailureOptions[int]{Policy: pipeline.FailWithoutRetry},
	})
	run := pipelinetest.Start(t, p)
	res := wait(t, prod.Push(0, 1, 2, 3))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(res.Failed) != 4 || res.Failed[0].Err.Error() != "first is bad" || !errors.Is(res.Failed[3].Err, boom) {
		t.Errorf("failures %+v: want the explicit one kept and the others failed with the handler's error", res.Failed)
	}
}
