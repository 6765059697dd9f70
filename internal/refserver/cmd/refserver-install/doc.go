// Command refserver-install installs the reference Durable Streams server's Node packages
// (internal/refserver/node, pinned by its lockfile) ahead of the tests, as CI does:
//
//	go run ./internal/refserver/cmd/refserver-install
package main
