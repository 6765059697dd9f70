// Package durablestreams holds the pipeline sources built on the Durable Streams client
// (package github.com/sluice-go/sluice/dsclient): the single-stream [Producer], the
// [SubscriptionProducer] that reads the many streams of Durable Streams subscriptions with
// workers on any number of hosts, and the [DeadLetter] failure handler.
//
// The folder keeps the protocol's name, as the pipeline's other sources are named after what
// they read; the client it builds on is dsclient, so both import side by side without a
// rename: durablestreams.NewProducer(durablestreams.ProducerOptions[T]{Stream:
// dsclient.NewStream(url)}).
//
// # Producer
//
// [Producer] makes a stream the source of a pipeline (package
// github.com/sluice-go/sluice/pipeline). It reads only when the pipeline asks, and only as
// many messages as it asks for, so the pipeline's in-flight bound (MaxInFlight) bounds what
// the producer holds too: with a stuck sink it stops reading, in the middle of a response if
// need be (a 30 MB catch-up response is paused, not buffered). Each JSON item is decoded into
// the pipeline's data type (an item that does not decode becomes a failed message carrying a
// [*DecodeError], which the pipeline treats as bad data); byte and text streams give one
// message per response or per [ProducerOptions.Split] token.
//
// # Positions
//
// Every message carries a position: pipeline.Metadata.Stream is the stream's path and
// pipeline.Metadata.Position the number of messages before it in the stream, counted from the
// pipeline's origin. The origin is the beginning of the stream for a pipeline that first
// started at dsclient.Beginning (the default); for one that first started at dsclient.Now or
// at an offset token, it is that first start. The number travels in every checkpoint, so a
// restart, a resume inside a response and a re-read cut into responses differently (whole-
// stream catch-up responses, 4 KiB chunks, long-poll, SSE) all give a message the same
// position. A sink can therefore key rows by (Stream, Position) and insert if absent, or keep
// a high-water mark per stream, and apply every message once.
//
// Positions are not defined across origins: two pipelines with different origins (or one
// whose checkpoint was deleted and which then started at Now) number the same message
// differently; a checkpoint saved by a version of Sluice before positions carries no number,
// and counting starts again at 0 there; after a 410 resumed with [GoneResumeEarliest] the
// messages in the gap are never seen and positions go on from the last one delivered. For a
// byte or text stream a message is a response or a Split token of one response, so its
// boundaries, and so its positions, repeat only where the server cuts responses the same way;
// key such messages by something in the data, or read JSON streams.
//
// # Acknowledgements and the committed position
//
// The messages of each Produce call are tracked as one run by an [ack.Tracker], with the
// position after them: the committed position ([ack.Position]: the offset a read started
// from, plus how many messages after it are done) is the position after the longest prefix
// of messages that are done, whatever order acknowledgements arrive in ([CommitOnAck],
// at-least-once), and may point inside a response, so a stop or a crash in the middle of a
// 1M-message response re-delivers only what was in flight (at most the pipeline's
// MaxInFlight) plus what was committed after the last checkpoint save. With
// [CommitOnReceive] (at-most-once) the position after each Produce call is committed and
// saved before its messages are handed out. The committed position never moves backwards; it
// is saved to a checkpoint store as it advances (at most once per CheckpointInterval) and at
// the end of every run, and the next run starts there.
//
// Checkpoints are keyed by the pipeline's name and the stream's path
// (ack.CheckpointKey(Name, path)), not its host, so a server that moves to another host name
// keeps its pipelines' checkpoints. A checkpoint saved by an earlier version under the key
// made from the stream's whole URL is read when the new key has none, and the run then saves
// under the new key. The producer logs, at start, where it starts from: the checkpoint's key
// and position, or the configured offset. A checkpoint store that fails to load (a database
// that is down) is retried with backoff: it delays the start, it does not fail the run.
//
// # Subscriptions
//
// [SubscriptionProducer] is the source of a pipeline run by any number of workers, in any
// number of processes and hosts, over the streams of one or more Durable Streams
// subscriptions (PROTOCOL.md sections 6 and 7): many streams without a read per stream and
// without a coordinator of Sluice's own — the server decides who works on what. The worker
// follows each pull-wake subscription's wake stream with one live read and claims the
// subscription when a wake names it, at start and every ClaimInterval; a claim it wins is
// its lease on the linked streams with pending work, which it reads from their committed
// positions, taking turns (MaxMessagesPerTurn messages each, at most MaxOpenStreams read at
// once, so that its connections do not grow with the number of streams). Webhook
// subscriptions deliver their wakes to [SubscriptionProducer.WebhookHandler]; the work is
// the same. Messages carry the Metadata of a [Producer]'s (Stream: the stream URL's path;
// Position: its number in the stream), so the same sinks work; streams interleave, and
// partitioning the first pool with pipeline.PartitionByKey on Metadata.Stream keeps each
// stream's order.
//
// Per stream, the committed position advances as for one stream: past a contiguous prefix
// of finished messages, possibly inside a response. The server's cursor can only be an
// offset at a response boundary, so the precise position — and the numbering of positions —
// lives in the checkpoint store, keyed by ack.CheckpointKey(Name, path). A worker saves a
// stream's position before it acks the server (an ack carries at most the start of the
// response the saved position lies in), so the store is never behind the cursor; a claim
// reads each stream from whichever is further, the stored position or the cursor (a stored
// position behind the cursor, which only something else acking can cause, is ignored, and
// positions then count from 0 at the cursor). Heartbeats (every HeartbeatInterval, a third
// of the lease) renew the lease with what is saved; once every pending stream is read to its
// tail and its messages are committed and saved, the claim is acked done with the final
// offsets, and claimed again at once when the server says more work arrived. On drain, or
// after MaxClaimAge, the worker stops reading, lets the pipeline finish what it holds, saves,
// acks and releases the claim.
//
// With one store shared by every worker (ack/pgstore across hosts, one ack.MemoryStore
// between the pipelines of a process), positions are the same whichever worker delivers a
// message, and a sink keyed by (Stream, Position) applies every message once even when a
// worker dies half way through a response: the next holder starts where the last save
// stands, inside the response, re-delivering at most what was in flight plus one
// CheckpointInterval of commits. Without a shared store delivery is at least once: the next
// holder reads from the server's cursor — the start of the last response acked, which on a
// server that answers a catch-up with the whole stream is where the claim began — and its
// positions count from there.
//
// A claim whose heartbeats have not succeeded by LeaseMargin (a fifth of the lease) before
// its lease would pass is stopped on the worker's own clock, and a claim the server fences
// (FENCED, the subscription deleted, the token refused) the same way: its streams are no
// longer read, their positions no longer saved, nothing more is acked, and its messages
// still in the pipeline are left to the next holder — their acknowledgements change nothing.
// A paused process that resumes after its lease finds its claim stopped and is fenced.
// Claims are reported to SubscriptionOptions.Observer (the metrics package implements
// [SubscriptionObserver]) and by [SubscriptionProducer.Stats]; [RunWorker] is a worker
// process's main.
//
// # Live modes and failures
//
// dsclient.LiveOff ends the run at the tail; long-poll and SSE follow the stream; a closed
// stream ends the run in every mode, and a stop cancels a live read at once. Transient read
// failures are retried by the client, resuming where the read stood. 404 and 410 end the run
// with a *dsclient.Error unless [NotFoundWait] or [GoneResumeEarliest] says otherwise.
// [DeadLetter] is a failure handler that stores failed messages in a dead-letter stream before
// they are acknowledged.
//
// # Observability
//
// A [ProducerObserver] (ProducerOptions.Observer) receives the producer's responses, the
// messages of each Produce call, commits, checkpoint saves and 410 resumes, and
// [Producer.Stats] its lag; the metrics package turns them into Prometheus collectors.
package durablestreams
