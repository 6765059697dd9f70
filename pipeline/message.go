package pipeline

import "github.com/sluice-go/sluice/ack"

// Message is one item flowing through a pipeline: the data, the producer's metadata, and
// where it goes next. The runtime moves messages by value in slices it owns; handlers receive
// a pointer into such a slice and may change the message in place, but must not keep the
// pointer after they return.
//
// A producer fills a message with [NewMessage] (or sets the fields of a zero Message in the
// slice it was given) and [Message.SetAcknowledger]. Handlers may replace Data, fail the
// message ([Message.Fail]), route it to a batcher ([Message.SetBatcher]) and set its batch key
// ([Message.SetBatchKey]). Nothing in a Message is allocated by the pipeline.
type Message[T any] struct {
	// Data is the payload. Handlers may replace it.
	Data T
	// Metadata is the producer's description of where the message came from. The pipeline
	// carries it unchanged and never interprets it.
	Metadata Metadata

	acknowledger ack.Acknowledger
	ref          ack.Ref
	batcher      string
	batchKey     string
	err          error
	attempt      int32
	routed       bool // batcher was set explicitly
}

// Metadata is what a producer attaches to a message to say where it came from. The pipeline
// carries it unchanged and never interprets it. Sharing the Stream string and the Source
// value among the messages of one read costs no allocation per message.
type Metadata struct {
	// Stream names the sequence of its source the message belongs to: for a durable stream,
	// the stream's path. Producers with a single sequence may leave it empty.
	Stream string
	// Position is the message's place in Stream, from 0. A producer that documents its
	// positions as stable gives a message the same Position on every delivery of it
	// (after a retry, a restart or a failover), so that a sink can key rows by (Stream,
	// Position) and apply a redelivered message once; see the producer's documentation for
	// what its positions count from.
	Position int64
	// Source is a producer-specific value shared by the messages of one read, typically a
	// pointer to a per-chunk record (offsets, cursor, up-to-date). Storing a pointer here
	// does not allocate.
	Source any
}

// NewMessage returns a message carrying data, to be acknowledged to a with ref. A nil a means
// the message needs no acknowledgement. It allocates nothing.
func NewMessage[T any](data T, a ack.Acknowledger, ref ack.Ref) Message[T] {
	return Message[T]{Data: data, acknowledger: a, ref: ref}
}

// SetAcknowledger sets the acknowledger told how the message ended, and the reference it is
// told with. Producers call it; handlers must not.
func (m *Message[T]) SetAcknowledger(a ack.Acknowledger, ref ack.Ref) {
	m.acknowledger, m.ref = a, ref
}

// Acknowledger returns the message's acknowledger (nil when it needs none).
func (m *Message[T]) Acknowledger() ack.Acknowledger { return m.acknowledger }

// Ref returns the reference the message is acknowledged with.
func (m *Message[T]) Ref() ack.Ref { return m.ref }

// Fail marks the message failed with err, the first failure winning: later calls, and a
// handler's returned error after Fail, do not replace it. A failed message skips the handlers
// still ahead of it and, unless its failure is retried, is acknowledged as failed (see
// [FailurePolicy]; mark bad data with [Permanent]). A nil err is replaced by [ErrFailed].
func (m *Message[T]) Fail(err error) {
	if m.err != nil {
		return
	}
	if err == nil {
		err = ErrFailed
	}
	m.err = err
}

// Err returns why the message failed, or nil while it has not.
func (m *Message[T]) Err() error { return m.err }

// Failed reports whether the message has failed.
func (m *Message[T]) Failed() bool { return m.err != nil }

// SetBatcher routes the message to the named batcher once the processors are done with it;
// "" sends it to no batcher, so it is acknowledged right after its last processor. A message
// routed to a batcher the pipeline does not have fails with [ErrUnknownBatcher]. Until a
// handler calls it, a message goes to [Options.DefaultBatcher].
func (m *Message[T]) SetBatcher(name string) { m.batcher, m.routed = name, true }

// Batcher returns the name of the batcher the message was routed to with [Message.SetBatcher],
// or "" when it was not routed (it then goes to [Options.DefaultBatcher]).
func (m *Message[T]) Batcher() string { return m.batcher }

// SetBatchKey sets the message's batch key: only messages with the same key share a batch.
// The default key is "".
func (m *Message[T]) SetBatchKey(key string) { m.batchKey = key }

// BatchKey returns the message's batch key.
func (m *Message[T]) BatchKey() string { return m.batchKey }

// Attempt returns which attempt at handling the message this is: 1, then 2 and on when the
// failure policy ([RetryTransient], [RetryThenFail]) sends a failed message through its
// handler again. Attempts count per handler: a message that needed retries in one stage
// starts at 1 in the next.
func (m *Message[T]) Attempt() int { return int(m.attempt) + 1 }
