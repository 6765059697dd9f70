// Package durablestreams holds the pipeline sources built on the Durable Streams client
// (package github.com/sluice-go/sluice/dsclient): the single-stream [Producer] and the
// [DeadLetter] failure handler.
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
