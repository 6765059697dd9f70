package pipeline

import (
	"context"
	"sync/atomic"
)

// credits bound the messages in flight: a producer reserves credits before it asks for
// messages, gives back what it did not get, and every acknowledgement returns its messages'
// credits. Waiting is on a channel, so that testing/synctest sees a blocked producer as durably
// blocked.
type credits struct {
	max  int64
	used atomic.Int64
	wake chan struct{} // capacity 1: a release that finds a waiter wakes it
	pass bool          // several producers: a waker passes the baton when credits remain
}

func newCredits(max int64, producers int) *credits {
	return &credits{max: max, wake: make(chan struct{}, 1), pass: producers > 1}
}

// acquire waits until at least lo credits are free (lo is clamped to [1, max]) and takes up
// to hi of them, or returns ctx's error.
func (c *credits) acquire(ctx context.Context, lo, hi int) (int, error) {
	lo64 := min(max(int64(lo), 1), c.max)
	hi64 := max(int64(hi), lo64)
	for {
		used := c.used.Load()
		free := c.max - used
		if free >= lo64 {
			n := min(free, hi64)
			if c.used.CompareAndSwap(used, used+n) {
				if c.pass && free-n >= lo64 {
					c.signal()
				}
				return int(n), nil
			}
			continue
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (c *credits) release(n int) {
	if n <= 0 {
		return
	}
	c.used.Add(-int64(n))
	c.signal()
}

func (c *credits) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
