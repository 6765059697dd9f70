// Package pipeline runs backpressured, acknowledged dataflow pipelines: a demand-driven
// producer, pools of processors that handle one message at a time, keyed batchers that group
// messages by size, bytes and time for bulk sinks, and acknowledgements that tell the source
// how every message ended, so that it can commit its offset.
//
// A pipeline is one declarative value, [Options], validated by [New] and run by
// [Pipeline.Run]:
//
//	p, err := pipeline.New(pipeline.Options[Order]{
//		Producer:   src,                                  // a Producer[Order]
//		Processors: []pipeline.ProcessorOptions[Order]{{Handler: decode, Concurrency: 4}},
//		Batchers: map[string]pipeline.BatcherOptions[Order]{
//			"db": {Handler: insert, BatchSize: 500, BatchTimeout: 200 * time.Millisecond},
//		},
//		DefaultBatcher: "db",
//	})
//	if err != nil { ... } // an *OptionsError naming every bad field
//	err = p.Run(ctx)      // until ctx ends, Stop is called, or the input ends; then drains
//
// # Topology
//
//	                 demand (credits)                    acknowledgements
//	       ┌──────────────────────────────────────────────────────────────────┐
//	       ▼                                                                  │
//	┌────────────┐  chunks  ┌──────────────┐      ┌───────────┐  batches  ┌──────────────────┐
//	│  Producer  │─────────▶│ processors   │─┬───▶│ batcher   │──────────▶│ batch processors │
//	│ (Produce)  │          │ pool 1 … N   │ │    │ "db"      │           │ (Concurrency)    │
//	└────────────┘          └──────────────┘ │    └───────────┘           └──────────────────┘
//	                                         │    ┌───────────┐           ┌──────────────────┐
//	                                         ├───▶│ batcher   │──────────▶│ batch processors │
//	                                         │    │ "stats"   │           └──────────────────┘
//	                                         │    └───────────┘
//	                                         └──▶ no batcher: acknowledged after the last pool
//
// Every stage runs on goroutines the pipeline owns; [Pipeline.Run] waits for all of them
// before it returns. Messages move between stages in slices the runtime recycles, by value:
// once warm, the pipeline allocates nothing per message.
//
// # Producers and demand
//
// The pipeline pulls. A producer goroutine reserves room for up to the first pool's MaxDemand
// messages, both in that pool (whose processors hold at most a chunk in hand and one queued
// each) and under [Options.MaxInFlight], then calls [Producer.Produce] with a slice of that
// length; the producer fills at most that many messages and returns as soon as it has one.
// Room in the pool is given back as its processors pass messages on, and room under
// MaxInFlight only when messages are acknowledged, so the number of messages fetched and not
// yet acknowledged never exceeds MaxInFlight, however slow the sinks: a blocked batch handler
// (or a blocked processor) stops the producer being asked. A producer that reads a large response pauses
// reading while it is not asked for more.
//
// A producer ends the input with [ErrEndOfInput] (the pipeline drains and Run returns nil),
// ends the run with any other error (the pipeline drains and Run returns it, wrapped, so a
// typed "not found" error stays matchable with errors.As), and is told when draining starts
// through its context's cancellation (cause [ErrDraining]) and, if it implements
// [DrainNotifier], PrepareForDraining. A producer that implements [Closer] is closed after the
// last acknowledgement: the place to save a final checkpoint. With [Options.ProducerConcurrency]
// above 1, Produce is called on the one Producer from several goroutines at once. A producer
// that implements [Decoder] hands out its messages undecoded and has the first pool's
// goroutines decode them, in parallel, before any handler sees them; what does not decode is
// bad data.
//
// # Messages
//
// A [Message] carries the data, the producer's [Metadata] (the stream it belongs to, its
// position there, the same on every delivery for producers that say so, and a value shared by
// the messages of one read, none of which costs an allocation per message), its acknowledger
// and [ack.Ref], and its routing. Handlers may replace Data, fail the message ([Message.Fail]), route it to a
// batcher ([Message.SetBatcher]) and give it a batch key ([Message.SetBatchKey]).
//
// # Processors
//
// [Options.Processors] are pools in series: each message goes through one goroutine of each
// pool, in order, and a failed message skips the pools after it. A pool's [Handler] sees one
// message at a time; if it also implements [MessagePreparer] it first sees each chunk whole,
// for bulk lookups. [ProcessorOptions].PartitionBy sends messages of one partition to one
// goroutine, which keeps their order through the pool (and, from the last pool, into the
// batchers); [PartitionByKey] makes one from a string key (an account, a user), hashed for
// you.
//
// # Batchers
//
// After the last pool a message goes to the batcher it was routed to, or to
// [Options.DefaultBatcher], or to none (it is then acknowledged at once). A batcher groups
// messages per batch key: a batch closes when it holds BatchSize messages, when the next
// message would take it past MaxBatchBytes, when BatchTimeout has passed since its first
// message, or when the pipeline drains; [BatchInfo] says which ([Trigger]). The batch goes to
// one of the batcher's batch processors, whose [BatchHandler] may fail messages one by one.
// With [BatcherOptions].Ordered, one key's batches are handled one at a time, in order.
//
// # Fan-out
//
// A handler sends a message to several batchers with [Message.SetBatchers], for instance
// SetBatchers("database", "analytics"): each batcher gets a copy, batched and handled like any
// other message. The message counts once under [Options.MaxInFlight] and is acknowledged once,
// when every copy has finished: as successful if they all succeeded, else as failed with the
// first copy's failure. Each copy follows the failure policy on its own batcher (a copy that
// fails transiently is retried there only; a copy that ends as bad data goes to the failure
// handler, whose [Message.Batcher] names the batcher, and fails the message). Copies are
// Message values of their own, but what their Data points to is shared: batch handlers must
// not modify it. Fan-out allocates per fanned-out message; routing to one batcher allocates
// nothing.
//
// # Acknowledgements and failures
//
// Every message ends exactly once: after its batch handler returns, or after its last
// processor when it goes to no batcher. The pipeline then tells each distinct [ack.Acknowledger]
// of the group (the batch, or the messages a processor finished together) once, with the
// references of its successful messages and its failed ones with their errors. A handler's
// error or panic fails its message (a batch handler's, every message of the batch not failed
// already); a panic becomes a [*PanicError] with the value and the stack. The pipeline itself
// goes on.
//
// A failure is of one of two kinds. Bad data is what no retry can fix: an error the handler
// marks with [Permanent] (or any error with a Permanent() bool method returning true in its
// chain, so that other packages mark theirs without importing this one), a message its
// producer failed before the pipeline saw it (one that could not be decoded), a panic, a
// message routed to an unknown batcher. Any other failure is transient: a sink or service
// that is unavailable, which a retry may get through. [IsPermanent] tells them apart.
//
// [Options.Failure] decides what a failure leads to:
//
//   - [RetryTransient] (default): bad data goes to the failure handler, if any, and is
//     acknowledged as failed; it counts as done. A transient failure is retried, through the
//     handler that failed it, from the message's state before that handler, with exponential
//     backoff, for as long as the pipeline runs. Meanwhile the message is not acknowledged
//     (no offset is committed past it) and keeps its place under [Options.MaxInFlight]: a
//     sink outage stops the reads once everything in flight waits on it, and loses nothing,
//     whatever its length.
//   - [FailWithoutRetry]: every failure goes to the failure handler and is acknowledged as
//     failed, and counts as done.
//   - [RetryThenFail]: a transient failure is retried at most MaxRetries times, then
//     treated as under FailWithoutRetry, as is bad data at once.
//   - [HaltOnFailure]: the failure handler sees the message, it is acknowledged as failed with
//     [ack.Failure].Halt set, and the pipeline drains and returns a [*HaltError] naming it.
//
// The failure handler ([FailureHandler]) runs synchronously before the acknowledgement, so a
// dead-letter handler that appends each failed message somewhere durable delays the
// acknowledgement until the append succeeded. Under RetryTransient it receives bad data only;
// under the other policies IsPermanent(m.Err()) tells bad data from a failure that was not
// (or no longer) retried, so that only bad data is dead-lettered. If the failure handler
// returns an error or panics, the failed messages are not lost: they are acknowledged with
// Halt set, whatever the policy, and the pipeline halts with a [*HaltError] carrying both
// errors.
//
// Offset walk-through. A producer tracks its chunks with an [ack.Tracker] and makes it every
// message's acknowledger. It fetches chunk A (messages a0 a1, offsets "0" to "2") and chunk B
// (b0 b1 b2, "2" to "5"); the committed offset starts at "0".
//
//	event                                           committed
//	b0, b2 succeed in a batch                       "0"   A is unfinished
//	a1 fails with bad data; the hook logs it        "0"   a0 is unfinished
//	a0's batch: the database is down, retried       "0"   a0 is unfinished
//	a0's retry succeeds once the database is back   "2"   A is done (a1 failed, but dealt with)
//	b1 succeeds                                     "5"   B is done
//
// Had the pipeline been stopped while the database was down, the drain would have gone on
// retrying a0 until [Options.ShutdownTimeout], then returned with a0 unacknowledged: the
// committed offset stays at "0", and a restart reads chunk A again. Under FailWithoutRetry,
// a0's failure would have been acknowledged as failed at once, and the committed offset would
// have passed it. Under HaltOnFailure, a1's failure is acknowledged with Halt: the committed
// offset stays at "0" for good, the pipeline drains and Run returns a *HaltError naming a1.
//
// # Draining
//
// Run drains when its context ends, [Pipeline.Stop] is called, the producer ends the input
// or fails, or a failure halts the pipeline. In order: the producer is told and no more
// Produce calls are made; the processor pools finish their queues; the batchers flush their
// partial batches ([TriggerFlush]); the batch processors handle them; every acknowledgement
// is delivered; the producer's Close is called. All of it is bounded by
// [Options.ShutdownTimeout]: when it passes, handlers' context is cancelled, retry waits end,
// no further acknowledgement is delivered, and Run returns a [*ShutdownTimeoutError] with the
// number of messages left unfinished (an at-least-once source delivers them again after a
// restart), how many of them were failing transiently, and the last such error.
// Handlers' context is not cancelled by Run's context: in-flight work is finished, not cut.
//
// # Observing
//
// [Options.Observer] receives one event per group of messages (a Produce call, a processed
// chunk, a batch, an acknowledgement group, a retry) and each drain step, with counts,
// durations, batch sizes and triggers, and the in-flight count. Events are plain values: an
// observer that counts them allocates nothing. The default, [NopObserver], costs nothing, and
// durations are measured only when an observer is set. [Observers] forwards the events to
// several observers (the metrics' and your own). Package
// [github.com/sluice-go/sluice/pipeline/pipelinetest] has an observer that counts, a producer
// that tests push messages into, and a helper that runs a pipeline for a test.
package pipeline
