// Package dstest is an in-memory Durable Streams server that runs inside a Go process, the
// way [net/http/httptest] does for HTTP: tests of clients and pipelines run against it
// without Node, and programs can embed it.
//
// # Starting it
//
// [NewServer] starts a [Server] on a loopback port; [ForTest] does the same for a test and
// closes it when the test ends. [NewHandler] returns the bare [Handler] to mount in any
// [net/http] server. Streams live under [Options.Prefix] (default "/v1/stream/", as on the
// reference server):
//
//	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
//	url := srv.StreamURL("orders") // http://127.0.0.1:PORT/v1/stream/orders
//
// The command dstest-server (in cmd/dstest-server) serves it standalone.
//
// # Protocol
//
// It implements the protocol's stream operations (PROTOCOL.md sections 4, 5, 8, 9 and 10):
// create with TTL, expiry, closed state, initial body and idempotent re-creation; append with
// JSON validation and one-level array flattening, content-type checks and Stream-Seq; close;
// delete; HEAD; catch-up reads with ETag and If-None-Match; offset=now in every mode;
// long-poll with cursors; SSE with a control event after every data event and base64 for
// binary streams; idempotent producers; sliding TTL and absolute expiry; forks with
// sub-offsets and soft deletion; and the CORS and browser-security headers browsers need. It
// passes the official server conformance suite (subscriptions aside, which it does not
// implement).
//
// Offsets are opaque tokens of the form 0000000000000000_0000000000001234, fixed-width so that
// their lexicographic order is the stream's order; they are never -1 or now. One append is
// one offset: the values of a JSON array append share it.
//
// # Memory and chunks
//
// Each stream keeps its records back to back in segments of up to 1 MiB, with four bytes of
// index per record; JSON values are stored compact, so a read writes them straight from
// memory to the connection without building the response first. By default a catch-up read
// returns the whole rest of the stream, as the reference server does; [Options.MaxChunkBytes]
// caps each read so that tests can force a client through many chunks.
//
// # Fault injection
//
// [Handler.InjectFault] (or [Server.InjectFault]) makes the next requests on a path fail with
// a status and optional Retry-After, wait, drop the connection before answering or in the
// middle of the body, or cut an SSE stream short: see [Fault].
//
//	srv.InjectFault("orders", dstest.Fault{Status: 503, RetryAfter: time.Second, Count: 2})
//	srv.InjectFault("orders", dstest.Fault{Method: "GET", DropMidBody: true})
//
// # Concurrency
//
// Handler and Server are safe for concurrent use. Appends to one stream are serialised (so
// idempotent-producer checks and the append they guard are atomic); reads run in parallel
// with each other and with appends, and write to the network without holding any lock.
package dstest
