package pipeline

import "github.com/sluice-go/sluice/batcher"

// PartitionByKey returns a [ProcessorOptions].PartitionBy function that partitions messages by
// the string key(m) returns (a user, an account, an aggregate's id), so that messages with the
// same key go to the same goroutine of the pool, in order. The key is hashed with [batcher.Hash]
// (hash/maphash with a seed fixed for the process): fast, the same for a key throughout the
// process, and allocation-free, so no hand-written hashing is needed.
//
// key is called from the goroutine that routes messages into the pool, for every message that
// has not failed; it must be safe for concurrent use when several goroutines feed the pool
// (several producer goroutines, or a pool before it). A panic in it fails the message.
// PartitionByKey panics if key is nil.
//
//	PartitionBy: pipeline.PartitionByKey(func(m *pipeline.Message[Order]) string { return m.Data.Account }),
func PartitionByKey[T any](key func(m *Message[T]) string) func(m *Message[T]) uint64 {
	if key == nil {
		panic("pipeline: PartitionByKey with a nil key function")
	}
	return func(m *Message[T]) uint64 { return batcher.Hash(key(m)) }
}
