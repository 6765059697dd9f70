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
// after draining saves the last committed position. Positions let the committed place fall
// inside a response: here, one message after the offset that starts the second response.
func ExampleSaver() {
	dir, _ := os.MkdirTemp("", "checkpoints")
	defer os.RemoveAll(dir)
	store, err := ack.NewFileStore(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	key := ack.CheckpointKey("orders", "/v1/stream/orders") // the stream's path, no credentials
	ctx := context.Background()
	start := ack.Position{Offset: "-1", Seq: 0} // the beginning: the first message is number 0
	if saved, found, err := store.Load(ctx, key); err != nil {
		fmt.Println(err)
		return
	} else if found {
		if start, err = ack.ParsePosition(saved); err != nil {
			fmt.Println(err)
			return
		}
	}
	tr := ack.NewTracker(start, ack.TrackerOptions{})
	saver := ack.NewSaver(tr, store, key, ack.SaverOptions[ack.Position]{
		Interval: time.Second,
		Encode:   ack.Position.String,
		Compare:  ack.Position.Compare,
	})
	runCtx, stop := context.WithCancel(ctx)
	saved := make(chan struct{})
	go func() { defer close(saved); saver.Run(runCtx) }()

	const second = "0000000000000000_0000000000000002" // where the second response starts
	a, _ := tr.Track(ctx, 2, ack.Position{Offset: second, Seq: 2})
	b, _ := tr.Track(ctx, 1, ack.Position{Offset: second, Skip: 1, Seq: 3})
	a.Done(2)
	b.Done(1)

	// Drain: wait for every message, stop the periodic saves, flush.
	_ = tr.Wait(ctx)
	stop()
	<-saved
	if err := saver.Flush(ctx); err != nil {
		fmt.Println(err)
	}
	value, _, _ := store.Load(ctx, key)
	p, _ := ack.ParsePosition(value)
	fmt.Println(value)
	fmt.Printf("resume: read from %s, skip %d, next message number %d\n", p.Offset, p.Skip, p.Seq)
	// Output:
	// 0000000000000000_0000000000000002,1,3
	// resume: read from 0000000000000000_0000000000000002, skip 1, next message number 3
}

// The checkpoint encoding: a bare offset when nothing after it is done and no number is
// known (what older versions saved), "offset,skip,seq" otherwise.
func ExamplePosition_String() {
	fmt.Println(ack.Position{Offset: "0000000000000000_0000000000000051", Skip: 0, Seq: -1})
	fmt.Println(ack.Position{Offset: "0000000000000000_0000000000000051", Skip: 250, Seq: 1250})
	// Output:
	// 0000000000000000_0000000000000051
	// 0000000000000000_0000000000000051,250,1250
}

func ExampleParsePosition() {
	for _, s := range []string{"0000000000000000_0000000000000051", "0000000000000000_0000000000000051,250,1250", "x,5"} {
		p, err := ack.ParsePosition(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("offset %s, skip %d, seq %d\n", p.Offset, p.Skip, p.Seq)
	}
	// Output:
	// offset 0000000000000000_0000000000000051, skip 0, seq -1
	// offset 0000000000000000_0000000000000051, skip 250, seq 1250
	// ack: bad checkpoint position "x,5": want "offset,skip,seq" or a bare offset
}

// A store keeps the later of two positions, whatever order the saves arrive in.
func ExampleSupersedes() {
	const x = "0000000000000000_0000000000000010"
	fmt.Println(ack.Supersedes(x+",10,20", x+",9,19")) // further inside the same response
	fmt.Println(ack.Supersedes(x, x+",9,19"))          // the response's start, saved late
	fmt.Println(ack.Supersedes(x, "-1"))               // a saved sentinel is always replaced
	// Output:
	// true
	// false
	// true
}
