// Package producer holds general [pipeline.Producer] implementations: a Go channel ([Chan]),
// an iterator ([Seq]), a slice ([Slice]) and a generator function ([Generate]). Package
// producer/gostreams adapts reugn/go-streams sources and sinks; package
// pipeline/pipelinetest has a producer that tests push messages into.
//
// # The contract
//
// A producer is pulled: the pipeline calls Produce with a slice whose length is its demand,
// and the producer fills at most that many messages, blocking until it has at least one, its
// context ends, or its input ends ([pipeline.ErrEndOfInput]). [Producer] is the contract, an
// alias of [pipeline.Producer] where it is documented in full.
//
// # Acknowledgements
//
// Each producer here takes an [ack.Acknowledger] (nil for none) and gives the n-th message
// it produces the reference ack.Ref{N: n}, counting from 0, so that the acknowledger can tell
// the messages apart.
//
// # Rate limiting
//
// Rate limits are set on the pipeline ([pipeline.Options].RateLimit), not on the producer, so
// that they can be changed while running ([pipeline.Pipeline.SetRateLimit]) whatever the
// producer.
package producer
