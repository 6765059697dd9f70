package gostreams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/reugn/go-streams"
	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// ErrType is wrapped by the error of a message made from an element that is not of the
// pipeline's data type.
var ErrType = errors.New("gostreams: element of the wrong type")

// Source is a [pipeline.Producer] of the elements a go-streams outlet emits. The input ends
// when the outlet's channel is closed. It is safe for concurrent use.
type Source[T any] struct {
	out <-chan any
	a   ack.Acknowledger
	seq atomic.Uint64
}

// NewSource returns a producer of the elements src emits (any [streams.Source] or
// [streams.Flow]), acknowledged to a (nil for none) with ack.Ref{N: n} for the n-th element.
// The pipeline must be the only reader of src's outlet.
func NewSource[T any](src streams.Outlet, a ack.Acknowledger) *Source[T] {
	return &Source[T]{out: src.Out(), a: a}
}

// Produce blocks until an element arrives, the outlet closes, or ctx ends; then it takes what
// else is ready without blocking, up to len(msgs).
func (s *Source[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	return produce(ctx, s.out, msgs, s.a, &s.seq)
}

func produce[T any](ctx context.Context, in <-chan any, msgs []pipeline.Message[T], a ack.Acknowledger, seq *atomic.Uint64) (int, error) {
	select {
	case v, ok := <-in:
		if !ok {
			return 0, pipeline.ErrEndOfInput
		}
		fill(&msgs[0], v, a, seq)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n := 1
	for n < len(msgs) {
		select {
		case v, ok := <-in:
			if !ok {
				return n, pipeline.ErrEndOfInput
			}
			fill(&msgs[n], v, a, seq)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func fill[T any](m *pipeline.Message[T], v any, a ack.Acknowledger, seq *atomic.Uint64) {
	m.SetAcknowledger(a, ack.Ref{N: seq.Add(1) - 1})
	d, ok := v.(T)
	if !ok {
		var want T
		m.Fail(fmt.Errorf("%w: got %T, want %T", ErrType, v, want))
		return
	}
	m.Data = d
}

// Sink is a go-streams [streams.Sink] that feeds a pipeline: elements sent to its inlet
// become the pipeline's messages, and closing the inlet (as go-streams does when the flow
// upstream completes) ends the pipeline's input. Use it as the pipeline's producer and as the
// go-streams flow's sink:
//
//	sink := gostreams.NewSink[Order](0, nil)
//	p, _ := pipeline.New(pipeline.Options[Order]{Producer: sink, ...})
//	go p.Run(ctx)
//	source.Via(mapper).To(sink) // returns when the pipeline has finished every element
//
// If the pipeline's run ends before upstream has closed the inlet (it was stopped, or it
// failed), nothing reads the inlet any more and upstream's sends block: stop the go-streams
// flow too, for instance by ending its source.
//
// It is safe for concurrent use.
type Sink[T any] struct {
	in       chan any
	a        ack.Acknowledger
	seq      atomic.Uint64
	done     chan struct{}
	doneOnce sync.Once
}

var (
	_ streams.Sink           = (*Sink[int])(nil)
	_ pipeline.Producer[int] = (*Sink[int])(nil)
	_ pipeline.Closer        = (*Sink[int])(nil)
)

// NewSink returns a Sink whose inlet has the given buffer, acknowledging messages to a (nil
// for none).
func NewSink[T any](buffer int, a ack.Acknowledger) *Sink[T] {
	return &Sink[T]{in: make(chan any, buffer), a: a, done: make(chan struct{})}
}

// In returns the sink's inlet. Upstream closes it when it has nothing more to send.
func (s *Sink[T]) In() chan<- any { return s.in }

// AwaitCompletion blocks until the pipeline consuming the sink has ended its run: every
// element received was acknowledged (or the run stopped, or timed out, first).
func (s *Sink[T]) AwaitCompletion() { <-s.done }

// Produce implements [pipeline.Producer].
func (s *Sink[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	return produce(ctx, s.in, msgs, s.a, &s.seq)
}

// Close implements [pipeline.Closer]: the pipeline calls it when its run is over, which
// releases AwaitCompletion.
func (s *Sink[T]) Close(context.Context) error {
	s.doneOnce.Do(func() { close(s.done) })
	return nil
}
