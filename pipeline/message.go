package pipeline

import (
	"slices"

	"github.com/sluice-go/sluice/ack"
)

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
	fanned       bool // acknowledger is a *fanout: SetBatchers named several batchers
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
// told with. Producers call it; handlers must not (on a fanned-out copy in a batch handler it
// does nothing).
func (m *Message[T]) SetAcknowledger(a ack.Acknowledger, ref ack.Ref) {
	if m.copy() {
		return
	}
	m.ref = ref
	if m.fanned { // keep the routing, with the new acknowledger
		m.acknowledger = &fanout{names: m.fan().names, a: a}
		return
	}
	m.acknowledger = a
}

// Acknowledger returns the message's acknowledger (nil when it needs none).
func (m *Message[T]) Acknowledger() ack.Acknowledger {
	if m.fanned {
		return m.fan().a
	}
	return m.acknowledger
}

// fan returns the fan-out state of a message routed to several batchers: while it is routed
// to several, it holds the place of the message's acknowledger (which it keeps), so that
// Message grows by no field for fan-out.
func (m *Message[T]) fan() *fanout { return m.acknowledger.(*fanout) }

// copy reports whether m is the copy of a fanned-out message that a batcher has (its routing
// is done: routing it again does nothing).
func (m *Message[T]) copy() bool { return m.fanned && m.fan().claimed.Load() }

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
// routed to a batcher the pipeline does not have fails with [ErrUnknownBatcher] (bad data).
// Until a handler calls it (or [Message.SetBatchers]), a message goes to
// [Options.DefaultBatcher]. It replaces any earlier routing and allocates nothing.
func (m *Message[T]) SetBatcher(name string) {
	if m.fanned {
		if m.copy() {
			return
		}
		m.acknowledger, m.fanned = m.fan().a, false
	}
	m.batcher, m.routed = name, true
}

// SetBatchers routes the message to every named batcher (fan-out): once the processors are
// done with it, each of those batchers gets a copy of it, which it batches and hands to its
// batch handler like any other message. Empty and repeated names are ignored; with one name
// left SetBatchers is SetBatcher, with none it is SetBatcher(""). It replaces any earlier
// routing. An unknown name fails the whole message with [ErrUnknownBatcher] before any copy
// is made.
//
// The message is acknowledged once, when every copy has finished: as successful when all of
// them succeeded, else as failed with the first copy's failure. It counts once under
// [Options.MaxInFlight]. Each copy follows the failure policy on its own batcher: a copy that
// fails transiently is retried there only, while the other copies go on; a copy that ends as
// bad data is seen by the failure handler (its [Message.Batcher] names the batcher that failed
// it) and makes the message acknowledged as failed.
//
// Each copy is a Message value of its own, so a batch handler that replaces m.Data, fails m or
// sets its batch key changes its copy only. What Data points to (a map, a slice, a pointer's
// target) is shared by the copies, which batch handlers run concurrently: they must not
// modify it. A batch key set before SetBatchers is the key of every copy. In a batch handler,
// a copy's routing is done: SetBatcher and SetBatchers do nothing to it.
//
// SetBatchers allocates (a copy of names and the state the copies share); the pipeline
// allocates nothing more per message for fan-out.
func (m *Message[T]) SetBatchers(names ...string) {
	if m.copy() {
		return
	}
	distinct := 0
	var first string
	for i, n := range names {
		if n != "" && !slices.Contains(names[:i], n) {
			if distinct == 0 {
				first = n
			}
			distinct++
		}
	}
	if distinct <= 1 {
		m.SetBatcher(first)
		return
	}
	f := &fanout{names: make([]string, 0, distinct), a: m.Acknowledger()}
	for i, n := range names {
		if n != "" && !slices.Contains(names[:i], n) {
			f.names = append(f.names, n)
		}
	}
	m.batcher, m.routed, m.acknowledger, m.fanned = first, true, f, true
}

// Batcher returns the name of the batcher the message was routed to with [Message.SetBatcher],
// or "" when it was not routed (it then goes to [Options.DefaultBatcher]). After
// [Message.SetBatchers] it returns the first of the names; in a batch handler and a failure
// handler, a fanned-out copy returns the name of its own batcher.
func (m *Message[T]) Batcher() string { return m.batcher }

// Batchers returns the names of the batchers the message was routed to: those given to
// [Message.SetBatchers], or the one given to [Message.SetBatcher] (none for ""). It returns nil
// when the message was not routed (it then goes to [Options.DefaultBatcher]). The slice is
// the caller's.
func (m *Message[T]) Batchers() []string {
	switch {
	case m.fanned:
		return slices.Clone(m.fan().names)
	case m.routed && m.batcher != "":
		return []string{m.batcher}
	}
	return nil
}

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
