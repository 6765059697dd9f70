package main

import (
	"fmt"
	"sync"

	"github.com/sluice-go/sluice/bench/internal/dsload"
)

// tally checks exactly-once delivery of events 0..n-1: each id seen once, none out of
// range, and the sum of the amounts exact. Its methods are safe for concurrent use.
type tally struct {
	mu       sync.Mutex
	n        int64
	seen     []uint8
	count    int64
	dups     int64
	outside  int64
	inexact  int64
	quarters int64
}

// newTally returns a tally of events 0..n-1. Its memory grows with the highest id seen, not
// with n, so that runs stopped early over long streams (the memory runs) do not pay for the
// stream's length.
func newTally(n int) *tally { return &tally{n: int64(n)} }

// add records events; callers with many events pass them in one call (one lock).
func (t *tally) add(evs ...*dsload.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range evs {
		t.addLocked(e.ID, e.Amount)
	}
}

func (t *tally) addLocked(id int64, amount float64) {
	t.count++
	q, ok := dsload.QuartersOf(amount)
	if !ok {
		t.inexact++
	}
	t.quarters += q
	if id < 0 || id >= t.n {
		t.outside++
		return
	}
	if id >= int64(len(t.seen)) {
		t.seen = append(t.seen, make([]uint8, min(max(id+1, 2*int64(len(t.seen)), 1024), t.n)-int64(len(t.seen)))...)
	}
	if t.seen[id] != 0 {
		t.dups++
	}
	t.seen[id] = 1
}

// verdict returns nil if every event 0..n-1 was seen exactly once with the right amounts.
func (t *tally) verdict() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.partialLocked(); err != nil {
		return err
	}
	if t.count != t.n {
		return fmt.Errorf("%d events seen, want %d", t.count, t.n)
	}
	if want := dsload.SumQuarters(t.n); t.quarters != want {
		return fmt.Errorf("sum of amounts %.2f, want %.2f", float64(t.quarters)/4, float64(want)/4)
	}
	return nil
}

// partial returns nil if the events seen so far were each seen once, with the right amounts
// (for runs stopped before the end of the stream).
func (t *tally) partial() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.partialLocked()
}

func (t *tally) partialLocked() error {
	switch {
	case t.dups > 0:
		return fmt.Errorf("%d events seen more than once", t.dups)
	case t.outside > 0:
		return fmt.Errorf("%d events with ids outside 0..%d", t.outside, t.n-1)
	case t.inexact > 0:
		return fmt.Errorf("%d amounts not multiples of 0.25", t.inexact)
	}
	var want int64
	for id, s := range t.seen {
		if s != 0 {
			want += dsload.Quarters(int64(id))
		}
	}
	if t.quarters != want {
		return fmt.Errorf("sum of amounts %.2f, want %.2f for the events seen", float64(t.quarters)/4, float64(want)/4)
	}
	return nil
}

func (t *tally) total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}
