// Package durablestreams is a client for the Durable Streams protocol: HTTP append-only
// streams with offsets, catch-up and live reads (long-poll and Server-Sent Events), stream
// closure, and idempotent producers.
//
// # Handles
//
// A [Client] holds the HTTP client, default headers and query parameters (static, or
// functions evaluated on every request, retry and reconnect), the [RetryPolicy] and an
// [Observer]. [Client.Stream] returns a [Stream] handle: cheap, no I/O until used.
//
//	c, err := durablestreams.NewClient(durablestreams.WithHeaderFunc("Authorization", token))
//	s := c.Stream("https://streams.example.com/v1/stream/orders")
//	_, err = s.Create(ctx, durablestreams.CreateOptions{ContentType: "application/json"})
//	_, err = s.AppendJSON(ctx, order, durablestreams.AppendOptions{})
//
// Operations: [Stream.Create], [Stream.Head], [Stream.Delete], [Stream.Append],
// [Stream.AppendJSON], [AppendJSONBatch] and [Stream.Close].
//
// # Reading
//
// Offsets ([Offset]) are opaque tokens; [Beginning] and [Now] are the sentinels. A read
// starts at an offset in a [LiveMode]: [LiveOff] stops at the tail, [LiveLongPoll],
// [LiveAuto] and [LiveSSE] follow the stream. A closed stream is end of input in every mode.
//
// The base of every read is the pull-based [ChunkReader] from [Stream.Reader]: each response
// (or each SSE batch) is a [Chunk] whose metadata — start offset, next offset, cursor,
// up-to-date, closed ([ChunkInfo]) — is known before any item is read, and whose items are
// decoded from the body only when asked for ([Chunk.NextItem], [Chunk.DecodeItem],
// [Chunk.Read]). A caller that pauses holds one item and a bounded buffer, even when one
// response carries a 30 MB stream. Iterators are built on it: [Stream.Chunks],
// [Stream.RawItems], [JSONItems], [Stream.Bytes] and [Stream.Text]; and whole-result reads:
// [Stream.ReadAll] and [ReadJSON].
//
// # Failures and retries
//
// Every error is an [*Error] wrapping a sentinel kind ([ErrNotFound], [ErrStreamClosed],
// [ErrStaleEpoch], …), matched with [errors.Is] and read with [errors.As]. Transient failures
// (network errors, 429 with Retry-After, 5xx) are retried with exponential backoff and jitter;
// other 4xx never are. A read whose connection drops in the middle of a body resumes by
// itself from the chunk's start offset and skips what it already delivered — data at an
// offset never changes — so nothing is skipped or repeated. A plain append is retried only
// when that is safe: the request provably never reached the server, or the server refused it
// unprocessed (429, 503); appends with idempotent-producer headers are always safe to retry.
//
// # Writer and Consumer
//
// [Writer] is the idempotent producer: batching, pipelining, epochs, auto-claim, duplicate
// detection. [Consumer] is a long-running reader that hands each chunk to a handler and
// commits its offset only after the handler succeeds.
//
// # Pipeline producer
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
// An [Observer] (set with [WithObserver]) receives request, retry, reconnect, chunk, consumer
// and writer events; a [ProducerObserver] (ProducerOptions.Observer) receives the
// producer's chunks, commits, checkpoint saves and 410 resumes, and [Producer.Stats] its lag;
// the metrics package turns them into Prometheus collectors.
package durablestreams
