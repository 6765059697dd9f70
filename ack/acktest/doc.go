// Package acktest holds tests that any implementation of Sluice's ack contracts can run.
//
// # Checkpoint stores
//
// [TestCheckpointStore] checks a [ack.CheckpointStore] against the contract documented on
// that interface: a missing key, round trips, overwrites, independent keys (including long
// keys, keys differing only in case and keys with any characters), the empty key, ended
// contexts, and concurrent saves. A store's own test calls it with a constructor:
//
//	func TestStore(t *testing.T) {
//		acktest.TestCheckpointStore(t, func(t *testing.T) ack.CheckpointStore {
//			return newEmptyStore(t)
//		})
//	}
package acktest
