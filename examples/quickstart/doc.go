// Command quickstart runs a Sluice pipeline from a durable stream, with nothing to install or
// configure:
//
//	go run ./examples/quickstart [-n 100000] [-url http://host:port/v1/stream/] [-pg postgres://...]
//
// It starts the in-process Durable Streams server (package dstest), creates a JSON stream and
// writes sample events into it through the idempotent Writer: purchases, page views,
// add-to-carts and signups of a few hundred users. Then it runs a pipeline that reads the
// stream on demand with the Durable Streams producer, validates and routes each event in a pool
// of processors, and fans out to two batchers:
//
//   - database: purchases, in batches of 500 or 200 ms, into an in-memory table — or, with -pg,
//     into a PostgreSQL table through sink/pgsink, each row keyed by the event's stable
//     position (stream, position), so that a redelivered batch changes nothing;
//   - analytics: the other events, keyed by event type, aggregated per key (count, distinct
//     users, amounts).
//
// A purchase with a negative amount (one in 10,000) fails validation as bad data
// (pipeline.Permanent): the failure handler appends it to a dead-letter stream before it is
// acknowledged. The committed position — after the longest run of events that were all
// acknowledged, possibly inside a response — is saved to a checkpoint store (in memory, or
// PostgreSQL with -pg). The program shows progress while it runs and ends
// with a summary.
package main
