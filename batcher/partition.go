package batcher

import "hash/maphash"

var seed = maphash.MakeSeed()

// Partition maps key to one of n partitions, in [0, n): the same key always gets the same
// partition within a process. The empty key maps to partition 0. It allocates nothing. n must
// be > 0.
func Partition(key string, n int) int {
	if n <= 1 || key == "" {
		return 0
	}
	return int(maphash.String(seed, key) % uint64(n))
}
