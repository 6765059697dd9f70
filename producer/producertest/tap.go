package producertest

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// tap stands between a pipeline and the producer under test. Each Produce call is checked
// as a direct call is, and each message's acknowledger is replaced by the tap itself, with
// a reference that numbers the message: the tap's Ack counts every message's
// acknowledgements and passes them on, grouped as the pipeline grouped them, to the
// acknowledger and reference the producer gave it. It passes DrainNotifier and Closer calls
// on (counting them), and is a [pipeline.Decoder] exactly when the producer is (see
// decodingTap), so that the pipeline treats it as it would the producer.
type tap[T any] struct {
	e *env[T]

	produces atomic.Int64
	drains   atomic.Int64
	closes   atomic.Int64
	defers   atomic.Int64
	decodes  atomic.Int64
	late     atomic.Bool                     // DeferDecoding came after a Produce
	errs     atomic.Int64                    // failures reported
	ctx      atomic.Pointer[context.Context] // the first Produce call's

	mu      sync.Mutex
	entries []entry // one per message produced, in the order handed out
	acked   int     // messages acknowledged (once or more)
	want    int     // close full once acked reaches want
	full    chan struct{}
}

// entry is what the tap knows of one message it handed to the pipeline.
type entry struct {
	a      ack.Acknowledger // the producer's
	ref    ack.Ref          // the producer's
	stream string
	pos    int64
	acks   int
	failed bool // acknowledged as failed
	index  int  // in the input, as the handler saw it; -1 until then
}

// newTap returns the tap over e's producer, and what to give the pipeline as its producer.
// full is closed once want messages have been acknowledged.
func newTap[T any](e *env[T], want int) (*tap[T], pipeline.Producer[T]) {
	w := &tap[T]{e: e, want: want, full: make(chan struct{})}
	if d, ok := e.fx.Producer.(pipeline.Decoder[T]); ok {
		return w, decodingTap[T]{w, d}
	}
	return w, w
}

// Produce implements pipeline.Producer.
func (w *tap[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	if w.produces.Add(1) == 1 {
		w.ctx.Store(&ctx)
	}
	if err := ctx.Err(); err != nil {
		// The pipeline may still start a call after it began draining (a producer goroutine
		// that finds credits freed as it wakes); the tap answers it as a producer should, so
		// that what a drain hands out is what the pipeline asked for before it. The Cancel
		// subtest calls the producer itself with a cancelled context.
		return 0, err
	}
	n, err := w.e.fx.Producer.Produce(ctx, msgs)
	if n < 0 || n > len(msgs) {
		w.errorf("in a pipeline: Produce returned %d messages for a demand of %d (err %v)", n, len(msgs), err)
		return n, err // the pipeline fails the run
	}
	if n == 0 && err == nil {
		w.errorf("in a pipeline: Produce returned no message and a nil error for a demand of %d", len(msgs))
	}
	for i := n; i < len(msgs); i++ {
		if !reflect.ValueOf(&msgs[i]).Elem().IsZero() {
			w.errorf("in a pipeline: Produce returned %d messages for a demand of %d but wrote message %d too", n, len(msgs), i)
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range msgs[:n] {
		m := &msgs[i]
		if err := w.e.checkAcknowledger(m); err != nil {
			w.errorf("in a pipeline: %v", err)
		}
		w.entries = append(w.entries, entry{a: m.Acknowledger(), ref: m.Ref(), stream: m.Metadata.Stream, pos: m.Metadata.Position, index: -1})
		m.SetAcknowledger(w, ack.Ref{N: uint64(len(w.entries) - 1)})
	}
	return n, err
}

// errorf fails the test, reporting the first few failures only: a broken producer can make
// a pipeline call it in a loop.
func (w *tap[T]) errorf(format string, args ...any) {
	switch n := w.errs.Add(1); {
	case n <= 10:
		w.e.t.Errorf(format, args...)
	case n == 11:
		w.e.t.Errorf("in a pipeline: more failures, not reported")
	}
}

// PrepareForDraining implements pipeline.DrainNotifier: it passes the call on.
func (w *tap[T]) PrepareForDraining() {
	if d, ok := w.e.fx.Producer.(pipeline.DrainNotifier); ok {
		w.drains.Add(1)
		d.PrepareForDraining()
	}
}

// Close implements pipeline.Closer: it passes the call on.
func (w *tap[T]) Close(ctx context.Context) error {
	if c, ok := w.e.fx.Producer.(pipeline.Closer); ok {
		w.closes.Add(1)
		w.e.markClosed()
		return c.Close(ctx)
	}
	return nil
}

// group is the acknowledgements passed on to one of the producer's acknowledgers.
type group struct {
	a          ack.Acknowledger
	successful []ack.Ref
	failed     []ack.Failure
}

// Ack implements ack.Acknowledger: it counts each message's acknowledgement and passes
// it on to the producer's acknowledger, one call per distinct acknowledger.
func (w *tap[T]) Ack(successful []ack.Ref, failed []ack.Failure) {
	var groups []*group
	find := func(a ack.Acknowledger) *group {
		for _, g := range groups {
			if same(g.a, a) {
				return g
			}
		}
		g := &group{a: a}
		groups = append(groups, g)
		return g
	}
	w.mu.Lock()
	count := func(r ack.Ref, failed bool) *entry {
		if r.N >= uint64(len(w.entries)) {
			w.errorf("in a pipeline: an acknowledgement of reference %d, which the suite never handed out", r.N)
			return nil
		}
		x := &w.entries[r.N]
		x.acks++
		if x.acks > 1 {
			w.errorf("in a pipeline: message %d (%s position %d) acknowledged %d times", r.N, quote(x.stream), x.pos, x.acks)
			return nil
		}
		x.failed = failed
		w.acked++
		if w.acked == w.want {
			close(w.full)
		}
		return x
	}
	for _, r := range successful {
		if x := count(r, false); x != nil && x.a != nil {
			g := find(x.a)
			g.successful = append(g.successful, x.ref)
		}
	}
	for _, f := range failed {
		if x := count(f.Ref, true); x != nil && x.a != nil {
			g := find(x.a)
			f.Ref = x.ref
			g.failed = append(g.failed, f)
		}
	}
	w.mu.Unlock()
	for _, g := range groups {
		g.a.Ack(g.successful, g.failed)
	}
}

// same reports whether a and b are the same acknowledger. Acknowledgers of a type that is
// not comparable (an ack.AcknowledgerFunc) are never the same: each gets its own call.
func same(a, b ack.Acknowledger) bool {
	ta := reflect.TypeOf(a)
	return ta != nil && ta == reflect.TypeOf(b) && ta.Comparable() && a == b
}

// saw records that the handler saw the tap's message n with the input message k.
func (w *tap[T]) saw(n uint64, k int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n < uint64(len(w.entries)) {
		w.entries[n].index = k
	}
}

// snapshot returns a copy of the entries.
func (w *tap[T]) snapshot() []entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]entry(nil), w.entries...)
}

// decodingTap is the tap of a producer that is a [pipeline.Decoder].
type decodingTap[T any] struct {
	*tap[T]
	d pipeline.Decoder[T]
}

// DeferDecoding implements pipeline.Decoder: it passes the call on.
func (w decodingTap[T]) DeferDecoding() {
	w.defers.Add(1)
	if w.produces.Load() > 0 {
		w.late.Store(true)
	}
	w.d.DeferDecoding()
}

// DecodeMessages implements pipeline.Decoder: it passes the call on.
func (w decodingTap[T]) DecodeMessages(msgs []pipeline.Message[T]) {
	w.decodes.Add(1)
	w.d.DecodeMessages(msgs)
}
