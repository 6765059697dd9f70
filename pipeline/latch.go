package pipeline

import "sync/atomic"

// latch is closed once every goroutine of a stage has ended: each goroutine calls arrive as
// it exits, and the last one runs the stage's closing action (closing the next stage's queues)
// before done is closed. It replaces a counter and a channel per stage.
type latch struct {
	left atomic.Int32
	done chan struct{}
}

// init sets the number of goroutines to wait for; with n == 0 the latch is closed at once.
func (l *latch) init(n int) {
	l.done = make(chan struct{})
	l.left.Store(int32(n))
	if n == 0 {
		close(l.done)
	}
}

// arrive counts one goroutine out. The last one calls last (when not nil), then closes done.
func (l *latch) arrive(last func()) {
	if l.left.Add(-1) != 0 {
		return
	}
	if last != nil {
		last()
	}
	close(l.done)
}

// wait returns a channel closed once every goroutine has arrived.
func (l *latch) wait() <-chan struct{} { return l.done }
