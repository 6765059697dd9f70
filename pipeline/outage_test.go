package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

// sliceSource produces the messages 0..n-1, each acknowledged to a with ack.Ref{N: its
// value}, then ends the input.
type sliceSource struct {
	n, next int
	a       ack.Acknowledger
}

func (s *sliceSource) Produce(_ context.Context, msgs []pipeline.Message[int]) (int, error) {
	k := 0
	for ; k < len(msgs) && s.next < s.n; k++ {
		msgs[k] = pipeline.NewMessage(s.next, s.a, ack.Ref{N: uint64(s.next)})
		s.next++
	}
	if s.next == s.n {
		return k, pipeline.ErrEndOfInput
	}
	return k, nil
}

// retryLog is an observer that keeps every retry event.
type retryLog struct {
	pipeline.NopObserver
	mu     sync.Mutex
	events []pipeline.RetryEvent
}

func (o *retryLog) Retried(e pipeline.RetryEvent) {
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
}

func (o *retryLog) get() []pipeline.RetryEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events)
}

var errSinkDown = errors.New("sink: connection refused")

// quietLogger drops the warnings of retries in tests that retry on purpose.
var quietLogger = slog.New(slog.DiscardHandler)

// With default options, a sink that is down for 5 s (its batch handler fails with a plain
// error) and a lookup service down for 2 s (a processor's handler fails likewise): no message
// reaches the failure handler or is acknowledged before it is written, retries back off
// exponentially, and every message is written once both are back. A message the sink rejects
// as bad data (a Permanent error) in the same run goes to the failure handler and is
// acknowledged as failed.
func TestSinkOutageLosesNothingByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 50
		const rejected = 13
		start := time.Now()
		sinkUp := start.Add(5 * time.Second)
		serviceUp := start.Add(2 * time.Second)

		var mu sync.Mutex
		written := map[int]int{} // message → times written
		acked := map[int]error{} // message → its acknowledgement's error (nil: successful)
		var ackedUnwritten []int
		attempts := map[int][]time.Duration{} // batch (by its smallest message) → when it was attempted
		var hookSaw []int
		acker := ack.AcknowledgerFunc(func(s []ack.Ref, f []ack.Failure) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range s {
				if written[int(r.N)] == 0 {
					ackedUnwritten = append(ackedUnwritten, int(r.N))
				}
				acked[int(r.N)] = nil
			}
			for _, x := range f {
				acked[int(x.Ref.N)] = x.Err
			}
		})
		obs := &retryLog{}
		p := mustNew(t, pipeline.Options[int]{
			Producer: &sliceSource{n: n, a: acker},
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, MaxDemand: 10, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				if m.Data == 47 && time.Now().Before(serviceUp) {
					return errors.New("lookup service unavailable")
				}
				return nil
			})}},
			Batchers: map[string]pipeline.BatcherOptions[int]{"db": {BatchSize: 10, Concurrency: 2, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
				mu.Lock()
				defer mu.Unlock()
				least := b[0].Data
				for i := range b {
					least = min(least, b[i].Data)
				}
				attempts[least] = append(attempts[least], time.Since(start))
				if time.Now().Before(sinkUp) {
					return errSinkDown
				}
				for i := range b {
					if b[i].Data == rejected {
						b[i].Fail(pipeline.Permanent(errors.New("row rejected")))
						continue
					}
					written[b[i].Data]++
				}
				return nil
			})}},
			DefaultBatcher: "db",
			Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
				mu.Lock()
				defer mu.Unlock()
				for i := range msgs {
					hookSaw = append(hookSaw, msgs[i].Data)
				}
				return nil
			})},
			Observer: obs,
			Logger:   quietLogger,
		})
		run := pipelinetest.Start(t, p)

		time.Sleep(4 * time.Second) // in the middle of the outage
		synctest.Wait()
		mu.Lock()
		if len(acked) != 0 || len(hookSaw) != 0 {
			t.Errorf("during the outage: acknowledged %v, failure handler saw %v; want nothing", acked, hookSaw)
		}
		mu.Unlock()

		if err := run.Wait(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(ackedUnwritten) > 0 {
			t.Errorf("messages %v acknowledged as successful before they were written", ackedUnwritten)
		}
		for i := range n {
			switch err, ok := acked[i]; {
			case !ok:
				t.Errorf("message %d never acknowledged", i)
			case i == rejected:
				if err == nil || !pipeline.IsPermanent(err) {
					t.Errorf("message %d acknowledged with %v, want its permanent error", i, err)
				}
			case err != nil:
				t.Errorf("message %d acknowledged as failed: %v", i, err)
			case written[i] != 1:
				t.Errorf("message %d written %d times", i, written[i])
			}
		}
		if !slices.Equal(hookSaw, []int{rejected}) {
			t.Errorf("failure handler saw %v, want only the bad data, [%d]", hookSaw, rejected)
		}
		// Attempts at a batch attempted at once (which batches those are depends on which
		// chunks reach the batcher first): backoff 100 ms, doubling, until the sink is back at
		// 5 s.
		want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond,
			1500 * time.Millisecond, 3100 * time.Millisecond, 6300 * time.Millisecond}
		var firstBatchAttempts []time.Duration
		for _, at := range attempts {
			if at[0] == 0 {
				firstBatchAttempts = at
				break
			}
		}
		if !slices.Equal(firstBatchAttempts, want) {
			t.Errorf("first batch attempted at %v, want %v (all batches: %v)", firstBatchAttempts, want, attempts)
		}
		var sinkRetries, serviceRetries int
		for _, e := range obs.get() {
			switch {
			case e.Stage == "db" && errors.Is(e.Err, errSinkDown):
				sinkRetries++
			case e.Stage == "default" && e.Err != nil && e.Err.Error() == "lookup service unavailable":
				serviceRetries++
			default:
				t.Errorf("unexpected retry event %+v", e)
			}
		}
		if sinkRetries < 6 || serviceRetries == 0 {
			t.Errorf("observer saw %d sink retries and %d service retries", sinkRetries, serviceRetries)
		}
	})
}

// While the sink is down, the messages in flight hold their credits: the producer is asked
// for no more than MaxInFlight, and not at all once everything in flight waits on the sink.
func TestInFlightBoundHoldsDuringOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxInFlight = 100
		src := &endless{}
		var up atomic.Bool
		var acked atomic.Int64
		obs := &pipelinetest.Observer{}
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
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 2, MaxDemand: 10, Handler: nopHandler}},
			Batchers: map[string]pipeline.BatcherOptions[int]{"db": {BatchSize: 10, Concurrency: 2, Handler: pipeline.BatchHandlerFunc[int](func(context.Context, []pipeline.Message[int], pipeline.BatchInfo) error {
				if !up.Load() {
					return errSinkDown
				}
				return nil
			})}},
			DefaultBatcher: "db",
			MaxInFlight:    maxInFlight,
			Observer:       obs,
			Logger:         quietLogger,
		})
		run := pipelinetest.Start(t, p)
		synctest.Wait()
		produced, calls := src.produced.Load(), src.calls.Load()
		time.Sleep(time.Minute) // a minute of outage: retries go on, reads do not
		synctest.Wait()
		if src.produced.Load() != produced || src.calls.Load() != calls {
			t.Errorf("the producer was asked for more during the outage: %d → %d messages, %d → %d calls",
				produced, src.produced.Load(), calls, src.calls.Load())
		}
		if produced > maxInFlight || acked.Load() != 0 {
			t.Errorf("during the outage: %d produced (bound %d), %d acknowledged", produced, maxInFlight, acked.Load())
		}
		c := obs.Snapshot()
		if c.MaxInFlight > maxInFlight || c.Retried == 0 {
			t.Errorf("observer: in flight up to %d (bound %d), %d retried", c.MaxInFlight, maxInFlight, c.Retried)
		}
		up.Store(true)
		p.Stop()
		if err := run.Wait(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := src.produced.Load(); acked.Load() != got {
			t.Errorf("after the sink came back and the drain: %d acknowledged of %d produced", acked.Load(), got)
		}
	})
}

// A drain during an outage goes on retrying until the shutdown timeout, then returns at once,
// even in the middle of a backoff wait, acknowledging nothing that was not written, and says
// what was left.
func TestDrainDuringOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prod := pipelinetest.NewProducer[int]()
		var attempts atomic.Int64
		p := mustNew(t, pipeline.Options[int]{
			Producer:   prod,
			Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: nopHandler}},
			Batchers: map[string]pipeline.BatcherOptions[int]{"db": {BatchSize: 10, Concurrency: 2, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
				if b[0].Data >= 10 { // the sink went down after the first batch
					attempts.Add(1)
					return errSinkDown
				}
				return nil
			})}},
			DefaultBatcher:  "db",
			ShutdownTimeout: 3 * time.Second,
			Failure:         pipeline.FailureOptions[int]{RetryBackoff: 10 * time.Second},
			Logger:          quietLogger,
		})
		run := pipelinetest.Start(t, p)
		d := prod.Push(seq(30)...)
		synctest.Wait() // both failing batches wait 10 s before their retry
		t0 := time.Now()
		p.Stop()
		err := run.Wait()
		if el := time.Since(t0); el != 3*time.Second {
			t.Errorf("Run returned %v after Stop, want the shutdown timeout, 3s, without waiting out the backoff", el)
		}
		var te *pipeline.ShutdownTimeoutError
		if !errors.As(err, &te) || te.Unfinished != 20 || te.Retrying != 20 || !errors.Is(err, errSinkDown) {
			t.Fatalf("Run: %v, want a ShutdownTimeoutError with 20 unfinished, 20 retrying, the sink's error", err)
		}
		if !strings.Contains(err.Error(), "20 of them failing") || !strings.Contains(err.Error(), errSinkDown.Error()) {
			t.Errorf("error text %q does not say what was left and why", err)
		}
		res := d.Result()
		if !slices.Equal(res.Successful, seq(10)) || len(res.Failed) != 0 || res.Pending != 20 {
			t.Errorf("after the drain: %d successful, %+v failed, %d pending; want 0..9 written and acknowledged, 20 unacknowledged",
				len(res.Successful), res.Failed, res.Pending)
		}
		if a := attempts.Load(); a != 2 {
			t.Errorf("%d attempts at the failing batches, want 2 (the drain ended during the first backoff)", a)
		}
	})
}

// The same outage under the policies kept for users who want them: FailWithoutRetry fails
// the messages at once, RetryThenFail after MaxRetries, both into the failure handler, which
// tells the failures from bad data with IsPermanent. Neither retries bad data.
func TestPoliciesThatGiveUp(t *testing.T) {
	for _, tc := range []struct {
		policy   pipeline.FailurePolicy
		retries  int
		attempts int64 // at the failing batch
	}{
		{pipeline.FailWithoutRetry, 0, 1},
		{pipeline.RetryThenFail, 2, 3},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				prod := pipelinetest.NewProducer[int]()
				var attempts atomic.Int64
				var mu sync.Mutex
				permanent := map[int]bool{}
				f := pipeline.FailureOptions[int]{Policy: tc.policy, MaxRetries: tc.retries,
					Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
						mu.Lock()
						defer mu.Unlock()
						for i := range msgs {
							permanent[msgs[i].Data] = pipeline.IsPermanent(msgs[i].Err())
						}
						return nil
					})}
				if tc.policy == pipeline.RetryThenFail { // backoff is rejected without retries
					f.RetryBackoff = time.Second
				}
				p := mustNew(t, pipeline.Options[int]{
					Producer: prod,
					Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
						if m.Data == 1 {
							return pipeline.Permanent(errors.New("bad"))
						}
						return nil
					})}},
					Batchers: map[string]pipeline.BatcherOptions[int]{"db": {BatchSize: 2, Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
						attempts.Add(1)
						return errSinkDown
					})}},
					DefaultBatcher: "db",
					Failure:        f,
					Logger:         quietLogger,
				})
				run := pipelinetest.Start(t, p)
				res := wait(t, prod.Push(0, 1, 2))
				prod.Close()
				if err := run.Wait(); err != nil {
					t.Fatal(err)
				}
				if len(res.Failed) != 3 || len(res.Successful) != 0 {
					t.Errorf("result %+v, want all three failed", res)
				}
				if attempts.Load() != tc.attempts {
					t.Errorf("%d attempts at the failing batch, want %d", attempts.Load(), tc.attempts)
				}
				mu.Lock()
				defer mu.Unlock()
				if want := map[int]bool{0: false, 1: true, 2: false}; len(permanent) != 3 || permanent[0] || !permanent[1] || permanent[2] {
					t.Errorf("failure handler: IsPermanent per message %v, want %v", permanent, want)
				}
			})
		})
	}
}

// Under the default policy the failure handler receives only bad data, each failure
// IsPermanent: a Permanent error, a panic, a message its producer failed (undecodable), and
// a message routed to an unknown batcher; the original errors stay matchable.
func TestFailureHandlerSeesOnlyBadDataByDefault(t *testing.T) {
	prod := pipelinetest.NewProducer[int]()
	undecodable := errors.New("undecodable")
	var mu sync.Mutex
	var hookErrs []error
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
			switch m.Data {
			case 1:
				return pipeline.Permanent(errors.New("negative amount"))
			case 2:
				panic("bug")
			case 3:
				m.SetBatcher("nowhere")
			}
			return nil
		})}},
		Batchers:       map[string]pipeline.BatcherOptions[int]{"db": {BatchSize: 1, Handler: nopBatch}},
		DefaultBatcher: "db",
		Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
			mu.Lock()
			defer mu.Unlock()
			for i := range msgs {
				hookErrs = append(hookErrs, msgs[i].Err())
			}
			return nil
		})},
	})
	var bad pipeline.Message[int]
	bad.Data = 4
	bad.Fail(undecodable)
	run := pipelinetest.Start(t, p)
	res := wait(t, prod.PushMessages(pipeline.Message[int]{Data: 0}, pipeline.Message[int]{Data: 1},
		pipeline.Message[int]{Data: 2}, pipeline.Message[int]{Data: 3}, bad))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(res.Successful) != 1 || len(res.Failed) != 4 {
		t.Fatalf("result %+v, want 0 successful and the 4 others failed", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hookErrs) != 4 {
		t.Fatalf("failure handler saw %v", hookErrs)
	}
	var pe *pipeline.PanicError
	for _, err := range hookErrs {
		if !pipeline.IsPermanent(err) {
			t.Errorf("failure handler got %v, which is not permanent", err)
		}
	}
	for _, f := range res.Failed {
		switch f.Data {
		case 1:
			if f.Err.Error() != "negative amount" {
				t.Errorf("message 1: %v", f.Err)
			}
		case 2:
			if !errors.As(f.Err, &pe) {
				t.Errorf("message 2: %v, want a PanicError", f.Err)
			}
		case 3:
			if !errors.Is(f.Err, pipeline.ErrUnknownBatcher) {
				t.Errorf("message 3: %v, want ErrUnknownBatcher", f.Err)
			}
		case 4:
			if !errors.Is(f.Err, undecodable) || f.Err.Error() != "undecodable" {
				t.Errorf("message 4: %v, want the producer's error, still matchable", f.Err)
			}
		}
	}
}
