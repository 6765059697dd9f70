// Package dssink writes pipeline batches to an output durable stream with exactly-once
// effect: stream → pipeline → stream, so that transformed events and analytics results flow
// back into Durable Streams, and a batch the pipeline delivers again after a crash is not
// appended twice. A [Sink] is a [github.com/sluice-go/sluice/pipeline.BatchHandler].
//
//	sink, err := dssink.New(dssink.Options[Order]{
//		Stream: dsclient.NewStream(base + "/orders-enriched"), // a JSON stream that exists
//		ID:     "enrich",                                      // stable across restarts
//		Value: func(m *pipeline.Message[Order]) (any, error) {
//			return Enriched{ID: m.Data.ID, Total: m.Data.Amount * 1.2}, nil // nil: no item
//		},
//	})
//	...
//	Processors: []pipeline.ProcessorOptions[Order]{{Handler: check, Concurrency: 1}}, // in order
//	Batchers: map[string]pipeline.BatcherOptions[Order]{
//		"out": {Handler: sink, BatchSize: 500, BatchTimeout: 100 * time.Millisecond}, // one at a time
//	},
//
// Each message gives one item: Value's JSON value (or values, with [Many]: an aggregate that
// one event completes, say), or Bytes' bytes, or nothing. A batch's items go to the output
// stream in source-position order, in as few append requests as MaxRequestBytes allows; one
// message's item is never split between requests.
//
// # How a redelivery is recognised
//
// Every message of a Durable Streams producer carries a stable position: its source stream
// (Metadata.Stream) and the number of messages before it there (Metadata.Position), the
// same on every delivery. The sink writes the messages of one source stream and batch key
// under one idempotent-producer ID of the output stream (protocol section 5.2.1), and
// numbers each append request by source position: its producer epoch is the position of
// the request's last message, its sequence 0. The server keeps, for each producer ID, the
// highest epoch appended, in the same step as the append, and refuses a request below it
// (403) or finds it a duplicate (204) without storing anything. So the output stream holds
// each position's item once, however often its message is delivered, and the producer
// ID's epoch is the last position written.
//
// A redelivered batch need not be cut as the first delivery was (batch boundaries follow
// timing), so the sink must know where to cut it: before the first batch of an ID (and
// after an append whose outcome it could not learn), it asks the server for the ID's epoch
// with a probe, an append numbered (first position, 2^53-1), which the server refuses
// whatever it holds: 403 names a higher epoch, a 409 sequence gap says the epoch is that
// position (or that the ID has no state), a 400 says it is lower. Messages at or below the
// last position written are then skipped (they succeed: their items are in the stream), the
// others appended. A probe costs one round trip per ID per run.
//
// The protocol's other sequence, Stream-Seq (section 5.2), is not used: the server keeps one
// per stream, so several sources (or keys) could not share an output stream, and its 409
// does not say the last value, so a redelivered batch cut differently from the first
// delivery would be appended partly twice. Nor is the [dsclient.Writer] used: its epochs
// and sequences number its own batches and lifetimes, where these must be source positions.
//
// # Conditions
//
//   - Positions are stable: the source is the Durable Streams producer (package
//     github.com/sluice-go/sluice/source/durablestreams), or another producer that documents
//     stable positions. Positions are at most 2^53-1.
//   - For each source stream and batch key, messages reach the sink in position order. Keep
//     the order through the processors (Concurrency 1 — the default is GOMAXPROCS — or
//     PartitionBy on the batch key or the source stream) and into the batch handler (the
//     batcher's Concurrency 1, its default, or Ordered true). Gaps are fine: failed or
//     filtered messages simply have no item. Under the default failure policy the pipeline
//     retries a batch's transient failures before it hands the batch processor another
//     batch, so retries keep the order.
//   - A message at or below a position the sink wrote for its stream and key in the same run
//     is refused: it fails with [ErrOutOfOrder], as bad data, rather than being written out
//     of order or taken for one written already. It goes to the failure handler (a
//     dead-letter stream), and a later run, which cannot tell it from a redelivery, skips
//     it: a pipeline that does not keep the order loses those items from the output, so
//     watch for ErrOutOfOrder. (After an append of unknown outcome the sink learns the last
//     position again from the server, and cannot tell the positions below it apart either.)
//   - One sink (one process) writes to an output stream under one ID, and the ID and the
//     batch keys stay the same across restarts: they name the producer state that records
//     what was written. Several sinks may share an output stream with different IDs; their
//     items interleave.
//   - The server keeps a producer ID's state as long as the stream: the reference server's
//     in-memory store drops an ID idle for 7 days, and its file-backed store, killed with
//     SIGKILL, may lose the last appends' producer state; a batch redelivered after that is
//     appended again.
//
// # Failures
//
// An item that does not encode, an invalid JSON item for a JSON stream, a position out of
// range or out of order, and an item the server refuses alone (400, 413) fail their message
// as bad data ([github.com/sluice-go/sluice/pipeline.Permanent]): it goes to the failure
// handler, and the rest of the batch is written. Anything else (the server unreachable
// beyond the client's retries, the output stream missing or closed) fails the messages not
// yet written with a transient error, which the pipeline retries under its default policy
// and never commits past; the next attempt probes the server again and writes what is
// missing, once.
package dssink
