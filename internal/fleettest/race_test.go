//go:build race

package fleettest_test

// raceDetector reports that the test runs under the race detector, which slows every
// process of the fleet (the workers are this binary): the writers then append more slowly.
const raceDetector = true
