package pipeline

// Decoder is an optional interface of a [Producer] that can leave the decoding of its
// messages to the pipeline's processors, so that decoding runs in parallel on the first
// pool's goroutines rather than on the producer's one.
//
// When the first processor pool has no PartitionBy (which may read Data before any processor
// runs), the pipeline calls DeferDecoding once, before the first Produce: from then on the
// producer may hand out messages whose Data is not decoded yet. The first pool's processors
// then call DecodeMessages with every chunk of messages they take, before the pool's
// MessagePreparer and Handler see them; DecodeMessages fills each message's Data, and fails
// (with [Message.Fail]) the messages that do not decode. It is called from many goroutines
// at once, each with its own messages, and must not block.
//
// A producer that is not told to defer decodes its messages itself, so that it works outside
// a pipeline too (tests, the producer conformance suite).
type Decoder[T any] interface {
	DeferDecoding()
	DecodeMessages(msgs []Message[T])
}
