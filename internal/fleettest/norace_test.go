//go:build !race

package fleettest_test

const raceDetector = false
