package producertest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// The suite's own tests run it against a producer with one fault at a time, through a fake
// test that records failures, and check that the subtest guarding against that fault fails
// (and that nothing fails without a fault).

// fakeT is a tester that records failures instead of reporting them. Subtests run in a
// goroutine of their own, so that Fatal can end them with runtime.Goexit, as testing does.
type fakeT struct {
	testing.TB // the real test, for what the fake does not record (TempDir, Skip)
	name       string
	rec        *failures
	ctx        context.Context
	cancel     context.CancelFunc
	mu         sync.Mutex
	failed     bool
	cleanups   []func()
}

// failures are the recorded failures of a fake test and its subtests.
type failures struct {
	mu   sync.Mutex
	msgs map[string][]string // by subtest name
}

func newFakeT(t *testing.T) *fakeT {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeT{TB: t, rec: &failures{msgs: map[string][]string{}}, ctx: ctx, cancel: cancel}
}

func (f *fakeT) Helper()                  {}
func (f *fakeT) Name() string             { return f.name }
func (f *fakeT) Context() context.Context { return f.ctx }
func (f *fakeT) Log(args ...any)          {}
func (f *fakeT) Logf(string, ...any)      {}
func (f *fakeT) Error(args ...any)        { f.fail(fmt.Sprint(args...)) }
func (f *fakeT) Errorf(format string, args ...any) {
	f.fail(fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatal(args ...any) { f.fail(fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeT) Fatalf(format string, args ...any) {
	f.fail(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *fakeT) Fail()    { f.fail("Fail") }
func (f *fakeT) FailNow() { f.fail("FailNow"); runtime.Goexit() }
func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}
func (f *fakeT) Cleanup(fn func()) {
	f.mu.Lock()
	f.cleanups = append(f.cleanups, fn)
	f.mu.Unlock()
}

func (f *fakeT) fail(msg string) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	f.rec.mu.Lock()
	f.rec.msgs[f.name] = append(f.rec.msgs[f.name], msg)
	f.rec.mu.Unlock()
}

func (f *fakeT) run(name string, fn func(t tester)) bool {
	ctx, cancel := context.WithCancel(context.Background())
	sub := &fakeT{TB: f.TB, name: strings.TrimPrefix(f.name+"/"+name, "/"), rec: f.rec, ctx: ctx, cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sub.finish()
		fn(sub)
	}()
	<-done
	return !sub.Failed()
}

// finish ends the subtest as testing does: its context is cancelled, then its cleanups run,
// last registered first.
func (f *fakeT) finish() {
	f.cancel()
	for {
		f.mu.Lock()
		if len(f.cleanups) == 0 {
			f.mu.Unlock()
			return
		}
		fn := f.cleanups[len(f.cleanups)-1]
		f.cleanups = f.cleanups[:len(f.cleanups)-1]
		f.mu.Unlock()
		fn()
	}
}

// failed returns the names of the subtests that failed, sorted, and their messages.
func (r *failures) failed() ([]string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	var b strings.Builder
	for name, msgs := range r.msgs {
		names = append(names, name)
		for _, m := range msgs {
			if len(m) > 300 {
				m = m[:300] + "…"
			}
			fmt.Fprintf(&b, "\n\t%s: %s", name, m)
		}
	}
	slices.Sort(names)
	return names, b.String()
}

// fault is one way the test producer breaks the contract.
type fault int

const (
	noFault           fault = iota
	tooMany                 // returns one message more than asked for
	zeroNil                 // returns no message and a nil error when it has none
	writesPast              // writes the message after the last it returns
	duplicate               // gives one message twice
	drop                    // never gives one message
	reorder                 // swaps two messages
	badPositions            // numbers positions from 1
	earlyEnd                // ends the input before its last message
	endNotAgain             // after the end of input, fails instead of ending again
	ignoresCancel           // waits on when its context is cancelled (until Close)
	spins                   // polls in a loop while it has nothing
	noAcknowledger          // gives messages without an acknowledger
	otherAcknowledger       // acknowledges to one of its own instead of the given one
	losesFailures           // its own acknowledger does not count failed messages
	leaks                   // leaves a goroutine behind
	closeAgainFails         // a second Close returns an error
	blocksDrain             // PrepareForDraining waits for the lock a waiting Produce holds
	noDecode                // DecodeMessages decodes nothing
	foreignCancelErr        // returns an error of its own when its context is cancelled
)

// testProducer gives 1000, 1001, … 1019, in order, numbered by position from 0, unless its
// fault says otherwise. It implements every optional interface.
type testProducer struct {
	fault    fault
	endless  bool
	a        ack.Acknowledger
	order    []int // input indices, in the order given
	in       []int
	release  chan struct{} // closed by Close
	never    chan struct{} // what a leaked goroutine waits for
	activity atomic.Int64
	deferred atomic.Bool
	acked    atomic.Int64

	mu     sync.Mutex
	next   int
	ends   int
	closes int
	leaked *atomic.Bool // shared by the producers of one run: one leak is enough
}

func newTestProducer(f fault, endless bool, a ack.Acknowledger, never chan struct{}, leaked *atomic.Bool) *testProducer {
	p := &testProducer{fault: f, endless: endless, a: a, release: make(chan struct{}), never: never, leaked: leaked}
	for i := range 20 {
		p.in = append(p.in, 1000+i)
		p.order = append(p.order, i)
	}
	switch f {
	case duplicate:
		p.order = slices.Insert(p.order, 4, 3)
	case drop:
		p.order = slices.Delete(p.order, 3, 4)
	case reorder:
		p.order[2], p.order[3] = p.order[3], p.order[2]
	}
	switch f {
	case noAcknowledger:
		p.a = nil
	case otherAcknowledger:
		p.a = ack.Nop
	}
	return p
}

// ownAcknowledger is the acknowledger of a test producer with AcksOwn: it counts.
type ownAcknowledger struct{ p *testProducer }

func (o ownAcknowledger) Ack(s []ack.Ref, f []ack.Failure) {
	n := len(s)
	if o.p.fault != losesFailures {
		n += len(f)
	}
	o.p.acked.Add(int64(n))
}

func (p *testProducer) Produce(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
	p.mu.Lock()
	if p.fault == leaks && p.leaked.CompareAndSwap(false, true) {
		go func() { <-p.never }()
	}
	if ctx.Err() != nil && p.fault == foreignCancelErr {
		p.mu.Unlock()
		return 0, errors.New("test producer: stopped")
	}
	if p.next >= len(p.order) {
		if !p.endless {
			defer p.mu.Unlock()
			p.ends++
			switch {
			case p.fault == zeroNil:
				return 0, nil
			case p.fault == endNotAgain && p.ends > 1:
				return 0, errors.New("test producer: read past the end")
			}
			return 0, pipeline.ErrEndOfInput
		}
		switch p.fault {
		case zeroNil:
			p.mu.Unlock()
			return 0, nil
		case spins:
			p.mu.Unlock()
			for ctx.Err() == nil {
				p.activity.Add(1)
				runtime.Gosched()
			}
			return 0, ctx.Err()
		case ignoresCancel:
			p.mu.Unlock()
			<-p.release
			return 0, ctx.Err()
		case blocksDrain:
			defer p.mu.Unlock() // held while waiting
			<-ctx.Done()
			return 0, ctx.Err()
		}
		p.mu.Unlock()
		<-ctx.Done()
		if p.fault == foreignCancelErr {
			return 0, errors.New("test producer: stopped")
		}
		return 0, ctx.Err()
	}
	defer p.mu.Unlock()
	n := min(len(msgs), len(p.order)-p.next)
	var err error
	if p.fault == earlyEnd && p.next+n >= len(p.order)-1 {
		n, err = len(p.order)-1-p.next, pipeline.ErrEndOfInput
	}
	a := p.a
	if a == nil && p.fault != noAcknowledger {
		a = ownAcknowledger{p}
	}
	for i := range n {
		slot := p.next + i
		k := p.order[slot]
		m := &msgs[i]
		if p.deferred.Load() {
			m.Metadata.Source = k
		} else {
			m.Data = p.in[k]
		}
		m.Metadata.Position = int64(slot)
		if p.fault == badPositions {
			m.Metadata.Position++
		}
		m.SetAcknowledger(a, ack.Ref{N: uint64(k)})
	}
	p.next += n
	if p.fault == writesPast && n < len(msgs) {
		msgs[n].Metadata.Position = 99
	}
	if p.fault == tooMany {
		return len(msgs) + 1, nil
	}
	return n, err
}

func (p *testProducer) PrepareForDraining() {
	if p.fault == blocksDrain {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
}

func (p *testProducer) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closes++
	if p.closes == 1 {
		close(p.release)
		return nil
	}
	if p.fault == closeAgainFails {
		return errors.New("test producer: closed already")
	}
	return nil
}

func (p *testProducer) DeferDecoding() { p.deferred.Store(true) }

func (p *testProducer) DecodeMessages(msgs []pipeline.Message[int]) {
	if p.fault == noDecode {
		return
	}
	for i := range msgs {
		if k, ok := msgs[i].Metadata.Source.(int); ok {
			msgs[i].Data = p.in[k]
		}
	}
}

// produceOnly hides a producer's optional interfaces.
type produceOnly struct{ pipeline.Producer[int] }

// testLimits keep the suite's own tests short: a broken producer fails at these bounds.
var testLimits = limits{step: time.Second, cancel: 500 * time.Millisecond, idle: 20 * time.Millisecond, leak: time.Second, idleActivity: IdleActivity}

// runFake runs the suite against test producers with the fault, through a fake test, and
// returns the names of the subtests that failed and what they said.
func runFake(t *testing.T, f Features, flt fault, wrap func(pipeline.Producer[int]) pipeline.Producer[int]) ([]string, string) {
	never := make(chan struct{})
	defer close(never)
	var leaked atomic.Bool
	ft := newFakeT(t)
	run[int](ft, f, func(t testing.TB, a ack.Acknowledger) Fixture[int] {
		p := newTestProducer(flt, f.Endless, a, never, &leaked)
		if f.Acks == AcksOwn {
			p.a = nil
		}
		if f.Acks == AcksNone {
			p.fault = noAcknowledger
			p.a = nil
		}
		fx := Fixture[int]{Producer: p, Input: p.in, Activity: p.activity.Load}
		if f.Acks == AcksOwn {
			fx.Acknowledged = func() int { return int(p.acked.Load()) }
		}
		if wrap != nil {
			fx.Producer = wrap(p)
		}
		return fx
	}, testLimits)
	return ft.rec.failed()
}

// all is every feature the test producer has.
var all = Features{Ordered: true, Positions: true, DrainNotifier: true, Closer: true, Decoder: true, Concurrent: true}

func with(f Features, change func(*Features)) Features {
	change(&f)
	return f
}

func TestSuitePassesCorrectProducers(t *testing.T) {
	for _, c := range []struct {
		name string
		f    Features
	}{
		{"Finite", all},
		{"Endless", with(all, func(f *Features) { f.Endless = true })},
		{"OwnAcknowledger", with(all, func(f *Features) { f.Acks = AcksOwn })},
		{"NoAcknowledger", with(all, func(f *Features) { f.Acks = AcksNone; f.Endless = true })},
		{"Unordered", with(all, func(f *Features) { f.Ordered, f.Positions = false, false })},
	} {
		t.Run(c.name, func(t *testing.T) {
			if failed, msgs := runFake(t, c.f, noFault, nil); len(failed) > 0 {
				t.Errorf("the suite failed a correct producer in %v:%s", failed, msgs)
			}
		})
	}
}

// Each fault fails the subtests named; others may fail too (a duplicate is seen by every
// subtest that takes the whole input).
func TestSuiteFailsBrokenProducers(t *testing.T) {
	endless := with(all, func(f *Features) { f.Endless = true })
	own := with(all, func(f *Features) { f.Acks = AcksOwn })
	for _, c := range []struct {
		name  string
		f     Features
		fault fault
		wrap  func(pipeline.Producer[int]) pipeline.Producer[int]
		want  []string
	}{
		{"TooMany", all, tooMany, nil, []string{"DemandHonoured", "Acknowledgements"}},
		{"ZeroNilAtTheEnd", all, zeroNil, nil, []string{"DemandHonoured", "EndOfInput"}},
		{"ZeroNilWhenIdle", endless, zeroNil, nil, []string{"WaitsWhenIdle", "Cancel"}},
		{"WritesPast", all, writesPast, nil, []string{"ReturnsWhatItHas"}},
		{"Duplicate", all, duplicate, nil, []string{"DemandHonoured", "EndOfInput", "Acknowledgements"}},
		{"Drop", all, drop, nil, []string{"DemandHonoured", "EndOfInput", "Acknowledgements"}},
		{"Reorder", all, reorder, nil, []string{"DemandHonoured", "EndOfInput", "Decoder"}},
		{"BadPositions", all, badPositions, nil, []string{"DemandHonoured", "Acknowledgements", "Drain"}},
		{"EarlyEnd", all, earlyEnd, nil, []string{"EndOfInput"}},
		{"EndNotAgain", all, endNotAgain, nil, []string{"EndOfInput"}},
		{"IgnoresCancel", endless, ignoresCancel, nil, []string{"Cancel", "WaitsWhenIdle"}},
		{"Spins", endless, spins, nil, []string{"WaitsWhenIdle"}},
		{"NoAcknowledger", all, noAcknowledger, nil, []string{"DemandHonoured", "Acknowledgements"}},
		{"OtherAcknowledger", all, otherAcknowledger, nil, []string{"DemandHonoured", "Acknowledgements"}},
		{"LosesFailures", own, losesFailures, nil, []string{"Acknowledgements"}},
		{"Leaks", all, leaks, nil, []string{"DemandHonoured"}},
		{"CloseAgainFails", all, closeAgainFails, nil, []string{"Acknowledgements", "Drain", "CloseUnused"}},
		{"BlocksDrain", endless, blocksDrain, nil, []string{"PrepareForDraining"}},
		{"NoDecode", all, noDecode, nil, []string{"Decoder", "Acknowledgements"}},
		{"ForeignCancelError", endless, foreignCancelErr, nil, []string{"Cancel", "WaitsWhenIdle"}},
		{"ClaimsWhatItLacks", all, noFault, func(p pipeline.Producer[int]) pipeline.Producer[int] { return produceOnly{p} }, []string{"Features"}},
		{"LacksClaims", Features{Ordered: true}, noFault, nil, []string{"Features"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			failed, msgs := runFake(t, c.f, c.fault, c.wrap)
			for _, w := range c.want {
				if !slices.Contains(failed, w) {
					t.Errorf("subtest %s passed a producer with fault %s; failed: %v%s", w, c.name, failed, msgs)
				}
			}
			t.Logf("failed %v:%s", failed, msgs)
		})
	}
}
