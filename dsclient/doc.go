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
// [Observer]. [Client.Stream] returns a [Stream] handle: cheap, no I/O until used. Invalid
// options are reported all at once, each named, in an [*OptionsError] (as every options type
// of the package does: [RetryPolicy.Validate], [ReadOptions.Validate],
// [ConsumerOptions.Validate]); zero values mean the documented defaults.
//
//	c, err := dsclient.NewClient(dsclient.WithHeaderFunc("Authorization", token))
//	s := c.Stream("https://streams.example.com/v1/stream/orders")
//	_, err = s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"})
//	_, err = s.AppendJSON(ctx, order, dsclient.AppendOptions{})
//
// Operations: [Stream.Create], [Stream.Head], [Stream.Delete], [Stream.Append],
// [Stream.AppendJSON], [AppendJSONBatch] and [Stream.CloseStream].
//
// A stream URL may carry credentials in its user info (https://user:token@host/...). They are
// sent with every request but never shown or stored: [Stream.URL], every [*Error] and every
// observer event carry the URL without user info, query parameters or fragment, and so do
// the log lines, metric labels and checkpoint keys built from them.
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
// [ReadOptions.MaxBytes] (64 MiB by default) bounds what a read holds in memory on every
// path: the largest item, the whitespace between items, an SSE batch, a whole chunk read
// into memory. More is [ErrTooLarge], after reading little more than the limit.
//
// # Failures and retries
//
// Every error is an [*Error] wrapping a sentinel kind ([ErrNotFound], [ErrStreamClosed],
// [ErrStaleEpoch], …), matched with [errors.Is] and read with [errors.As]. Transient failures
// — network errors, timeouts, 429 with Retry-After, 5xx — are retried with exponential
// backoff and jitter; other 4xx never are. One small retrier (a [RetryPolicy], its count of
// attempts, the observer and the one sleep) serves every loop: single operations, reads and
// the [Consumer]; [Backoff] exposes it to callers that loop themselves. The default policy
// makes 6 attempts; [UnlimitedAttempts] retries for as long as the context lives, which
// long-running reads ask for with [ReadOptions.Retry] and the Consumer does by default.
//
// Reads retry by themselves. When a body is cut, stalls or (with [ParseRetry]) arrives
// malformed, the chunk asks for its start offset again and skips what it already delivered
// — data at an offset never changes — so nothing is skipped or repeated; an SSE response
// that ends, breaks or goes silent is reconnected from the last control event. A read counts
// its failures since it last made progress (an item or byte delivered, a response read to
// its end), so a server that answers and then breaks every body is asked again ever more
// slowly, not many times a second. Only errors retrying cannot fix reach the caller: 404,
// 410 and other 4xx, a malformed body under [ParseFail] (the default: one [ErrParse] error,
// naming the stream, the offset and the byte position, which the chunk's later reads
// repeat), an item over MaxBytes, the caller's cancellation, and the last failure of a
// bounded policy. The reader stays usable after them: [ChunkReader.Next] resumes from
// [ChunkReader.Offset].
//
// A plain append is retried only when that is safe: the request provably never reached the
// server, or the server refused it unprocessed (429, 503); appends with idempotent-append
// headers are always safe to retry.
//
// # Deadlines
//
// A connection that stops sending is given up and the read resumes from its offset:
// a request that gets no answer, or a body or SSE response that sends nothing (no data, no
// keep-alive) for [ReadOptions.IdleTimeout] (60s by default); a long-poll that the server
// does not answer within its long-poll timeout plus a margin. The client learns that
// timeout from the longest long-poll that ended without data, or takes it from
// [ReadOptions.LongPollTimeout].
//
// # Offsets only grow
//
// Protocol offsets sort lexicographically in stream order (section 8). A response whose
// next offset is lower than the offset asked for, or equal to it while carrying data (a
// broken server, or the file-backed reference server after a crash), is never followed: its
// data is not delivered, the refusal is reported ([ErrOffsetRegressed]; observers that
// implement [OffsetObserver] count it), and the read backs off and asks again from the
// offset it holds. So a read never moves backwards and never loops re-delivering data.
// Sentinels are never compared.
//
// # Writer and Consumer
//
// [Writer] is the idempotent writer (the protocol's idempotent producer, section 5.2.1):
// batching, pipelining, epochs, auto-claim, duplicate detection. It is safe across process
// restarts with its defaults ([EpochClaim]: each Writer claims its ID in a fresh epoch, so a
// new lifetime's batches are never taken for the old one's) and retries transient failures
// for as long as it lives. [Consumer] is a long-running reader that hands each chunk to a
// handler and commits its offset only after the handler succeeds.
//
// # Typed reads and decoders
//
// Typed reads ([JSONItems], [ReadJSON], [Chunk.DecodeItem]) delimit each item with the
// bounded scan of [Chunk.NextItem] and then decode it with [ReadOptions.JSON], a
// [JSONDecoder]: [StdJSON] (encoding/json) by default, or a faster decoder with the same
// semantics, such as the one package dsclient/segmentiojson adapts.
//
// # Subscriptions
//
// A [Subscription] is a server-held cursor over many streams (PROTOCOL.md sections 6 and 7):
// streams are linked by a glob pattern ("events/*", "tenants/**") and by explicit membership,
// each with an acked offset, and the server wakes workers when a linked stream has data past
// it. [Client.Subscription] makes a handle from the stream root URL and an id;
// [Subscription.Create] creates or re-confirms it with a [SubscriptionConfig] (another
// configuration is [ErrSubscriptionConflict]); [Subscription.Get], [Subscription.Delete],
// [Subscription.AddStreams] and [Subscription.RemoveStream] manage it.
//
// Pull-wake: the server appends a [WakeEvent] to the subscription's wake stream; workers
// follow it with one live read and take the lease with [Subscription.Claim]. The [Claim]
// names its generation, lease and streams ([Claim.Pending], each with its acked and tail
// offset); the worker reads each stream from its acked offset ([Subscription.Stream],
// [Stream.Reader]), heartbeats with [Claim.Ack] well inside the lease (acks applied, lease
// extended), acks done when caught up, or releases ([Claim.Release]). A claim while another
// worker holds the lease fails with [ErrAlreadyClaimed] (its [SubscriptionError] names the
// holder and generation), one with nothing to do with [ErrNoPendingWork]. When a lease
// passes, the server wakes the subscription at the next generation and the old holder's acks
// fail with [ErrFenced], moving no cursor. The pipeline source built on this, a worker that
// does all of it, is durablestreams.SubscriptionProducer in package source/durablestreams.
//
// Webhooks: a [WebhookReceiver] is an http.Handler that verifies each delivery's Ed25519
// signature over "<t>.<raw body>" with the server's key named by kid (from the server's key
// set, {root}__ds/jwks.json, cached by a [JWKS]), refuses timestamps outside its replay
// window ([ErrSignatureInvalid], [ErrSignatureExpired]) and hands the [Wake] to a
// [WakeHandler], which finishes it by answering done or later through [Wake.Callback].
//
// # Testing
//
// dstest.NewTransport serves a handler (the in-process server, or a deliberately broken
// one) to a client without sockets, so that reads blocked on it are durably blocked in a
// [testing/synctest] bubble: backoff, timeouts and reconnects are tested on the bubble's
// fake clock instead of with sleeps.
//
// # Observability
//
// An [Observer] (set with [WithObserver]) receives request, retry, reconnect, chunk, consumer
// and writer events, and, through [OffsetObserver], refused offsets; the metrics package
// turns them into Prometheus collectors.
package dsclient
