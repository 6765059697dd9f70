package pipelinetest

import (
	"context"
	"fmt"
	"sync"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// Delivery is the acknowledger of one push: it records how each of the pushed messages
// ended. The first acknowledgement of a message wins; later ones are counted in
// [Result.Duplicates], as are references it never handed out. It is safe for concurrent use.
type Delivery[T any] struct {
	data []T
	mu   sync.Mutex
	// state per message: 0 pending, 1 succeeded, 2 failed
	state []uint8
	errs  []error
	halts []bool
	left  int
	dups  int
	done  chan struct{}
}

func newDelivery[T any](msgs []pipeline.Message[T]) *Delivery[T] {
	d := &Delivery[T]{
		data:  make([]T, len(msgs)),
		state: make([]uint8, len(msgs)),
		errs:  make([]error, len(msgs)),
		halts: make([]bool, len(msgs)),
		left:  len(msgs),
		done:  make(chan struct{}),
	}
	for i := range msgs {
		d.data[i] = msgs[i].Data
	}
	if d.left == 0 {
		close(d.done)
	}
	return d
}

// Ack implements [ack.Acknowledger].
func (d *Delivery[T]) Ack(successful []ack.Ref, failed []ack.Failure) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range successful {
		d.record(r, 1, nil, false)
	}
	for _, f := range failed {
		d.record(f.Ref, 2, f.Err, f.Halt)
	}
}

func (d *Delivery[T]) record(r ack.Ref, state uint8, err error, halt bool) {
	i := r.N
	if i >= uint64(len(d.state)) || d.state[i] != 0 {
		d.dups++
		return
	}
	d.state[i], d.errs[i], d.halts[i] = state, err, halt
	d.left--
	if d.left == 0 {
		close(d.done)
	}
}

// Done returns a channel closed when every pushed message has been acknowledged.
func (d *Delivery[T]) Done() <-chan struct{} { return d.done }

// Wait blocks until every pushed message has been acknowledged, then returns the [Result];
// or returns what has arrived so far and an error when ctx ends first.
func (d *Delivery[T]) Wait(ctx context.Context) (Result[T], error) {
	select {
	case <-d.done:
		return d.Result(), nil
	case <-ctx.Done():
		res := d.Result()
		return res, fmt.Errorf("pipelinetest: %d of %d messages unacknowledged: %w", res.Pending, len(d.data), context.Cause(ctx))
	}
}

// Result returns how the pushed messages have ended so far.
func (d *Delivery[T]) Result() Result[T] {
	d.mu.Lock()
	defer d.mu.Unlock()
	res := Result[T]{Duplicates: d.dups, Pending: d.left}
	for i, s := range d.state {
		switch s {
		case 1:
			res.Successful = append(res.Successful, d.data[i])
		case 2:
			res.Failed = append(res.Failed, Failed[T]{Index: i, Data: d.data[i], Err: d.errs[i], Halt: d.halts[i]})
		}
	}
	return res
}

// Result is how the messages of one push ended.
type Result[T any] struct {
	// Successful holds the data of the messages acknowledged as successful, as pushed, in
	// push order.
	Successful []T
	// Failed holds the messages acknowledged as failed, in push order.
	Failed []Failed[T]
	// Pending is the number of messages not acknowledged yet.
	Pending int
	// Duplicates counts acknowledgements of a message that was already acknowledged (or of
	// a reference this delivery never handed out). A correct pipeline makes none.
	Duplicates int
}

// Failed is a message acknowledged as failed.
type Failed[T any] struct {
	// Index is the message's position in its push.
	Index int
	// Data is the message's data as pushed.
	Data T
	// Err is the failure's error; Halt whether it was reported with ack.Failure.Halt.
	Err  error
	Halt bool
}
