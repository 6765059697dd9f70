package pipelinetest

import (
	"context"
	"sync"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// Producer is a [pipeline.Producer] fed by the test: [Producer.Push] queues messages, which
// the pipeline takes on demand; [Producer.Close] ends the input once the queue is empty. It is
// safe for concurrent use, so a pipeline may run it with any ProducerConcurrency.
type Producer[T any] struct {
	mu       sync.Mutex
	queue    []pipeline.Message[T]
	closed   bool
	produced int
	calls    int
	wake     chan struct{} // capacity 1: signalled when the queue grows or the producer closes
}

// NewProducer returns an empty, open Producer.
func NewProducer[T any]() *Producer[T] {
	return &Producer[T]{wake: make(chan struct{}, 1)}
}

// Push queues one message per value and returns their [Delivery]. It does not block. Pushing
// after Close panics.
func (p *Producer[T]) Push(data ...T) *Delivery[T] {
	msgs := make([]pipeline.Message[T], len(data))
	for i, d := range data {
		msgs[i].Data = d
	}
	return p.PushMessages(msgs...)
}

// PushMessages queues copies of msgs (with their metadata, batcher, batch key and failure, as
// a producer would set them) and returns their [Delivery], which becomes their acknowledger:
// each message's acknowledger is replaced by it, with ack.Ref{N: its index in msgs}. It does
// not block. Pushing after Close panics.
func (p *Producer[T]) PushMessages(msgs ...pipeline.Message[T]) *Delivery[T] {
	d := newDelivery(msgs)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		panic("pipelinetest: Push after Close")
	}
	for i, m := range msgs {
		m.SetAcknowledger(d, ack.Ref{N: uint64(i)})
		p.queue = append(p.queue, m)
	}
	p.signal()
	return d
}

// Close ends the input: once the queued messages are taken, Produce reports
// [pipeline.ErrEndOfInput], and the pipeline drains and completes. Close is idempotent.
func (p *Producer[T]) Close() {
	p.mu.Lock()
	p.closed = true
	p.signal()
	p.mu.Unlock()
}

func (p *Producer[T]) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Produce implements [pipeline.Producer]: it blocks until a message is queued, ctx ends, or
// the producer is closed and empty.
func (p *Producer[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	for {
		p.mu.Lock()
		p.calls++
		if len(p.queue) > 0 {
			n := copy(msgs, p.queue)
			clear(p.queue[:n])
			p.queue = p.queue[n:]
			p.produced += n
			var err error
			if len(p.queue) == 0 && p.closed {
				err = pipeline.ErrEndOfInput
			} else if len(p.queue) > 0 {
				p.signal() // let another concurrent caller take the rest
			}
			p.mu.Unlock()
			return n, err
		}
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return 0, pipeline.ErrEndOfInput
		}
		select {
		case <-p.wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Produced returns how many messages the pipeline has taken so far.
func (p *Producer[T]) Produced() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.produced
}

// Queued returns how many pushed messages the pipeline has not taken yet.
func (p *Producer[T]) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// Calls returns how many times Produce has been called (each wake-up while waiting counts).
func (p *Producer[T]) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}
