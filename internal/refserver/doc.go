// Package refserver starts the Durable Streams reference server (the npm package
// @durable-streams/server, version pinned by node/package-lock.json) in a child Node process,
// for Sluice's integration tests and benchmarks.
//
// The Node dependencies are installed on first use with `npm install --no-save` from the
// committed lockfile,
// under a file lock so that parallel test binaries install once.
//
// # Skipping
//
// [ForTest] skips the test when Node or npm is not installed, unless the environment variable
// SLUICE_REQUIRE_REFSERVER is "1" (CI sets it), in which case it fails the test instead.
package refserver
