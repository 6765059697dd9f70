package batcher

import "hash/maphash"

// seed is fixed for the process: a key hashes the same way everywhere in it.
var seed = maphash.MakeSeed()

// Hash returns a 64-bit hash of key (hash/maphash, with a seed fixed for the process): the
// same key always gets the same hash within a process, not across processes. It is fast, not
// cryptographic, and allocates nothing.
func Hash(key string) uint64 { return maphash.String(seed, key) }

// Partition maps key to one of n partitions, in [0, n): the same key always gets the same
// partition within a process. The empty key maps to partition 0. It allocates nothing. n must
// be > 0.
func Partition(key string, n int) int {
	if n <= 1 || key == "" {
		return 0
	}
	return int(Hash(key) % uint64(n))
}
