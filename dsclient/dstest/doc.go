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
// sub-offsets and soft deletion; the CORS and browser-security headers browsers need; and
// subscriptions, pull-wake and webhook (sections 6 and 7: see below). It passes the official
// server conformance suite with no case skipped.
//
// Offsets are opaque tokens of the form 0000000000000000_0000000000001234, fixed-width so that
// their lexicographic order is the stream's order; they are never -1 or now. One append is
// one offset: the values of a JSON array append share it.
//
// # Subscriptions
//
// Subscriptions behave as on the reference server 0.3.7, under the same routes below the
// prefix ([Server.SubscriptionURL] gives a subscription's URL):
//
//	GET    __ds/jwks.json                          the webhook signing keys (a JWK Set)
//	PUT    __ds/subscriptions/{id}                 create (201), re-confirm (200) or 409
//	GET    __ds/subscriptions/{id}                 read
//	DELETE __ds/subscriptions/{id}                 delete (204)
//	POST   __ds/subscriptions/{id}/streams         add explicit streams (204)
//	DELETE __ds/subscriptions/{id}/streams/{path}  remove an explicit stream (204)
//	POST   __ds/subscriptions/{id}/claim           pull-wake: take the lease
//	POST   __ds/subscriptions/{id}/ack             pull-wake: ack as heartbeat, or done
//	POST   __ds/subscriptions/{id}/release         pull-wake: give the lease back (204)
//	POST   __ds/subscriptions/{id}/callback        webhook: ack as heartbeat, or done
//
// A pattern links the matching streams that exist at their tail, and a stream created later
// at -1 when its first data arrives (a subscription's own wake stream is never linked by its
// pattern); explicit links start at the stream's tail. When an idle subscription (no wake in
// flight, no lease held) has a stream whose tail is past its acked offset, it wakes: the next
// generation and a new wake id. A pull-wake subscription then appends one wake event
// {type, subscription_id, stream, generation, ts} to its wake stream, which the application
// creates; a claim takes the lease (409 ALREADY_CLAIMED names the holder and generation, 409
// NO_PENDING_WORK when every stream is acked to its tail); each ack applies its offsets at
// once and extends the lease; an ack with done, or a release, ends the wake and wakes again
// when work is left. A webhook subscription POSTs the wake to its URL, signed with Ed25519 over
// "<t>.<raw body>" (Webhook-Signature: t=<unix seconds>,kid=<key id>,ed25519=<base64url>;
// [Handler.WebhookKey] gives the key), takes the lease at once, and acks the wake's snapshot
// when the receiver answers {"done":true}; otherwise the receiver calls back with the token.
// A failed delivery is retried after 1 s, doubling up to 60 s, each delay varied by 20%. When
// a lease passes, the holder's token is fenced (409 FENCED) and work left is woken again, one
// generation on. Webhook URLs must be https to a public host, or http to localhost or
// 127.x.x.x. Everything is in memory, as the reference server keeps it.
//
// Tests need no real time for any of it: [Options.MinLeaseTTL] admits leases of a few
// milliseconds, [Options.TokenTTL], [Options.WebhookTimeout], [Options.WebhookRetryMin] and
// [Options.WebhookRetryMax] shorten the rest, and every timer is a [time.AfterFunc] with no
// background ticker, so that a handler made inside a [testing/synctest] bubble runs its leases
// and retries on the bubble's clock. Deliveries go through [Options.WebhookClient]: a client
// with an in-process transport keeps them inside the bubble too.
//
//	srv := dstest.ForTest(t, dstest.Options{MinLeaseTTL: 10 * time.Millisecond})
//	// PUT srv.SubscriptionURL("workers") {"type":"pull-wake","pattern":"events/*",
//	//     "wake_stream":"wake","lease_ttl_ms":50}
//
// What a subscription keeps is bounded: one link (a path and an offset) per linked stream,
// the streams of its pattern being those that exist and its explicit ones at most
// [Options.MaxExplicitStreams]; one snapshot of tails per webhook wake; at most one delivery in
// flight and one retry scheduled. A handler keeps at most [Options.MaxSubscriptions]. Nothing
// is kept per append: the wake stream gets one event per wake.
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
// The subscription routes take faults the same way, by path: a claim that fails with 503, an
// ack applied whose answer is lost on the way back.
//
//	srv.InjectFault("__ds/subscriptions/workers/claim", dstest.Fault{Status: 503, RetryAfter: time.Second})
//	srv.InjectFault("__ds/subscriptions/workers/ack", dstest.Fault{DropMidBody: true})
//
// [Handler.InjectWebhookFault] makes a subscription's outgoing webhook deliveries fail (a
// status, a connection error, a lost answer, or a delay), so that tests watch them retried.
//
// # Concurrency
//
// Handler and Server are safe for concurrent use. Appends to one stream are serialised (so
// idempotent-producer checks and the append they guard are atomic); reads run in parallel
// with each other and with appends, and write to the network without holding any lock.
// Subscriptions share one lock; an append takes it only when subscriptions exist, after its
// own, and wakes (and writes wake events) before the client hears of the append.
// [Handler.Close] stops lease and retry timers and waits for deliveries in flight.
//
// # Option errors
//
// [NewHandler], [NewServer], [ForTest], [Handler.InjectFault] and [Handler.InjectWebhookFault]
// report every invalid field at once in an [*OptionsError], each by its Go field path, as
// every options type in the project does; zero values mean the documented defaults.
package dstest
