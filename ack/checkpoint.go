package ack

import (
	"context"
	"errors"
	"net/url"
)

// ErrEmptyKey is returned by a [CheckpointStore] asked to load or save the empty key.
var ErrEmptyKey = errors.New("ack: empty checkpoint key")

// CheckpointStore saves committed positions, one per key, so that a restarted pipeline
// resumes where the last one committed.
//
// A key names one pipeline reading one source (see [CheckpointKey]); values are strings,
// for a Durable Streams source the encoding of a [Position] (a bare offset, as older
// versions saved, or "offset,skip,seq"). Implementations must be safe for concurrent use
// and honour ctx: with a context that has ended they return an error and change nothing.
//
// # Never backwards
//
// Save never moves a key's value backwards: it replaces the saved value only when
// [Supersedes](value, saved) holds. A Save whose position is before the saved one (a late
// save from a stale process, say) is ignored and returns nil: the store already holds a
// later position. A saved "-1" or "now" with nothing after it done is always replaceable,
// and neither ever replaces a real position. Values that do not parse as positions
// ([ParsePosition]) are simply replaced, so a store keeps any source's strings; but a
// bare value is ordered as an offset, byte-wise, so a source whose offsets do not sort
// that way must save them in a form that does (fixed-width numbers, for example).
//
// Save replaces the key's value atomically: a Load never sees a partial value, and a Save
// that fails leaves the previous value in place. The empty key is refused with an error
// wrapping [ErrEmptyKey].
//
// The package provides [MemoryStore] and [FileStore]; stores backed by a database live in
// subpackages, so that this package imports no driver. Package
// [github.com/sluice-go/sluice/ack/acktest] holds a contract test that every store can run.
type CheckpointStore interface {
	// Load returns the value saved for key. found is false, with a nil error, when
	// nothing was saved for key.
	Load(ctx context.Context, key string) (offset string, found bool, err error)
	// Save records offset as key's committed position, replacing the saved value unless
	// that is a later position (see "Never backwards"); a Save so ignored returns nil. It
	// returns once the value is durable, as far as the store can make it so.
	Save(ctx context.Context, key, offset string) error
}

// CheckpointKey returns the checkpoint key of the pipeline named pipeline reading the
// source identified by source. Distinct pairs give distinct keys: the pipeline name is
// escaped (as a URL path segment) so that it cannot contain the "|" separating the two;
// source is kept as it is.
//
// The key is stored in clear (a file's contents, a database row) and shown in logs, so
// source must identify the source without carrying secrets: for a durable stream, pass the
// stream's path, never a URL with credentials in its user info or query. A path also keeps
// the key stable when the server moves to another host.
func CheckpointKey(pipeline, source string) string {
	return url.PathEscape(pipeline) + "|" + source
}
