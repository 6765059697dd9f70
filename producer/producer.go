package producer

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// Producer is the pipeline's producer contract; see [pipeline.Producer].
type Producer[T any] = pipeline.Producer[T]

// Chan produces the values received from a channel; the input ends when the channel is
// closed. It is safe for concurrent use (any ProducerConcurrency).
type Chan[T any] struct {
	ch  <-chan T
	a   ack.Acknowledger
	seq atomic.Uint64
}

// FromChan returns a producer of the values received from ch, acknowledged to a (nil for
// none).
func FromChan[T any](ch <-chan T, a ack.Acknowledger) *Chan[T] {
	return &Chan[T]{ch: ch, a: a}
}

// Produce blocks until a value is received, ch is closed, or ctx ends; then it takes what
// else is ready without blocking, up to len(msgs).
func (c *Chan[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	select {
	case v, ok := <-c.ch:
		if !ok {
			return 0, pipeline.ErrEndOfInput
		}
		c.fill(&msgs[0], v)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n := 1
	for n < len(msgs) {
		select {
		case v, ok := <-c.ch:
			if !ok {
				return n, pipeline.ErrEndOfInput
			}
			c.fill(&msgs[n], v)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (c *Chan[T]) fill(m *pipeline.Message[T], v T) {
	m.Data = v
	m.SetAcknowledger(c.a, ack.Ref{N: c.seq.Add(1) - 1})
}

// Iter produces the values of an iterator, in order; the input ends when the iterator does.
// It is safe for concurrent use (calls are serialised). The iterator runs on its own
// coroutine, pulled one value at a time; a blocking iterator blocks Produce, which then does
// not see its context end, so prefer [Chan] for live input.
type Iter[T any] struct {
	mu   sync.Mutex
	next func() (T, bool)
	stop func()
	a    ack.Acknowledger
	n    uint64
	done bool
}

// Seq returns a producer of the values of seq, acknowledged to a (nil for none). The pipeline
// releases the iterator when the run ends (Iter implements [pipeline.Closer]).
func Seq[T any](seq iter.Seq[T], a ack.Acknowledger) *Iter[T] {
	next, stop := iter.Pull(seq)
	return &Iter[T]{next: next, stop: stop, a: a}
}

// Produce pulls up to len(msgs) values.
func (it *Iter[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	it.mu.Lock()
	defer it.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(msgs) && !it.done {
		v, ok := it.next()
		if !ok {
			it.done = true
			break
		}
		msgs[n].Data = v
		msgs[n].SetAcknowledger(it.a, ack.Ref{N: it.n})
		it.n++
		n++
	}
	if it.done {
		return n, pipeline.ErrEndOfInput
	}
	return n, nil
}

// Close stops the iterator. It implements [pipeline.Closer]; it is idempotent.
func (it *Iter[T]) Close(context.Context) error {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.done = true
	it.stop()
	return nil
}

// Slice returns a producer of items, in order; the input ends after the last. It does not
// copy items. It is safe for concurrent use.
func Slice[T any](items []T, a ack.Acknowledger) *Generator[T] {
	return Generate(func(i int) (T, bool) {
		if i >= len(items) {
			var zero T
			return zero, false
		}
		return items[i], true
	}, a)
}

// Generator produces the values of a function called with 0, 1, 2, …; the input ends when it
// returns false. It is safe for concurrent use (calls are serialised).
type Generator[T any] struct {
	mu   sync.Mutex
	f    func(i int) (T, bool)
	a    ack.Acknowledger
	i    int
	done bool
}

// Generate returns a producer of f(0), f(1), … until f returns false, acknowledged to a (nil
// for none). f is called from the pipeline's producer goroutines, one call at a time.
func Generate[T any](f func(i int) (T, bool), a ack.Acknowledger) *Generator[T] {
	return &Generator[T]{f: f, a: a}
}

// Produce calls f up to len(msgs) times.
func (g *Generator[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(msgs) && !g.done {
		v, ok := g.f(g.i)
		if !ok {
			g.done = true
			break
		}
		msgs[n].Data = v
		msgs[n].SetAcknowledger(g.a, ack.Ref{N: uint64(g.i)})
		g.i++
		n++
	}
	if g.done {
		return n, pipeline.ErrEndOfInput
	}
	return n, nil
}
