// Package metrics exports the events of a pipeline, of its Durable Streams producer and of
// the Durable Streams client as Prometheus collectors. It is the only package of the module that imports Prometheus; the core reports
// through observer interfaces and knows nothing of it.
//
// # Wiring
//
// [New] creates a [Metrics] and registers its collectors on the registry the caller passes
// (never the global default unless that is what is passed). One *Metrics implements
// [pipeline.Observer], [dsclient.Observer], [durablestreams.ProducerObserver] and
// [durablestreams.SubscriptionObserver]:
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg, metrics.Options{Pipeline: "orders"})
//	stream := dsclient.NewStream(url, dsclient.WithObserver(m))
//	prod, err := durablestreams.NewProducer(durablestreams.ProducerOptions[Order]{
//		Stream: stream, Name: "orders", Checkpoints: store, Observer: m,
//	})
//	m.WatchProducer(prod) // lag gauges, read from prod.Stats() at each scrape
//	p, err := pipeline.New(pipeline.Options[Order]{Name: "orders", Producer: prod, Observer: m, ...})
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every metric carries the constant label pipeline (from [Options.Pipeline]) and any
// [Options.ConstLabels]. Several pipelines share a registry when their names differ; a second
// New with a name already registered returns an error wrapping [ErrAlreadyRegistered].
//
// # Cost
//
// Observer methods are called on the pipeline's and the client's goroutines, once per chunk,
// batch, acknowledgement group or HTTP attempt, never per message. They take no lock and
// allocate nothing once a label value has been seen: the collectors of each stage name,
// trigger, operation and status are resolved once and kept in a copy-on-write map.
//
// # Pipeline metrics
//
// The label stage is a processor pool's name or a batcher's name (give them distinct names
// to tell them apart).
//
//	sluice_messages_produced_total            counter    messages returned by the producer
//	sluice_produce_duration_seconds           histogram  Produce calls that returned messages
//	sluice_messages_in_flight                 gauge      messages fetched and not yet acknowledged
//	sluice_messages_processed_total{stage}    counter    messages handled by a processor pool or a batcher
//	sluice_messages_failed_total{stage}       counter    messages that failed in the stage, after retries
//	sluice_handler_duration_seconds{stage}    histogram  a processor handling one chunk, retries included
//	sluice_messages_retried_total{stage}      counter    failed messages sent through their handler again
//	sluice_retries_total{stage}               counter    retries (groups of messages retried at once)
//	sluice_batches_total{stage,trigger}       counter    batches by what closed them: size, bytes, timeout, flush
//	sluice_batch_size_messages{stage}         histogram  messages per batch
//	sluice_batch_bytes_total{stage}           counter    batch bytes as measured by the batcher's SizeOf
//	sluice_batch_duration_seconds{stage}      histogram  batch handler calls, retries included
//	sluice_messages_acked_total               counter    messages acknowledged, successful or failed
//	sluice_messages_acked_failed_total        counter    messages acknowledged as failed
//	sluice_messages_halted_total              counter    failed messages acknowledged with Halt set
//	sluice_drain_steps_total{step}            counter    drain steps reached: started, producers_stopped,
//	                                                     processors_finished, batchers_flushed,
//	                                                     batch_processors_finished, timed_out, done
//	sluice_drain_step_elapsed_seconds{step}   gauge      time from the last drain's start to each step
//
// The in-flight gauge adds what is produced and subtracts what is acknowledged; when a drain
// is done it is set to the pipeline's own count, above zero only if a timed-out drain
// abandoned messages.
//
// # Durable Streams client metrics
//
// The label op is the operation: create, head, delete, append, close or read.
//
//	sluice_ds_requests_total{op,status}          counter    HTTP attempts by status ("none": no response)
//	sluice_ds_request_duration_seconds{op}       histogram  attempts until response headers (long-polls wait here)
//	sluice_ds_requests_in_flight{op}             gauge      attempts sent and not yet answered
//	sluice_ds_retries_total{op}                  counter    requests sent again after a transient failure
//	sluice_ds_reconnects_total{live}             counter    reads that reconnected, by live mode (off, auto, long-poll, sse)
//	sluice_ds_chunks_total                       counter    chunks readers finished
//	sluice_ds_read_items_total                   counter    JSON items read
//	sluice_ds_read_bytes_total                   counter    body bytes read, after decompression
//	sluice_ds_read_resumes_total                 counter    chunk bodies cut and resumed
//	sluice_ds_consumer_batches_total{result}     counter    Consumer handler calls: ok, error
//	sluice_ds_consumer_items_total               counter    items handed to Consumer handlers
//	sluice_ds_consumer_bytes_total               counter    bytes handed to Consumer handlers
//	sluice_ds_consumer_batch_duration_seconds    histogram  Consumer handler calls
//	sluice_ds_writer_batches_total{result}       counter    Writer batches: acked, duplicate (already stored), error
//	sluice_ds_writer_items_total                 counter    items of batches stored as new
//	sluice_ds_writer_bytes_total                 counter    body bytes of batches stored as new
//	sluice_ds_writer_batch_duration_seconds      histogram  Writer batches from first send to outcome
//
// # Durable Streams producer metrics
//
//	sluice_ds_producer_chunks_total                    counter    responses (or SSE batches) read and handed out in full
//	sluice_ds_producer_messages_total                  counter    messages handed to the pipeline (counted per Produce call), failed decodes included
//	sluice_ds_producer_decode_failures_total           counter    messages that did not decode (handed out failed)
//	sluice_ds_producer_commits_total                   counter    committed position advances (coalesced by the checkpoint interval)
//	sluice_ds_producer_last_commit_timestamp_seconds   gauge      Unix time of the last advance
//	sluice_ds_checkpoint_saves_total{result}           counter    checkpoint store saves: ok, error
//	sluice_ds_checkpoint_save_duration_seconds         histogram  checkpoint store saves
//	sluice_ds_producer_gone_total                      counter    410 Gone answers resumed from the earliest offset
//	sluice_ds_producer_at_tail                         gauge      1 when the last chunk read reached the tail, else 0
//	sluice_ds_producer_pending_messages                gauge      messages fetched and not yet finished
//	sluice_ds_producer_oldest_pending_seconds          gauge      age of the response holding the oldest unfinished message (0: none)
//
// The last three are read from the producer's Stats at each scrape, once the producer is
// given to [Metrics.WatchProducer]; before that they are absent.
//
// # Durable Streams subscription worker metrics
//
// A *Metrics is also a [durablestreams.SubscriptionObserver] (SubscriptionOptions.Observer):
//
//	sluice_ds_subscription_claims_total{subscription,result}        counter    claim attempts: won, already_claimed, no_pending_work, failed (webhook wakes taken on count as won)
//	sluice_ds_subscription_claims_ended_total{subscription,reason}  counter    claims ended: done, released, fenced, expired, failed
//	sluice_ds_subscription_heartbeats_total{subscription,result}    counter    lease renewals carrying the committed positions: ok, error
//	sluice_ds_subscription_claim_streams                            histogram  streams with pending work per claim won
//	sluice_ds_subscription_held{subscription}                       gauge      1 while the worker holds a claim on the subscription
//	sluice_ds_subscription_streams_left{subscription}               gauge      streams of the claim held not yet read to their tail and committed
//	sluice_ds_subscription_lag_seconds{subscription}                gauge      age of the oldest work of the claim held not yet committed
//
// Durations are in seconds with [Options.DurationBuckets] (default [DefaultDurationBuckets]);
// batch sizes use [Options.SizeBuckets] (default [DefaultSizeBuckets]).
package metrics
