package main

import (
	"math"
	"slices"
)

// p95 returns the 95th percentile of values by the nearest-rank method: the smallest value
// such that at least 95% of the values are at or below it. It sorts values.
func p95(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	slices.Sort(values)
	rank := int(math.Ceil(0.95 * float64(len(values))))
	return values[max(rank, 1)-1]
}

func sortInt64(xs []int64) { slices.Sort(xs) }
