package ack

import (
	"context"
	"errors"
	"time"
)

// ErrSaveDeadline is what a store returns when a save reached it after the deadline set by
// [WithSaveDeadline], and so changed nothing.
var ErrSaveDeadline = errors.New("ack: the save reached the store after its save deadline")

type saveDeadlineKey struct{}

// WithSaveDeadline returns a copy of ctx that asks a [CheckpointStore]'s Save to take
// effect only if it reaches the store before t, judged where the write happens rather than
// in the calling process: a save held up past t — by a process paused between its check and
// its write (SIGSTOP, a long GC pause, a VM migration), or by a slow network — then changes
// nothing and returns an error wrapping [ErrSaveDeadline]. A worker that may save only while
// it holds a lease passes the lease's end, so that once the lease has passed its saves
// cannot land, whatever its own clock and scheduler did.
//
// A store that can make t part of the write does so (package ack/pgstore compares it with
// the database's statement time, so the two machines' clocks should agree to well within
// the margin the caller leaves); others, such as [MemoryStore] and [FileStore], whose
// writes happen in the calling process, ignore it. ctx's own deadline and cancellation are
// unchanged.
func WithSaveDeadline(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, saveDeadlineKey{}, t)
}

// SaveDeadline returns the deadline [WithSaveDeadline] set on ctx, if any; stores call it
// from Save.
func SaveDeadline(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(saveDeadlineKey{}).(time.Time)
	return t, ok
}
