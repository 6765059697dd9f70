// Package dsclient is a client for the Durable Streams protocol: HTTP append-only
// streams with offsets, catch-up and live reads (long-poll and Server-Sent Events), stream
// closure, and idempotent writers.
//
// It imports nothing of the pipeline runtime: a program that only reads or writes streams
// uses it alone. The pipeline source built on it is package
// github.com/sluice-go/sluice/source/durablestreams; the in-process server for tests and
// embedding is package github.com/sluice-go/sluice/dsclient/dstest.
//
// The name says what the package is — the Durable Streams client — so that it can be
// imported beside the source package (durablestreams) without a rename, and so that its
// names read without repetition: dsclient.Stream, dsclient.Writer, dsclient.Offset.
//
// # Handles
//
// A [Client] holds the HTTP client, default headers and query parameters (static, or
// functions evaluated on every request, retry and reconnect), the [RetryPolicy] and an
// [Observer]. [Client.Stream] returns a [Stream] handle: cheap, no I/O until used.
//
//	c, err := dsclient.NewClient(dsclient.WithHeaderFunc("Authorization", token))
//	s := c.Stream("https://streams.example.com/v1/stream/orders")
//	_, err = s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"})
//	_, err = s.AppendJSON(ctx, order, dsclient.AppendOptions{})
//
// Operations: [Stream.Create], [Stream.Head], [Stream.Delete], [Stream.Append],
// [Stream.AppendJSON], [AppendJSONBatch] and [Stream.CloseStream].
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
// unprocessed (429, 503); appends with idempotent-append headers are always safe to retry.
//
// # Writer and Consumer
//
// [Writer] is the idempotent writer (the protocol's idempotent producer, section 5.2.1): batching, pipelining, epochs, auto-claim, duplicate
// detection. [Consumer] is a long-running reader that hands each chunk to a handler and
// commits its offset only after the handler succeeds.
//
// # Observability
//
// An [Observer] (set with [WithObserver]) receives request, retry, reconnect, chunk, consumer
// and writer events; the metrics package turns them into Prometheus collectors.
package dsclient
