// Command ds-conformance-adapter drives the durablestreams client for the Durable Streams
// client conformance suite: it reads one JSON command per line on stdin and writes one JSON
// result per line on stdout (the suite's adapter protocol). See CONFORMANCE.md for how to run
// the suite against it.
package main
