// Command analytics computes per-key aggregates over tumbling windows of a live durable
// stream, appends each window's results to an output stream, and serves Prometheus metrics:
//
//	go run ./examples/analytics [-duration 10s] [-rate 2000] [-window 1s] [-live sse] [-metrics 127.0.0.1:9464]
//
// By default it starts the in-process server and a generator that appends events (page views,
// add-to-carts and purchases, each with a latency value) at -rate per second for -duration,
// then closes the stream. A pipeline follows the stream live (SSE or long-poll), keys each event
// by type in its processors (partitioned by key with pipeline.PartitionByKey, so that each key's
// order is kept), and a batcher, ordered per key, folds each batch into tumbling windows of
// event time: count, sum and p95 of the latency per (type, window). A window is emitted once an
// event of its key at or after its end has been seen: it is appended to the output stream
// <stream>-windows with that event, through sink/dssink, so that a batch delivered again after
// a crash appends no window twice. When the stream closes (or on Ctrl-C) the pipeline drains,
// and the windows still open are appended through an idempotent Writer. The windows live in
// memory: after a crash, those open at the crash are recomputed from the events after the
// committed position only.
// /metrics on the -metrics address serves the pipeline's, the producer's and the client's
// metrics. With -url it reads and writes on another server instead (the generator still runs).
package main
