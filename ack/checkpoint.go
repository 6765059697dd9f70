package ack

import (
	"context"
	"errors"
	"net/url"
)

// ErrEmptyKey is returned by a [CheckpointStore] asked to load or save the empty key.
var ErrEmptyKey = errors.New("ack: empty checkpoint key")

// CheckpointStore saves committed offsets, one per key, so that a restarted pipeline
// resumes where the last one committed.
//
// A key names one pipeline reading one source (see [CheckpointKey]); offsets are the
// source's opaque offsets as strings. Implementations must be safe for concurrent use and
// honour ctx: with a context that has ended they return an error and change nothing.
//
// Save replaces the key's offset atomically: a Load never sees a partial value, and a Save
// that fails leaves the previous offset in place. Callers save offsets that only move
// forward (a [Tracker] never moves backwards); a store that can order offsets may ignore a
// Save that would move one backwards, for example one from a stale process. The empty key
// is refused with an error wrapping [ErrEmptyKey].
//
// The package provides [MemoryStore] and [FileStore]; stores backed by a database live in
// subpackages, so that this package imports no driver. Package
// [github.com/sluice-go/sluice/ack/acktest] holds a contract test that every store can run.
type CheckpointStore interface {
	// Load returns the offset saved for key. found is false, with a nil error, when
	// nothing was saved for key.
	Load(ctx context.Context, key string) (offset string, found bool, err error)
	// Save records offset as key's committed offset, replacing any previous one. It
	// returns once the offset is durable, as far as the store can make it so.
	Save(ctx context.Context, key, offset string) error
}

// CheckpointKey returns the checkpoint key of the pipeline named pipeline reading the
// source identified by source (for a durable stream, its URL). Distinct pairs give distinct
// keys: the pipeline name is escaped so that it cannot contain the "|" separating the two.
func CheckpointKey(pipeline, source string) string {
	return url.PathEscape(pipeline) + "|" + source
}
