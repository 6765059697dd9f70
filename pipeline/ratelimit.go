package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// rateLimiter allows at most limit.Messages per limit.Interval, in fixed windows that start
// with the first request after the previous window ended.
type rateLimiter struct {
	limited atomic.Bool // fast path: no lock while there is no limit
	mu      sync.Mutex
	limit   RateLimit
	start   time.Time
	used    int
	changed chan struct{} // closed and replaced when the limit changes
}

func (l *rateLimiter) init(lim RateLimit) {
	l.limit = lim
	l.changed = make(chan struct{})
	l.limited.Store(lim.Messages > 0)
}

func (l *rateLimiter) get() RateLimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

func (l *rateLimiter) set(lim RateLimit) {
	l.mu.Lock()
	l.limit, l.start, l.used = lim, time.Time{}, 0
	l.limited.Store(lim.Messages > 0)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// take waits until at least one message is allowed and returns how many of the n wanted are,
// or ctx's error.
func (l *rateLimiter) take(ctx context.Context, n int) (int, error) {
	for {
		if !l.limited.Load() {
			return n, nil
		}
		l.mu.Lock()
		if l.limit.Messages <= 0 {
			l.mu.Unlock()
			return n, nil
		}
		now := time.Now()
		if l.start.IsZero() || now.Sub(l.start) >= l.limit.Interval {
			l.start, l.used = now, 0
		}
		if free := l.limit.Messages - l.used; free > 0 {
			k := min(n, free)
			l.used += k
			l.mu.Unlock()
			return k, nil
		}
		wait := l.limit.Interval - now.Sub(l.start)
		changed := l.changed
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
	}
}

// giveBack returns n allowed messages that were not produced to the current window.
func (l *rateLimiter) giveBack(n int) {
	if n <= 0 || !l.limited.Load() {
		return
	}
	l.mu.Lock()
	l.used = max(0, l.used-n)
	l.mu.Unlock()
}
