package dsclient

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// errIdle is the cause a watchdog cancels its request with.
var errIdle = errors.New("no data from the server within the timeout")

// watchdog gives up a request that stays silent: it cancels the request's context when its
// timer runs out, before the response headers (a server that never answers, a long-poll
// past the server's timeout) and, once armed on the body, when no byte has arrived for the
// idle timeout. The request then fails as a transient [ErrTimeout], and reads resume from
// their offset.
type watchdog struct {
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration // body idle timeout; 0 once stopped
	fired  atomic.Bool
}

// watch returns a context for one attempt that is cancelled after d, and its watchdog.
func watch(parent context.Context, d time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{cancel: cancel}
	w.timer = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel(errIdle)
	})
	return ctx, w
}

// kick restarts the timer for d.
func (w *watchdog) kick(d time.Duration) { w.timer.Reset(d) }

// stop releases the watchdog and its context.
func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// timedOut reports whether the watchdog gave the request up.
func (w *watchdog) timedOut() bool { return w != nil && w.fired.Load() }

// watchedBody is a response body under a watchdog: every read that brings bytes restarts
// the idle timer, and a read that fails because the watchdog fired says so.
type watchedBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.w.idle > 0 {
		b.w.kick(b.w.idle)
	}
	if err != nil && err != io.EOF && b.w.timedOut() {
		err = errIdle
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.stop()
	return err
}
