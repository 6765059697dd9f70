// Command postgres reads a durable stream into PostgreSQL with bulk inserts:
//
//	go run ./examples/postgres [-dsn postgres://postgres@127.0.0.1:5432/test] [-url STREAM_URL] [-n 200000]
//
// A pipeline reads the stream with the Durable Streams producer, decodes each JSON event in a
// pool of processors, and a batcher writes each batch to the table (default "events") keyed by
// source position — the stream URL, the chunk's start offset and the event's index in it — so
// that a batch delivered again after a crash changes nothing:
//
//   - by default a batch is copied straight into the table with COPY; if that fails because
//     some of its rows are there already (a redelivered batch), it is copied into a temporary
//     staging table and moved with INSERT … ON CONFLICT DO NOTHING, in one transaction;
//   - with -staging every batch takes the staging path.
//
// Rows are inserted in source-position order, so two programs writing the same stream into
// the same table at once (an old deployment beside its replacement) never deadlock; a batch
// that PostgreSQL aborts as a deadlock victim anyway (against a writer in another order) is
// tried again through the staging path, up to three times.
//
// The committed offset is saved in PostgreSQL too (package ack/pgstore, table
// sluice_checkpoints), under the pipeline name (-name): a second run resumes after the last
// chunk the first one finished. The program creates its tables. Without -url it starts the
// in-process server and writes -n sample events into a new stream first. It prints rows/s.
package main
