package ack

// Ref identifies one message to the [Acknowledger] that produced it. The pipeline carries it
// unchanged from the producer to the acknowledger and never interprets it.
//
// Both fields are the producer's to define. Storing a pointer in Ptr does not allocate, so a
// producer typically puts a pointer to its per-chunk state there (for example a tracked chunk of
// a [Tracker]) and a per-message number, such as the index within the chunk or a delivery tag, in N.
type Ref struct {
	// Ptr is producer-defined, typically a pointer to per-chunk state shared by many messages.
	Ptr any
	// N is producer-defined, typically the message's index in its chunk or a delivery tag.
	N uint64
}

// Failure is a message that ended in failure: its reference and why.
type Failure struct {
	// Ref is the message's reference, as the producer set it.
	Ref Ref
	// Err is the reason: the handler's error, a recovered panic, or a batch failure. Never nil.
	Err error
	// Halt reports that the pipeline is halting because of this failure (the Halt failure
	// policy). An offset-committing acknowledger must not commit past this message.
	Halt bool
}

// Acknowledger is told how the messages it produced ended.
//
// The pipeline calls Ack once per batch (or once per group of messages that went to no batcher)
// for every distinct Acknowledger among the group's messages, with the messages that succeeded
// and the ones that failed. Every message appears in exactly one call, exactly once.
//
// The slices belong to the pipeline and are valid only during the call: copy what must outlive
// it. Ack is called from the pipeline's goroutines, possibly from several at once, so
// implementations must be safe for concurrent use; it runs on the batch processor's (or
// processor's) goroutine, so it should return quickly.
type Acknowledger interface {
	Ack(successful []Ref, failed []Failure)
}

// AcknowledgerFunc adapts a function to [Acknowledger].
type AcknowledgerFunc func(successful []Ref, failed []Failure)

// Ack calls f(successful, failed).
func (f AcknowledgerFunc) Ack(successful []Ref, failed []Failure) { f(successful, failed) }

// Nop is an [Acknowledger] that does nothing, for producers whose messages need no
// acknowledgement.
var Nop Acknowledger = AcknowledgerFunc(func([]Ref, []Failure) {})
