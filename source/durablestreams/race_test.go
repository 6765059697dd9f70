//go:build race

package durablestreams_test

// raceDetector reports that the tests run under the race detector, which slows the large
// streams' runs about tenfold: they then use smaller streams.
const raceDetector = true
