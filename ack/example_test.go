package ack_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sluice-go/sluice/ack"
)

// The walk-through of the package documentation: three chunks, acks out of order.
func ExampleTracker() {
	ctx := context.Background()
	tr := ack.NewTracker("0", ack.TrackerOptions{})
	a, _ := tr.Track(ctx, 2, "2") // a1 a2
	b, _ := tr.Track(ctx, 1, "3") // b1
	c, _ := tr.Track(ctx, 2, "5") // c1 c2

	step := func(what string, chunk *ack.Chunk[string]) {
		chunk.Done(1)
		fmt.Printf("%s done: committed %s, pending %d\n", what, tr.Committed(), tr.Pending())
	}
	step("b1", b)
	step("c2", c)
	step("a2", a)
	step("a1", a)
	step("c1", c)
	// Output:
	// b1 done: committed 0, pending 4
	// c2 done: committed 0, pending 3
	// a2 done: committed 0, pending 2
	// a1 done: committed 3, pending 1
	// c1 done: committed 5, pending 0
}

// A producer decoding one long response as it streams: each message is added before it is
// emitted (waiting while too many are unfinished), and the chunk is sealed with the offset
// the response ended at.
func ExampleChunk() {
	ctx := context.Background()
	tr := ack.NewTracker("-1", ack.TrackerOptions{MaxPending: 1000})
	chunk := tr.Open()
	var refs []ack.Ref
	for range 3 { // for each item decoded from the body
		if err := chunk.Add(ctx, 1); err != nil {
			return // draining: stop reading
		}
		refs = append(refs, ack.Ref{Ptr: chunk}) // the message's Ref
	}
	chunk.Seal("0000000000000000_0000000000000003") // the response's Stream-Next-Offset

	// The pipeline acknowledges the messages; the tracker is their Acknowledger.
	var acker ack.Acknowledger = tr
	acker.Ack(refs[:2], nil)
	fmt.Println(tr.Committed(), tr.Pending())
	acker.Ack(refs[2:], nil)
	fmt.Println(tr.Committed(), tr.Pending())
	// Output:
	// -1 1
	// 0000000000000000_0000000000000003 0
}

// A Saver keeps a file checkpoint up to date while the pipeline runs, and a final Flush
// after draining saves the last committed offset.
func ExampleSaver() {
	dir, _ := os.MkdirTemp("", "checkpoints")
	defer os.RemoveAll(dir)
	store, err := ack.NewFileStore(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	key := ack.CheckpointKey("orders", "http://127.0.0.1:4437/v1/stream/orders")
	ctx := context.Background()
	start, found, _ := store.Load(ctx, key)
	if !found {
		start = "-1"
	}
	tr := ack.NewTracker(start, ack.TrackerOptions{})
	saver := ack.NewSaver(tr, store, key, ack.SaverOptions[string]{Interval: time.Second})
	runCtx, stop := context.WithCancel(ctx)
	saved := make(chan struct{})
	go func() { defer close(saved); saver.Run(runCtx) }()

	c, _ := tr.Track(ctx, 2, "0000000000000000_0000000000000002")
	c.Done(2)

	// Drain: wait for every message, stop the periodic saves, flush.
	_ = tr.Wait(ctx)
	stop()
	<-saved
	if err := saver.Flush(ctx); err != nil {
		fmt.Println(err)
	}
	offset, _, _ := store.Load(ctx, key)
	fmt.Println(offset)
	// Output: 0000000000000000_0000000000000002
}
