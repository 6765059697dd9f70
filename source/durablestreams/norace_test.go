//go:build !race

package durablestreams_test

const raceDetector = false
