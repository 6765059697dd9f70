// Package batcher holds Sluice's keyed batching logic: batches per key that close on a size, a
// byte size or a timeout, or when flushed, and the partitioning of batches across batch
// processors.
//
// The package is plain code: an [Accumulator] starts no goroutine and reads no clock. The
// pipeline's batcher stage owns one per batcher, passes it the time with each call, and arms a
// timer for [Accumulator.NextDeadline]. That keeps the logic testable step by step and lets the
// stage use one timer for every key.
//
// # Triggers
//
// A batch of one key closes when it holds [Config.Size] items ([TriggerSize]); when adding an
// item would take its byte size past [Config.MaxBytes] ([TriggerBytes], the item then starts the
// next batch); when [Config.Timeout] has passed since its first item ([TriggerTimeout]); or when
// the accumulator is flushed ([TriggerFlush]), as the pipeline does when it drains.
//
// # Keys and partitions
//
// Only items with the same key share a batch; each key has its own timer, started by the key's
// first item. [Partition] maps a key to one of n batch processors, the same one every time, so
// that batches of one key can be handled one at a time and in order.
package batcher
