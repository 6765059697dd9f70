// Command postgres reads a durable stream into PostgreSQL with bulk inserts:
//
//	go run ./examples/postgres [-dsn postgres://postgres@127.0.0.1:5432/test] [-url STREAM_URL] [-n 200000]
//
// A pipeline reads the stream with the Durable Streams producer, checks each JSON event in a
// pool of processors, and a batcher hands each batch to the PostgreSQL sink of package
// sink/pgsink, which writes it to the table (default "events") keyed by the event's stable
// position in the stream, (stream, position), so that a batch delivered again after a crash
// changes nothing: a batch is copied straight into the table with COPY and, only when some
// of its rows are there already (a redelivery), through a staging table with insert-if-absent.
// Rows go in key order, so two programs writing the same stream into the same table at once
// (an old deployment beside its replacement) never deadlock.
//
// Failures follow the pipeline's default: an event with no user, and a row the database
// rejects, are bad data, printed by the failure handler and committed past; a batch
// PostgreSQL cannot take (it is down, it restarted) is retried until it succeeds, and
// nothing after it is committed meanwhile.
//
// The committed position is saved in PostgreSQL too (package ack/pgstore, table
// sluice_checkpoints), under the pipeline name (-name): a second run resumes where the first
// one stopped. The program creates its tables. Without -url it starts the in-process server
// and writes -n sample events into a new stream first. It prints rows/s.
package main
