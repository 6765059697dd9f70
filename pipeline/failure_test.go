package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

func TestPanicsFailTheMessageWithValueAndStack(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			if m.Data == 1 {
				panicInProcessor()
			}
			return nil
		})}},
		Batchers: map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 1, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
			if b[0].Data == 2 {
				panic(errSink)
			}
			return nil
		})}},
		DefaultBatcher: "b",
	})
	run := pipelinetest.Start(t, p)
	res := wait(t, prod.Push(0, 1, 2, 3))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatalf("Run: %v (panics must fail messages, not the pipeline)", err)
	}
	if len(res.Successful) != 2 || len(res.Failed) != 2 {
		t.Fatalf("%+v, want 0 and 3 successful, 1 and 2 failed", res)
	}
	var pe *pipeline.PanicError
	if f := res.Failed[0]; f.Data != 1 || !errors.As(f.Err, &pe) {
		t.Fatalf("failure %+v, want message 1 with a PanicError", f)
	}
	if pe.Value != "processor exploded" || !strings.Contains(string(pe.Stack), "panicInProcessor") {
		t.Errorf("panic value %v, stack:\n%s\nwant the value and a stack through panicInProcessor", pe.Value, pe.Stack)
	}
	if !strings.Contains(pe.Error(), "processor exploded") || !strings.Contains(pe.Error(), "panicInProcessor") {
		t.Errorf("PanicError text lacks the value or the stack: %s", pe.Error())
	}
	if f := res.Failed[1]; f.Data != 2 || !errors.Is(f.Err, errSink) || !errors.As(f.Err, &pe) {
		t.Errorf("failure %+v, want message 2 failed by the batch handler's panic, matching the panicked error", f)
	}
}

var errSink = errors.New("sink exploded")

func panicInProcessor() { panic("processor exploded") }

func TestFailureHandlerRunsBeforeTheAcknowledgement(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	var d *pipelinetest.Delivery[int]
	var pendingInHook atomic.Int64
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			return pipeline.Permanent(errors.New("no"))
		})}},
		Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
			for _, m := range msgs {
				if m.Err() == nil || m.Err().Error() != "no" {
					t.Errorf("failure handler got message %d with error %v", m.Data, m.Err())
				}
			}
			pendingInHook.Store(int64(d.Result().Pending))
			return nil
		})},
	})
	d = prod.Push(7)
	run := pipelinetest.Start(t, p)
	res := wait(t, d)
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if pendingInHook.Load() != 1 {
		t.Errorf("the message was acknowledged before the failure handler ran")
	}
	if len(res.Failed) != 1 || res.Failed[0].Halt {
		t.Errorf("%+v, want one failure without Halt", res)
	}
}

func TestFailureHandlerErrorHalts(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	dlq := errors.New("dead-letter append failed")
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			if m.Data == 5 {
				return pipeline.Permanent(errors.New("bad five"))
			}
			return nil
		})}},
		Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(context.Context, []pipeline.Message[int]) error {
			return dlq
		})},
	})
	run := pipelinetest.Start(t, p)
	res := wait(t, prod.Push(seq(10)...))
	err := run.Wait()
	var he *pipeline.HaltError
	if !errors.As(err, &he) {
		t.Fatalf("Run: %v, want a HaltError (a failed failure handler must not lose the message)", err)
	}
	if he.Ref.N != 5 || he.Err.Error() != "bad five" || !errors.Is(err, dlq) || he.HandlerErr != dlq {
		t.Errorf("HaltError %+v: want message 5, its error and the handler's", he)
	}
	if len(res.Failed) != 1 || !res.Failed[0].Halt {
		t.Errorf("failures %+v, want message 5 reported with Halt", res.Failed)
	}
}

func TestHaltPolicy(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	var handled atomic.Int64
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, MaxDemand: 4, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			handled.Add(1)
			if m.Data == 2 {
				return errors.New("cannot handle 2")
			}
			return nil
		})}},
		Failure: pipeline.FailureOptions[int]{Policy: pipeline.HaltOnFailure},
	})
	msgs := make([]pipeline.Message[int], 1000)
	for i := range msgs {
		msgs[i].Data = i
		msgs[i].Metadata = pipeline.Metadata{Stream: "a", Position: int64(i)}
	}
	d := prod.PushMessages(msgs...)
	run := pipelinetest.Start(t, p)
	err := run.Wait()
	var he *pipeline.HaltError
	if !errors.As(err, &he) {
		t.Fatalf("Run: %v, want a HaltError", err)
	}
	if he.Metadata.Position != 2 || he.Ref.N != 2 || he.Attempt != 1 || he.Err.Error() != "cannot handle 2" {
		t.Errorf("HaltError %+v does not name message 2", he)
	}
	if !strings.Contains(err.Error(), `position 2 of "a"`) {
		t.Errorf("error text %q does not name the message", err)
	}
	res := d.Result()
	if len(res.Failed) != 1 || !res.Failed[0].Halt || res.Failed[0].Data != 2 {
		t.Errorf("failures %+v, want message 2 with Halt", res.Failed)
	}
	if handled.Load() == 1000 {
		t.Errorf("the pipeline handled every message: it did not stop asking the producer")
	}
	if res.Duplicates != 0 {
		t.Errorf("duplicates")
	}
}

func TestRetryPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := pipelinetest.NewProducer[int]()
		var mu sync.Mutex
		attempts := map[int][]int{}
		var attemptTimes []time.Duration
		start := time.Now()
		obs := &pipelinetest.Observer{}
		p := mustNew(t, pipeline.Options[int]{
			Producer: prod,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				mu.Lock()
				defer mu.Unlock()
				attempts[m.Data] = append(attempts[m.Data], m.Attempt())
				if m.Data == 1 {
					attemptTimes = append(attemptTimes, time.Since(start))
				}
				original := m.Data
				m.Data = -1 // a retry must start from the message as it was, not from this
				switch {
				case original == 1: // never succeeds
					return errors.New("always")
				case original == 2 && m.Attempt() < 3: // succeeds on its third attempt
					return errors.New("not yet")
				}
				m.Data = original * 10
				return nil
			})}},
			Batchers: map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 10, BatchTimeout: time.Hour, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], info pipeline.BatchInfo) error {
				for i := range b {
					if b[i].Data == 30 && b[i].Attempt() == 1 {
						b[i].Fail(errors.New("batch: once"))
					}
				}
				return nil
			})}},
			DefaultBatcher: "b",
			Failure:        pipeline.FailureOptions[int]{Policy: pipeline.RetryThenFail, MaxRetries: 3, RetryBackoff: time.Second, MaxRetryBackoff: 3 * time.Second},
			Observer:       obs,
		})
		run := pipelinetest.Start(t, p)
		d := prod.Push(0, 1, 2, 3)
		prod.Close()
		if err := run.Wait(); err != nil {
			t.Fatal(err)
		}
		res := d.Result()
		if len(res.Failed) != 1 || res.Failed[0].Data != 1 || res.Failed[0].Err.Error() != "always" {
			t.Errorf("failed %+v, want only message 1", res.Failed)
		}
		if len(res.Successful) != 3 {
			t.Errorf("successful %v, want 0, 2, 3", res.Successful)
		}
		if got := attempts[1]; len(got) != 4 || got[3] != 4 {
			t.Errorf("message 1 attempts %v, want 1..4 (MaxRetries 3)", got)
		}
		if got := attempts[2]; len(got) != 3 {
			t.Errorf("message 2 attempts %v, want 3", got)
		}
		// backoff 1s, 2s, then capped at 3s
		if want := []time.Duration{0, time.Second, 3 * time.Second, 6 * time.Second}; len(attemptTimes) != 4 || attemptTimes[1] != want[1] || attemptTimes[2] != want[2] || attemptTimes[3] != want[3] {
			t.Errorf("message 1 attempted at %v, want %v", attemptTimes, want)
		}
		c := obs.Snapshot()
		if c.Retried != 3+2+1 { // message 1 thrice, message 2 twice, message 3 once in the batch
			t.Errorf("observer counted %d retries, want 6", c.Retried)
		}
	})
}

func TestRetryFromTheProducersFailureIsNotAttempted(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	var calls atomic.Int64
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(context.Context, *pipeline.Message[int]) error {
			calls.Add(1)
			return nil
		})}},
		Failure: pipeline.FailureOptions[int]{Policy: pipeline.RetryThenFail, RetryBackoff: time.Millisecond},
	})
	var bad pipeline.Message[int]
	bad.Fail(errors.New("undecodable"))
	d := prod.PushMessages(bad, pipeline.Message[int]{Data: 1})
	prod.Close()
	run := pipelinetest.Start(t, p)
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	res := d.Result()
	if len(res.Failed) != 1 || res.Failed[0].Err.Error() != "undecodable" || calls.Load() != 1 {
		t.Errorf("result %+v after %d handler calls: want the producer's failure acknowledged, unhandled", res, calls.Load())
	}
}

func TestMessageFailFirstWins(t *testing.T) {
	var m pipeline.Message[int]
	if m.Failed() || m.Err() != nil {
		t.Fatal("zero message failed")
	}
	first := errors.New("first")
	m.Fail(first)
	m.Fail(errors.New("second"))
	if m.Err() != first || !m.Failed() {
		t.Errorf("Err() = %v, want the first failure", m.Err())
	}
	var n pipeline.Message[int]
	n.Fail(nil)
	if !errors.Is(n.Err(), pipeline.ErrFailed) {
		t.Errorf("Fail(nil): %v, want ErrFailed", n.Err())
	}
}
