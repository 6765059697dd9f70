// Package durablestreams holds the pipeline sources built on the Durable Streams client
// (package github.com/sluice-go/sluice/dsclient): the single-stream [Producer] and the
// [DeadLetter] failure handler.
//
// The folder keeps the protocol's name, as the pipeline's other sources are named after what
// they read; the client it builds on is dsclient, so both import side by side without a
// rename.
//
// # Producer
//
// [Producer] makes a stream the source of a pipeline (package
// github.com/sluice-go/sluice/pipeline). It reads only when the pipeline asks, decodes each
// JSON item into the pipeline's data type as the response streams in (an item that does not
// decode becomes a failed message carrying a [*DecodeError]; byte and text streams give one
// message per chunk or per [ProducerOptions.Split] token), and never holds more than
// [ProducerOptions.MaxPending] messages fetched and unfinished, pausing the response body
// when it must. Each chunk is tracked by an [ack.Tracker] with the offset after it: the
// committed offset passes a chunk only once every message of it has been acknowledged,
// whatever order the acknowledgements arrive in ([CommitOnAck], at-least-once), or as soon
// as it is received ([CommitOnReceive], at-most-once). The committed offset is saved to a
// checkpoint store as it advances, coalesced, and at the end of every run; the next run
// starts there. Live modes: [LiveOff] ends the run at the tail; long-poll and SSE follow the
// stream; a closed stream ends the run in every mode, and a stop cancels a live read at
// once. 404 and 410 end the run with an [*Error] unless [NotFoundWait] or
// [GoneResumeEarliest] says otherwise. [DeadLetter] is a failure handler that stores failed
// messages in a dead-letter stream before they are acknowledged.
//
// Every message carries its source position in its pipeline.Metadata: ChunkStart (the
// offset its chunk was read from), ChunkNext and Index (its place in the chunk), and a
// [*ChunkMeta] ([ChunkMetaOf]) with the stream URL, cursor and up-to-date flag. A sink that
// must be idempotent can key rows by (stream, ChunkStart, Index): a chunk re-read after a
// restart starts at a committed offset, so the positions repeat as long as the chunk
// boundaries do — as they do for data already written when the first run read it (a live
// tail may be cut into chunks differently on a re-read; key such rows by an identifier in
// the data).
//
// # Observability
//
// A [ProducerObserver] (ProducerOptions.Observer) receives the producer's chunks, commits,
// checkpoint saves and 410 resumes, and [Producer.Stats] its lag; the metrics package turns
// them into Prometheus collectors.
package durablestreams
