// Package gostreams connects reugn/go-streams (v0.13.0) to Sluice pipelines, in both
// directions, in a package of its own so that the core does not import go-streams.
//
// [NewSource] turns any go-streams Source (or Flow: anything with an outlet) into a
// [pipeline.Producer]: the elements it emits become messages. [NewSink] is a go-streams Sink
// that is also a producer: a go-streams flow ends in it (flow.To(sink)) and a pipeline
// consumes what arrives there, with demand, batching and acknowledgements that go-streams
// itself does not have.
//
// go-streams elements are untyped (any). An element that is not a T becomes a message that
// has already failed with [ErrType]: it skips the processors and is acknowledged as failed,
// through the pipeline's failure handler, rather than being dropped silently.
package gostreams
