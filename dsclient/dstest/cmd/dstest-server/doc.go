// Command dstest-server serves the in-memory Durable Streams server of package dstest
// standalone, for local development and for running other implementations' test suites
// against it. It logs each request with log/slog to standard error and stops on SIGINT or
// SIGTERM.
//
//	go run ./dsclient/dstest/cmd/dstest-server -addr 127.0.0.1:4437 -long-poll-timeout 2s
//
// Its defaults are the reference server's: port 4437, 30 s long-polls, no chunk limit, gzip
// on; subscriptions are served, pull-wake and webhook alike (-disable-webhooks refuses the
// latter, as the reference server does without its webhooks option), with the protocol's
// leases (1 s to 10 min, 30 s by default: see the -*-lease-ttl flags) and webhook retries (1 s
// to 60 s). Once listening it prints the base URL on standard output.
package main
