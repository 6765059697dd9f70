// Package acktest holds tests that any implementation of Sluice's ack contracts can run.
//
// # Checkpoint stores
//
// [TestCheckpointStore] checks a [ack.CheckpointStore] against the contract documented on
// that interface: a missing key, round trips, overwrites, independent keys (including long
// keys, keys differing only in case and keys with any characters), the empty key, ended
// contexts, concurrent saves, and the never-backwards rule ([ack.Supersedes]) in both
// encodings of [ack.Position] — a stale save of an older position after a newer one, bare
// offsets as older versions saved them, skips compared as numbers, sentinels that are
// always replaceable and never replace a real position, and values that are not positions,
// which are simply replaced. A store's own test calls it with a constructor:
//
//	func TestStore(t *testing.T) {
//		acktest.TestCheckpointStore(t, func(t *testing.T) ack.CheckpointStore {
//			return newEmptyStore(t)
//		})
//	}
package acktest
