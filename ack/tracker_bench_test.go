package ack_test

import (
	"context"
	"testing"

	"github.com/sluice-go/sluice/ack"
)

// BenchmarkChunkDone marks the messages of one large chunk done, one at a time.
func BenchmarkChunkDone(b *testing.B) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	c, _ := tr.Track(context.Background(), b.N, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.Done(1)
	}
	b.StopTimer()
	if tr.Committed() != 1 || tr.Pending() != 0 {
		b.Fatalf("committed %d pending %d", tr.Committed(), tr.Pending())
	}
}

// BenchmarkChunkDoneParallel marks the messages of one large chunk done from every
// goroutine at once: the hot path under contention.
func BenchmarkChunkDoneParallel(b *testing.B) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	c, _ := tr.Track(context.Background(), b.N, 1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Done(1)
		}
	})
	b.StopTimer()
	if tr.Committed() != 1 || tr.Pending() != 0 {
		b.Fatalf("committed %d pending %d", tr.Committed(), tr.Pending())
	}
}

// BenchmarkChunkDoneCapped is BenchmarkChunkDone with a cap that no Add waits for: the
// cost of the capped mode's wake-up check.
func BenchmarkChunkDoneCapped(b *testing.B) {
	tr := ack.NewTracker(0, ack.TrackerOptions{MaxPending: b.N + 1})
	c, _ := tr.Track(context.Background(), b.N, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.Done(1)
	}
}

// BenchmarkTrackerAck acknowledges batches of 100 messages spread over 4 chunks through
// the tracker's Acknowledger: the per-message cost of the pipeline's ack path.
func BenchmarkTrackerAck(b *testing.B) {
	const batch = 100
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	ctx := context.Background()
	refs := make([]ack.Ref, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; k < b.N; k += batch {
		var cs [4]*ack.Chunk[int]
		for i := range cs {
			cs[i], _ = tr.Track(ctx, batch/4, k+i)
		}
		for i := range refs {
			refs[i] = ack.Ref{Ptr: cs[i%4], N: uint64(i)}
		}
		tr.Ack(refs, nil)
	}
	b.StopTimer()
	if tr.Pending() != 0 {
		b.Fatalf("pending %d", tr.Pending())
	}
}

// BenchmarkIncrementalCapped streams messages into one open chunk under a cap while a
// second goroutine marks them done: the Durable Streams producer's steady state.
func BenchmarkIncrementalCapped(b *testing.B) {
	tr := ack.NewTracker(0, ack.TrackerOptions{MaxPending: 1024})
	ctx := context.Background()
	c := tr.Open()
	ch := make(chan struct{}, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
			c.Done(1)
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := c.Add(ctx, 1); err != nil {
			b.Fatal(err)
		}
		ch <- struct{}{}
	}
	close(ch)
	<-done
	c.Seal(1)
	b.StopTimer()
	if tr.Committed() != 1 {
		b.Fatalf("committed %d", tr.Committed())
	}
}
