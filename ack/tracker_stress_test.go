package ack_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice/ack"
)

// TestTrackerCappedStress streams messages into incremental and one-shot chunks under a
// cap, while workers acknowledge them in shuffled groups through the tracker's Ack. It
// checks, at every observation, that pending never exceeds the cap, that the committed
// offset never moves back, and that it never passes a message not yet acknowledged; and at
// the end that everything commits.
func TestTrackerCappedStress(t *testing.T) {
	const (
		maxPending = 64
		chunks     = 300
		workers    = 4
	)
	tr := ack.NewTracker(0, ack.TrackerOptions{MaxPending: maxPending})
	ctx := context.Background()
	sizes := make([]int, chunks)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range sizes {
		sizes[i] = rng.IntN(40) // some chunks empty
	}
	acked := make([]atomic.Int32, chunks) // messages of chunk i handed to Ack

	type msg struct {
		i   int
		ref ack.Ref
	}
	queue := make(chan msg, maxPending) // the pipeline: holds at most the cap anyway

	var wg sync.WaitGroup
	wg.Go(func() { // the producer
		defer close(queue)
		for i, n := range sizes {
			if i%2 == 0 { // streamed: add each message before emitting it
				c := tr.Open()
				for range n {
					if err := c.Add(ctx, 1); err != nil {
						t.Error(err)
						return
					}
					queue <- msg{i, ack.Ref{Ptr: c}}
				}
				c.Seal(i + 1)
				continue
			}
			c, err := tr.Track(ctx, n, i+1) // one-shot
			if err != nil {
				t.Error(err)
				return
			}
			for range n {
				queue <- msg{i, ack.Ref{Ptr: c}}
			}
		}
	})
	for w := range workers {
		wg.Go(func() { // processors acking shuffled groups
			r := rand.New(rand.NewPCG(uint64(w), 3))
			var group []msg
			refs := make([]ack.Ref, 0, 8)
			flush := func() {
				r.Shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
				refs = refs[:0]
				for _, m := range group {
					acked[m.i].Add(1)
					refs = append(refs, m.ref)
				}
				tr.Ack(refs, nil)
				group = group[:0]
			}
			// Ack a group at its size, or as soon as the queue runs dry (like a batch
			// timeout): a held group would otherwise keep the producer waiting.
			size := 1 + r.IntN(8)
			for {
				var m msg
				var ok bool
				select {
				case m, ok = <-queue:
				default:
					flush()
					m, ok = <-queue
				}
				if !ok {
					flush()
					return
				}
				group = append(group, m)
				if len(group) >= size {
					flush()
					size = 1 + r.IntN(8)
				}
			}
		})
	}

	stop := make(chan struct{})
	var observerErr error
	var observer sync.WaitGroup
	observer.Go(func() {
		last := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			if p := tr.Pending(); p > maxPending {
				observerErr = errorf("pending %d exceeds the cap %d", p, maxPending)
				return
			}
			c := tr.Committed()
			if c < last {
				observerErr = errorf("committed moved back from %d to %d", last, c)
				return
			}
			last = c
			for i := range c {
				if int(acked[i].Load()) != sizes[i] {
					observerErr = errorf("committed %d with chunk %d not fully acked", c, i)
					return
				}
			}
		}
	})
	wg.Wait()
	if err := tr.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	observer.Wait()
	if observerErr != nil {
		t.Fatal(observerErr)
	}
	if tr.Committed() != chunks || tr.Pending() != 0 {
		t.Fatalf("end state committed %d pending %d, want %d and 0", tr.Committed(), tr.Pending(), chunks)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
