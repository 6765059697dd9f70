// Command dstest-server serves the in-memory Durable Streams server of package dstest
// standalone, for local development and for running other implementations' test suites
// against it. It logs each request with log/slog to standard error and stops on SIGINT or
// SIGTERM.
//
//	go run ./dsclient/dstest/cmd/dstest-server -addr 127.0.0.1:4437 -long-poll-timeout 2s
//
// Its defaults are the reference server's: port 4437, 30 s long-polls, no chunk limit, gzip
// on. Once listening it prints the base URL on standard output.
package main
