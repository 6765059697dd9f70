package pipeline

import (
	"context"

	"github.com/sluice-go/sluice/batcher"
)

// Handler handles one message in a processor pool.
//
// HandleMessage may change m in place: replace m.Data, route it with [Message.SetBatcher],
// set its batch key, or fail it with [Message.Fail]. Returning an error fails the message with
// that error; so does a panic, with a [*PanicError]. Either way only this message fails; the
// pipeline goes on. m is valid only during the call.
//
// Mark an error that no retry can fix (the message is bad data) with [Permanent]: under the
// default policy, [RetryTransient], any other error is taken for a transient failure and the
// message is handled again, from its state before the call, until it succeeds.
//
// ctx stays valid while the pipeline drains and is cancelled only when the shutdown timeout
// passes. HandleMessage is called from many goroutines at once (the pool's concurrency) and
// must be safe for that.
type Handler[T any] interface {
	HandleMessage(ctx context.Context, m *Message[T]) error
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc[T any] func(ctx context.Context, m *Message[T]) error

// HandleMessage calls f(ctx, m).
func (f HandlerFunc[T]) HandleMessage(ctx context.Context, m *Message[T]) error { return f(ctx, m) }

// MessagePreparer is an optional interface of a [Handler]. When the handler implements it, a
// processor calls PrepareMessages with every message it took at once (up to the pool's
// MaxDemand), before HandleMessage is called on each: the place for one bulk lookup instead of
// one per message. It may change the messages and fail some of them; an error or a panic fails
// every message of the call that has not failed yet. Messages that have failed already (for
// instance by their producer) are included, and skipped by HandleMessage afterwards.
type MessagePreparer[T any] interface {
	PrepareMessages(ctx context.Context, msgs []Message[T]) error
}

// BatchHandler handles one batch of messages of one batcher and batch key.
//
// HandleBatch may fail individual messages with [Message.Fail] and change them; returning an
// error, or panicking, fails every message of the batch that has not failed already. The
// slice belongs to the runtime and is valid only during the call: do not keep it or its
// messages. Each message of the batch is acknowledged after HandleBatch returns (and after the
// retries of its failures, if any).
//
// Return (or fail a message with) a plain error when the sink or a service it needs is
// unavailable: under the default policy, [RetryTransient], the failed messages are handed to
// HandleBatch again, as a smaller batch of the same key, until they are written. Mark with
// [Permanent] what the sink rejects for good (a row that violates a constraint): only those
// messages go to the failure handler.
//
// ctx is as for [Handler]. HandleBatch is called from the batcher's batch processors, up to
// the batcher's concurrency at once.
type BatchHandler[T any] interface {
	HandleBatch(ctx context.Context, batch []Message[T], info BatchInfo) error
}

// BatchHandlerFunc adapts a function to [BatchHandler].
type BatchHandlerFunc[T any] func(ctx context.Context, batch []Message[T], info BatchInfo) error

// HandleBatch calls f(ctx, batch, info).
func (f BatchHandlerFunc[T]) HandleBatch(ctx context.Context, batch []Message[T], info BatchInfo) error {
	return f(ctx, batch, info)
}

// FailureHandler sees every failed message, with its error ([Message.Err]), before the
// message is acknowledged: the place to log, count or dead-letter failures. Which failures it
// sees depends on the [FailurePolicy]: under the default, [RetryTransient], only bad data
// ([IsPermanent] is true of every error it gets: nothing a retry could have written is
// dead-lettered); under [FailWithoutRetry] and [RetryThenFail] also transient failures that
// were not (or no longer) retried, which IsPermanent(m.Err()) tells apart, so that a
// dead-letter handler can keep bad data only.
//
// It is called synchronously, once per group of failed messages (those of one batch, or those
// a processor finished at once), on the goroutine that is about to acknowledge them, so the
// acknowledgement waits for it: a dead-letter handler that appends before returning makes the
// acknowledgement wait until the append succeeded. msgs is valid only during the call.
//
// When HandleFailed returns an error or panics, the failures have not been dealt with, and
// the pipeline does not let them count as done: it reports them to their acknowledgers with
// [ack.Failure.Halt] set (so an offset-committing acknowledger does not commit past them) and
// halts with a [*HaltError] naming the first of them, whatever the [FailurePolicy].
type FailureHandler[T any] interface {
	HandleFailed(ctx context.Context, msgs []Message[T]) error
}

// FailureHandlerFunc adapts a function to [FailureHandler].
type FailureHandlerFunc[T any] func(ctx context.Context, msgs []Message[T]) error

// HandleFailed calls f(ctx, msgs).
func (f FailureHandlerFunc[T]) HandleFailed(ctx context.Context, msgs []Message[T]) error {
	return f(ctx, msgs)
}

// Trigger tells why a batch closed: [TriggerSize], [TriggerBytes], [TriggerTimeout] or
// [TriggerFlush].
type Trigger = batcher.Trigger

// The batch triggers (see package batcher).
const (
	TriggerSize    = batcher.TriggerSize
	TriggerBytes   = batcher.TriggerBytes
	TriggerTimeout = batcher.TriggerTimeout
	TriggerFlush   = batcher.TriggerFlush
)

// BatchInfo describes a batch handed to a [BatchHandler].
type BatchInfo struct {
	// Batcher is the batcher's name.
	Batcher string
	// Key is the batch key shared by the batch's messages.
	Key string
	// Size is the number of messages in the batch.
	Size int
	// Bytes is the sum of the messages' sizes by the batcher's SizeOf (0 without one).
	Bytes int
	// Trigger is why the batch closed.
	Trigger Trigger
	// Partition is the index of the batch processor handling the batch, in
	// [0, BatcherOptions.Concurrency).
	Partition int
}
