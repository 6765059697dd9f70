package producertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// suite is one run of the contract against one kind of producer.
type suite[T any] struct {
	f          Features
	lim        limits
	newFixture func(t testing.TB, a ack.Acknowledger) Fixture[T]
}

func run[T any](t tester, f Features, newFixture func(t testing.TB, a ack.Acknowledger) Fixture[T], lim limits) {
	t.Helper()
	s := &suite[T]{f: f, lim: lim, newFixture: newFixture}
	t.run("Features", s.testFeatures)
	t.run("DemandHonoured", s.testDemand)
	t.run("ReturnsWhatItHas", s.testReturnsWhatItHas)
	if f.Endless {
		t.run("WaitsWhenIdle", s.testWaitsWhenIdle)
	} else {
		t.run("EndOfInput", s.testEndOfInput)
	}
	t.run("Cancel", s.testCancel)
	if f.DrainNotifier {
		t.run("PrepareForDraining", s.testPrepareForDraining)
	}
	if f.Concurrent {
		t.run("ConcurrentProduce", s.testConcurrent)
	}
	if f.Decoder {
		t.run("Decoder", s.testDecoder)
	}
	t.run("Acknowledgements", s.testAcknowledgements)
	t.run("Drain", s.testDrain)
	if f.Closer {
		t.run("CloseUnused", s.testCloseUnused)
	}
}

// testFeatures checks that the producer implements the optional interfaces Features claims,
// and only those.
func (s *suite[T]) testFeatures(t tester) {
	e := s.setup(t)
	p := e.fx.Producer
	_, drain := p.(pipeline.DrainNotifier)
	_, closer := p.(pipeline.Closer)
	_, decoder := p.(pipeline.Decoder[T])
	for _, c := range []struct {
		name          string
		claimed, impl bool
	}{
		{"DrainNotifier", s.f.DrainNotifier, drain},
		{"Closer", s.f.Closer, closer},
		{"Decoder", s.f.Decoder, decoder},
	} {
		switch {
		case c.claimed && !c.impl:
			t.Errorf("Features.%s is set, but %T does not implement pipeline.%s", c.name, p, c.name)
		case !c.claimed && c.impl:
			t.Errorf("%T implements pipeline.%s, but Features.%s is not set: claim it, so that the suite tests it", p, c.name, c.name)
		}
	}
	if s.f.Acks < AcksGiven || s.f.Acks > AcksNone {
		t.Errorf("unknown Features.Acks %v", s.f.Acks)
	}
}

// takeAll takes the whole input with Produce calls of the given demands, in turn: until
// ErrEndOfInput for a finite producer (failing t after more calls than the input could
// need), until every input message has arrived for an endless one. It acknowledges every
// message, and returns what arrived. Each call must return within
// the step timeout: a producer with something to give does not wait to fill msgs.
func (e *env[T]) takeAll(ctx context.Context, demands []int) *tally[T] {
	e.t.Helper()
	c := e.newTally()
	n := len(e.fx.Input)
	for calls := 0; ; calls++ {
		if e.f.Endless && c.received() >= n {
			return c
		}
		if calls > 4*n+8 {
			e.t.Fatalf("%d Produce calls took %d messages of %d and no end of input", calls, c.received(), n)
		}
		msgs, err := e.produce(ctx, demands[calls%len(demands)], e.lim.step, false)
		c.add(msgs)
		ackAll(msgs)
		switch {
		case err == nil:
		case errors.Is(err, pipeline.ErrEndOfInput):
			if e.f.Endless {
				e.t.Fatalf("Features.Endless, but Produce returned %v after %d messages", err, c.received())
			}
			if got := c.received(); got < n {
				e.t.Errorf("Produce returned %v after %d messages of %d", err, got, n)
			}
			return c
		default:
			e.t.Fatalf("Produce failed after %d messages: %v", c.received(), err)
		}
	}
}

// testDemand takes the input with small, varying demands: every call returns between 1 and
// its demand messages (or none and an error), writes nothing past them, and every input
// message arrives once, in order where Features.Ordered promises it.
func (s *suite[T]) testDemand(t tester) {
	e := s.setup(t)
	c := e.takeAll(t.Context(), []int{1, 2, 3, 5, 1, 8, 2})
	c.check(true, true)
}

// testReturnsWhatItHas takes the input with calls that ask for more than the whole input:
// each returns what the producer has rather than wait to fill msgs (an endless producer
// that waited would never return).
func (s *suite[T]) testReturnsWhatItHas(t tester) {
	e := s.setup(t)
	c := e.takeAll(t.Context(), []int{2*len(e.fx.Input) + 1})
	c.check(true, true)
}

// testEndOfInput takes a finite input one message at a time: ErrEndOfInput comes after the
// last message (not before), and every later call returns it again, with no message.
func (s *suite[T]) testEndOfInput(t tester) {
	e := s.setup(t)
	c := e.takeAll(t.Context(), []int{1})
	c.check(true, true)
	for i := range 3 {
		msgs, err := e.produce(t.Context(), 4, e.lim.step, false)
		if len(msgs) != 0 || !errors.Is(err, pipeline.ErrEndOfInput) {
			t.Errorf("Produce call %d after the end of input returned (%d messages, %v), want (0, ErrEndOfInput)", i+1, len(msgs), err)
		}
	}
}

// waiting is a Produce call the suite watches while the producer has nothing to give.
type waiting[T any] struct {
	e      *env[T]
	cancel context.CancelCauseFunc
	done   <-chan call[T]
}

// wait takes the whole input of an endless producer, then starts a Produce call and watches
// it for the idle window: it must not return, and Fixture.Activity must grow by at most
// the idle bound. The caller ends the call.
func (e *env[T]) wait() *waiting[T] {
	e.t.Helper()
	e.takeAll(e.t.Context(), []int{3})
	var a0 int64
	if e.fx.Activity != nil {
		a0 = e.fx.Activity()
	}
	ctx, cancel := context.WithCancelCause(e.t.Context())
	w := &waiting[T]{e: e, cancel: cancel, done: e.start(ctx, 4)}
	e.t.Cleanup(func() { cancel(nil) })
	select {
	case c := <-w.done:
		e.t.Fatalf("with nothing to give, Produce returned (%d messages, %v) instead of waiting", c.n, c.err)
	case <-time.After(e.lim.idle):
	}
	if e.fx.Activity != nil {
		if d := e.fx.Activity() - a0; d > e.lim.idleActivity {
			e.t.Errorf("while Produce waited %v with nothing to give, Activity grew by %d (at most %d): it spins", e.lim.idle, d, e.lim.idleActivity)
		}
	}
	return w
}

// returned waits for the watched call to return, within d, and checks it returned no
// message and an error satisfying ok.
func (w *waiting[T]) returned(d time.Duration, after string, ok func(error) bool, want string) {
	w.e.t.Helper()
	select {
	case c := <-w.done:
		msgs := w.e.checkCall(c, false)
		if len(msgs) != 0 || !ok(c.err) {
			w.e.t.Errorf("%s, the waiting Produce returned (%d messages, %v), want (0, %s)", after, len(msgs), c.err, want)
		}
	case <-time.After(d):
		w.e.t.Fatalf("%s, the waiting Produce did not return within %v", after, d)
	}
}

// testWaitsWhenIdle: with nothing to give, an endless producer's Produce blocks (it neither
// returns nor spins) until its context ends.
func (s *suite[T]) testWaitsWhenIdle(t tester) {
	e := s.setup(t)
	w := e.wait()
	w.cancel(pipeline.ErrDraining)
	w.returned(s.lim.cancel, "after its context was cancelled", isCanceled, "context.Canceled")
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

// testCancel: a Produce whose context is cancelled returns promptly, with the context's
// error if it returns no message. An endless producer's call is cancelled while it waits;
// a finite producer, which never waits, is called in the middle of its input with a context
// already cancelled (it may still return messages).
func (s *suite[T]) testCancel(t tester) {
	e := s.setup(t)
	if s.f.Endless {
		w := e.wait()
		w.cancel(pipeline.ErrDraining)
		w.returned(s.lim.cancel, "after its context was cancelled", isCanceled, "context.Canceled")
		return
	}
	for range len(e.fx.Input) / 2 {
		msgs, err := e.produce(t.Context(), 1, s.lim.step, false)
		ackAll(msgs)
		if err != nil {
			t.Fatalf("Produce failed in the middle of the input: %v", err)
		}
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(pipeline.ErrDraining)
	msgs, err := e.produce(ctx, 4, s.lim.cancel, false)
	ackAll(msgs)
	if len(msgs) == 0 && !errors.Is(err, context.Canceled) {
		t.Errorf("Produce with a cancelled context returned (0 messages, %v), want context.Canceled", err)
	}
}

// testPrepareForDraining calls PrepareForDraining as a pipeline that starts draining does,
// possibly while a Produce call runs: it must not block, and the Produce call, its context
// cancelled at the same moment, returns promptly with the context's error (an endless
// producer's call waits with nothing to give when PrepareForDraining comes; a finite
// producer's is called after it, in the middle of the input).
func (s *suite[T]) testPrepareForDraining(t tester) {
	e := s.setup(t)
	d, ok := e.fx.Producer.(pipeline.DrainNotifier)
	if !ok {
		t.Fatalf("Features.DrainNotifier is set, but %T does not implement pipeline.DrainNotifier", e.fx.Producer)
	}
	var w *waiting[T]
	if s.f.Endless {
		w = e.wait()
	} else {
		for range len(e.fx.Input) / 2 {
			msgs, err := e.produce(t.Context(), 1, s.lim.step, false)
			ackAll(msgs)
			if err != nil {
				t.Fatalf("Produce failed in the middle of the input: %v", err)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		d.PrepareForDraining()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.lim.cancel):
		t.Fatalf("PrepareForDraining did not return within %v: it must not block", s.lim.cancel)
	}
	if w != nil {
		w.cancel(pipeline.ErrDraining)
		w.returned(s.lim.cancel, "after PrepareForDraining and its context's cancellation", isCanceled, "context.Canceled")
		return
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(pipeline.ErrDraining)
	msgs, err := e.produce(ctx, 4, s.lim.cancel, false)
	ackAll(msgs)
	if len(msgs) == 0 && !isCanceled(err) {
		t.Errorf("Produce after PrepareForDraining, its context cancelled, returned (0 messages, %v), want context.Canceled", err)
	}
}

// testConcurrent takes the input with four goroutines calling Produce at once: every input
// message arrives exactly once.
func (s *suite[T]) testConcurrent(t tester) {
	e := s.setup(t)
	c := e.newTally()
	n := len(e.fx.Input)
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for calls := 0; ctx.Err() == nil; calls++ {
				if calls > 4*n+8 {
					errs <- fmt.Errorf("goroutine %d: %d calls and no end of input", g, calls)
					return
				}
				var res call[T]
				select {
				case res = <-e.start(ctx, 1+g):
				case <-time.After(s.lim.step):
					errs <- fmt.Errorf("goroutine %d: Produce did not return within %v", g, s.lim.step)
					return
				}
				if res.n < 0 || res.n > len(res.msgs) || (res.n == 0 && res.err == nil) {
					errs <- fmt.Errorf("goroutine %d: Produce returned (%d, %v) for a demand of %d", g, res.n, res.err, len(res.msgs))
					return
				}
				c.add(res.msgs[:res.n])
				ackAll(res.msgs[:res.n])
				if s.f.Endless && c.received() >= n {
					cancel(pipeline.ErrDraining) // the others are waiting: release them
				}
				switch {
				case res.err == nil:
				case errors.Is(res.err, pipeline.ErrEndOfInput) && !s.f.Endless:
					return
				case ctx.Err() != nil && errors.Is(res.err, context.Canceled):
					return
				default:
					errs <- fmt.Errorf("goroutine %d: Produce: %w", g, res.err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.check(true, false)
}

// testDecoder takes the input after DeferDecoding, then decodes it with DecodeMessages from
// three goroutines at once, as a pipeline's processors do: every message decodes to its
// input data.
func (s *suite[T]) testDecoder(t tester) {
	e := s.setup(t)
	d, ok := e.fx.Producer.(pipeline.Decoder[T])
	if !ok {
		t.Fatalf("Features.Decoder is set, but %T does not implement pipeline.Decoder", e.fx.Producer)
	}
	d.DeferDecoding()
	var got []pipeline.Message[T]
	n := len(e.fx.Input)
	for calls := 0; len(got) < n; calls++ {
		if calls > 4*n+8 {
			t.Fatalf("%d Produce calls took %d messages of %d", calls, len(got), n)
		}
		msgs, err := e.produce(t.Context(), 3, s.lim.step, true)
		got = append(got, msgs...)
		if err != nil && !errors.Is(err, pipeline.ErrEndOfInput) {
			t.Fatalf("Produce failed after %d messages: %v", len(got), err)
		}
		if err != nil && len(got) < n {
			t.Fatalf("Produce returned %v after %d messages of %d", err, len(got), n)
		}
	}
	var wg sync.WaitGroup
	third := (len(got) + 2) / 3
	for i := 0; i < len(got); i += third {
		part := got[i:min(i+third, len(got))]
		wg.Go(func() { d.DecodeMessages(part) })
	}
	wg.Wait()
	for i := range got {
		if got[i].Failed() {
			t.Errorf("message %d failed to decode: %v", i, got[i].Err())
		}
	}
	c := e.newTally()
	c.add(got)
	ackAll(got)
	c.check(true, true)
}

// pipelineOptions returns the options of the suite's pipelines over p: no partitioning, so
// that a Decoder's decoding is deferred to the processors.
func (e *env[T]) pipelineOptions(p pipeline.Producer[T], h pipeline.HandlerFunc[T]) pipeline.Options[T] {
	conc := 1
	if e.f.Concurrent {
		conc = 2
	}
	return pipeline.Options[T]{
		Name:                "producertest",
		Producer:            p,
		ProducerConcurrency: conc,
		Processors:          []pipeline.ProcessorOptions[T]{{Concurrency: 4, MaxDemand: 4, Handler: h}},
		ShutdownTimeout:     e.lim.step,
		Logger:              slog.New(slog.DiscardHandler),
	}
}

// runPipeline runs pl until the input ends (finite) or the tap has seen every input message
// acknowledged (endless, then it stops it), and returns Run's error.
func (e *env[T]) runPipeline(pl *pipeline.Pipeline[T], w *tap[T], stop <-chan struct{}) error {
	e.t.Helper()
	done := make(chan error, 1)
	go func() { done <- pl.Run(e.t.Context()) }()
	deadline := time.After(e.lim.step)
	if stop != nil {
		select {
		case <-stop:
			pl.Stop()
		case err := <-done:
			return err
		case <-deadline:
			pl.Stop()
			e.t.Errorf("the pipeline did not reach the point to stop it within %v (%d messages acknowledged)", e.lim.step, w.ackedCount())
		}
	}
	select {
	case err := <-done:
		return err
	case <-deadline:
		e.t.Fatalf("the pipeline's Run did not return within %v (%d messages produced, %d acknowledged)", e.lim.step, len(w.snapshot()), w.ackedCount())
		return nil
	}
}

func (w *tap[T]) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

// errBad is the handler's failure of the messages the acknowledgement subtest fails.
var errBad = errors.New("producertest: bad message")

// failing reports whether the acknowledgement subtest fails input message k (as bad data).
func failing(k int) bool { return k%5 == 2 }

// testAcknowledgements runs the whole input through a pipeline (a processor pool, a batcher,
// some messages failed as bad data, some sent to no batcher): Run returns nil (for an
// endless producer, once it is stopped after the last acknowledgement), every message is
// handled once with its input data (decoded on the processors for a Decoder), and its
// acknowledgement reaches the producer's acknowledger exactly once, failed where the
// handler failed it. The optional interfaces are called as the pipeline promises:
// DeferDecoding once before the first Produce, PrepareForDraining and Close once, and Close
// can be called again.
func (s *suite[T]) testAcknowledgements(t tester) {
	e := s.setup(t)
	n := len(e.fx.Input)
	w, p := newTap(e, n)
	handled := e.newTally()
	h := func(_ context.Context, m *pipeline.Message[T]) error {
		handled.add([]pipeline.Message[T]{*m})
		k := e.index(m.Data)
		w.saw(m.Ref().N, k)
		if k%3 == 0 {
			m.SetBatcher("") // acknowledged after the processor
		}
		if failing(k) {
			return pipeline.Permanent(errBad)
		}
		return nil
	}
	o := e.pipelineOptions(p, h)
	o.Batchers = map[string]pipeline.BatcherOptions[T]{"batch": {
		Handler: pipeline.BatchHandlerFunc[T](func(context.Context, []pipeline.Message[T], pipeline.BatchInfo) error {
			return nil
		}),
		BatchSize: 4, BatchTimeout: 5 * time.Millisecond, Concurrency: 2,
	}}
	o.DefaultBatcher = "batch"
	pl, err := pipeline.New(o)
	if err != nil {
		t.Fatalf("pipeline.New: %v", err)
	}
	var stop <-chan struct{}
	if s.f.Endless {
		stop = w.full
	}
	if err := e.runPipeline(pl, w, stop); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	handled.check(true, false)
	entries := w.snapshot()
	if len(entries) != n {
		t.Errorf("the pipeline was given %d messages, want the input's %d", len(entries), n)
	}
	wantFailed := 0
	for i, x := range entries {
		switch {
		case x.acks == 0:
			t.Errorf("message %d (%s position %d) was never acknowledged", i, quote(x.stream), x.pos)
		case x.index >= 0 && x.failed != failing(x.index):
			t.Errorf("message %d (input message %d) acknowledged with failed=%v, want %v", i, x.index, x.failed, failing(x.index))
		}
		if x.index >= 0 && failing(x.index) {
			wantFailed++
		}
	}
	e.checkPositions(entries)
	s.checkCalls(e, w)
	e.checkAcknowledged(len(entries), wantFailed)
}

// checkPositions checks, for Features.Positions, that the messages given to a pipeline
// number each of their sequences 0, 1, 2, … (as a set: concurrent Produce calls may hand
// them to the pipeline in any order).
func (e *env[T]) checkPositions(entries []entry) {
	e.t.Helper()
	if !e.f.Positions {
		return
	}
	seen := map[string]map[int64]bool{}
	for _, x := range entries {
		if seen[x.stream] == nil {
			seen[x.stream] = map[int64]bool{}
		}
		if seen[x.stream][x.pos] {
			e.t.Errorf("Features.Positions, but two messages of sequence %s have Position %d", quote(x.stream), x.pos)
		}
		seen[x.stream][x.pos] = true
	}
	for s, ps := range seen {
		for p := range int64(len(ps)) {
			if !ps[p] {
				e.t.Errorf("Features.Positions, but the %d messages of sequence %s lack Position %d", len(ps), quote(s), p)
				break
			}
		}
	}
}

// checkCalls checks the optional interfaces' calls of a pipeline run that ended, and that
// Close can be called again.
func (s *suite[T]) checkCalls(e *env[T], w *tap[T]) {
	t := e.t
	t.Helper()
	if s.f.Decoder {
		if n := w.defers.Load(); n != 1 {
			t.Errorf("the pipeline called DeferDecoding %d times, want 1", n)
		}
		if w.late.Load() {
			t.Errorf("the pipeline called DeferDecoding after a Produce")
		}
		if w.decodes.Load() == 0 {
			t.Errorf("the pipeline never called DecodeMessages")
		}
	}
	if _, ok := e.fx.Producer.(pipeline.DrainNotifier); ok {
		if n := w.drains.Load(); n != 1 {
			t.Errorf("the pipeline called PrepareForDraining %d times, want 1", n)
		}
	}
	if c, ok := e.fx.Producer.(pipeline.Closer); ok {
		if n := w.closes.Load(); n != 1 {
			t.Errorf("the pipeline called Close %d times, want 1", n)
		}
		if err := e.close(c, s.lim.cancel); err != nil {
			t.Errorf("a second Close: %v, want nil", err)
		}
	}
}

// checkAcknowledged checks what the producer's acknowledger made of a run that handed out
// produced messages, failed of them as failed: the suite's acknowledger got each (AcksGiven),
// Fixture.Acknowledged counts each.
func (e *env[T]) checkAcknowledged(produced, failed int) {
	e.t.Helper()
	if e.f.Acks == AcksGiven {
		ok, ko := e.rec.counts()
		if ok != produced-failed || ko != failed {
			e.t.Errorf("the fixture's acknowledger got %d successful and %d failed messages, want %d and %d", ok, ko, produced-failed, failed)
		}
	}
	if e.fx.Acknowledged != nil {
		if got := e.fx.Acknowledged(); got != produced {
			e.t.Errorf("after the run, Fixture.Acknowledged is %d, want the %d messages produced", got, produced)
		}
	}
}

// testDrain stops a pipeline in the middle of the input (its one processor holds the first
// message until Stop was called; MaxInFlight is below the input's length): Run drains and
// returns nil, every message handed out was handled once and acknowledged exactly once,
// positions are the first of each sequence, PrepareForDraining and Close were called once,
// and Close can be called again.
func (s *suite[T]) testDrain(t tester) {
	e := s.setup(t)
	w, p := newTap(e, -1)
	handled := e.newTally()
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, m *pipeline.Message[T]) error {
		once.Do(func() {
			close(started)
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
		handled.add([]pipeline.Message[T]{*m})
		w.saw(m.Ref().N, e.index(m.Data))
		return nil
	}
	o := e.pipelineOptions(p, h)
	o.Processors[0].Concurrency, o.Processors[0].MaxDemand = 1, 2
	o.MaxInFlight = MinInput / 2
	pl, err := pipeline.New(o)
	if err != nil {
		t.Fatalf("pipeline.New: %v", err)
	}
	go func() {
		select {
		case <-started:
		case <-t.Context().Done():
		}
		pl.Stop()
		// Release the processor once the producer's context is cancelled: the pipeline is
		// draining and asks for no more, so the messages given stay those asked for before,
		// at most MaxInFlight.
		if ctx := w.ctx.Load(); ctx != nil {
			select {
			case <-(*ctx).Done():
			case <-time.After(s.lim.step):
				t.Errorf("Stop did not cancel the producer's context within %v", s.lim.step)
			}
		}
		close(release)
	}()
	if err := e.runPipeline(pl, w, nil); err != nil {
		t.Errorf("Run after Stop returned %v, want nil", err)
	}
	entries := w.snapshot()
	if len(entries) == 0 {
		t.Fatalf("the pipeline was given no message")
	}
	if len(entries) > o.MaxInFlight {
		t.Errorf("the pipeline was given %d messages, more than its MaxInFlight of %d", len(entries), o.MaxInFlight)
	}
	for i, x := range entries {
		if x.acks == 0 {
			t.Errorf("message %d (%s position %d) was never acknowledged", i, quote(x.stream), x.pos)
		}
	}
	if got := handled.received(); got != len(entries) {
		t.Errorf("%d messages were handled, want the %d given to the pipeline", got, len(entries))
	}
	handled.check(false, false)
	e.checkPositions(entries)
	s.checkCalls(e, w)
	e.checkAcknowledged(len(entries), 0)
}

// testCloseUnused: Close on a producer never asked for a message returns nil, twice, and
// leaves no goroutine behind.
func (s *suite[T]) testCloseUnused(t tester) {
	e := s.setup(t)
	c, ok := e.fx.Producer.(pipeline.Closer)
	if !ok {
		t.Fatalf("Features.Closer is set, but %T does not implement pipeline.Closer", e.fx.Producer)
	}
	for i := range 2 {
		if err := e.close(c, s.lim.cancel); err != nil {
			t.Errorf("Close %d of a producer never used: %v, want nil", i+1, err)
		}
	}
}
