package pipeline

import "context"

// Producer is where a pipeline's messages come from. The pipeline pulls: it calls Produce only
// when it has room for more messages, and never asks for more than it has room for: room in
// the first processor pool (see [ProcessorOptions].MaxDemand), under [Options.MaxInFlight] and
// under the rate limit.
//
// Produce fills msgs[:n] with n messages, 1 <= n <= len(msgs), and returns n. len(msgs) is the
// demand, at least 1; the slice's messages are zero values, owned by the pipeline (fill them
// in place: no allocation is needed per message). Produce blocks until it has at least one
// message, ctx ends, or the input ends; it should return what it has as soon as it has
// something rather than wait to fill msgs.
//
// The returned error decides what happens next, and msgs[:n] is taken in every case:
//   - nil: the pipeline asks again when it has room.
//   - [ErrEndOfInput] (or an error wrapping it): the input is exhausted. The pipeline drains
//     and Run returns nil once every message has finished.
//   - ctx's error after ctx ended: the pipeline is draining or its context ended; Produce is
//     not called again.
//   - any other error: the run fails. The pipeline drains what it has and Run returns an error
//     wrapping this one (for instance a typed "stream not found" error, matchable with
//     errors.Is or errors.As).
//
// ctx is cancelled, with cause [ErrDraining], as soon as the pipeline starts draining, so that
// Produce can abandon a live read at once; it is also cancelled when Run's context ends.
//
// Concurrency: with [Options.ProducerConcurrency] > 1, the pipeline calls Produce on the same
// Producer from that many goroutines at once, so such a producer must be safe for concurrent
// use. With the default concurrency of 1, calls never overlap.
//
// A Producer may also implement [DrainNotifier] and [Closer].
type Producer[T any] interface {
	Produce(ctx context.Context, msgs []Message[T]) (int, error)
}

// ProducerFunc adapts a function to [Producer].
type ProducerFunc[T any] func(ctx context.Context, msgs []Message[T]) (int, error)

// Produce calls f(ctx, msgs).
func (f ProducerFunc[T]) Produce(ctx context.Context, msgs []Message[T]) (int, error) {
	return f(ctx, msgs)
}

// DrainNotifier is an optional interface of a [Producer]. PrepareForDraining is called once,
// when the pipeline starts draining (its context ended, [Pipeline.Stop] was called, the input
// ended, or the run failed or halted), at the same moment as the Produce context is cancelled,
// possibly while a Produce call is running. It must not block; a producer uses it to cancel
// a read it holds open between Produce calls.
type DrainNotifier interface {
	PrepareForDraining()
}

// Closer is an optional interface of a [Producer]. Close is called once at the end of a run,
// after the last acknowledgement was delivered (or the shutdown
// timeout abandoned the rest): the place to save a final checkpoint and release resources.
// ctx carries Run's context values, is not cancelled when Run's context ends, and has a
// deadline of its own, [Options.ShutdownTimeout] after the call. Close's error is returned by
// Run (joined with any other).
type Closer interface {
	Close(ctx context.Context) error
}
