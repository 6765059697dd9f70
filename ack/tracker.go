package ack

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// TrackerOptions configures a [Tracker]. The zero value means no cap.
type TrackerOptions struct {
	// MaxPending caps the number of unfinished messages: tracking more messages
	// ([Tracker.Track], [Chunk.Add]) waits while the cap would be exceeded. A request for
	// more messages than the cap at once waits until nothing is pending, then is admitted
	// alone. Default: 0, no cap (as is any negative value).
	MaxPending int
}

// Tracker computes a committed offset from out-of-order completions.
//
// Messages are tracked in chunks, in the order the chunks are opened: each chunk is the
// messages of one fetch, and the opaque offset of type O after it. Messages are marked done
// in any order, from any goroutine. The committed offset is the offset after the longest
// prefix of chunks that are sealed and whose every message is done; before any chunk
// commits it is the start offset given to [NewTracker]. It never passes a message that is
// not done and never moves backwards.
//
// Marking messages done costs O(1) and two atomic additions; the tracker's lock is taken
// only when a chunk completes, and by waiters. Completions are folded into the head of the
// chunk list, so a chunk that completes early waits, at no cost, for its predecessors.
//
// A Tracker is safe for concurrent use. The zero Tracker has no cap and a zero start
// offset; it must not be copied after first use.
type Tracker[O any] struct {
	pending   atomic.Int64
	wakeBelow atomic.Int64 // waiters want a wake-up once pending < wakeBelow; 0: none
	max       int64

	mu        sync.Mutex
	head      *Chunk[O] // oldest uncommitted chunk
	tail      *Chunk[O] // newest chunk
	committed O
	halted    bool
	space     chan struct{} // closed and replaced to wake waiters
	advanced  chan struct{} // capacity 1: a coalesced signal per advance
}

// Chunk is one tracked chunk of a [Tracker]: a run of messages and the offset after them.
//
// The chunk's owner (the producer that opened it) calls [Chunk.Add] and [Chunk.Seal], one
// call at a time. [Chunk.Done] and [Chunk.Halt] may be called by any goroutine at any time
// for messages that were added. A producer typically stores the *Chunk in each message's
// [Ref.Ptr], so that the tracker, as an [Acknowledger], marks it in O(1).
type Chunk[O any] struct {
	t      *Tracker[O]
	left   atomic.Int64 // messages added and not done, plus unsealed until sealed
	sealed bool         // owner only
	next   O            // written by Seal before its decrement of left

	// Guarded by t.mu.
	complete bool
	halt     bool
	succ     *Chunk[O]
}

var _ Acknowledger = (*Tracker[string])(nil)

// unsealed is held in a chunk's left count until it is sealed. It is far above any message
// count, so that marking more messages than were added before the seal cannot complete
// the chunk early: the seal finds the count negative and panics instead.
const unsealed = 1 << 40

// NewTracker returns a tracker whose committed offset starts at start: the offset
// the first tracked chunk begins at, typically where reading resumed.
func NewTracker[O any](start O, opts TrackerOptions) *Tracker[O] {
	t := &Tracker[O]{committed: start, max: int64(opts.MaxPending)}
	if t.max < 0 {
		t.max = 0
	}
	return t
}

// Open starts a new chunk, after every chunk tracked so far, with no messages yet. Add its
// messages with [Chunk.Add] as they are produced and [Chunk.Seal] it with the offset after
// its last message once that is known. Until it is sealed, the committed offset stops
// before it. Open does not block.
func (t *Tracker[O]) Open() *Chunk[O] {
	c := &Chunk[O]{t: t}
	c.left.Store(unsealed)
	t.mu.Lock()
	t.linkLocked(c)
	t.mu.Unlock()
	return c
}

// Track tracks a sealed chunk of n messages followed by the offset next: the one-shot form
// of [Tracker.Open], [Chunk.Add] and [Chunk.Seal]. An empty chunk (n == 0) commits as soon
// as every chunk before it has.
//
// In capped mode Track waits while tracking n more messages would exceed the cap; if ctx
// ends first it returns ctx's error and tracks nothing. A negative n is an error.
func (t *Tracker[O]) Track(ctx context.Context, n int, next O) (*Chunk[O], error) {
	if n < 0 {
		return nil, fmt.Errorf("ack: Tracker.Track: negative message count %d", n)
	}
	if err := t.acquire(ctx, int64(n)); err != nil {
		return nil, err
	}
	c := &Chunk[O]{t: t, sealed: true, next: next}
	c.left.Store(int64(n))
	t.mu.Lock()
	t.linkLocked(c)
	if n == 0 {
		t.completeLocked(c) // unlocks
		return c, nil
	}
	t.mu.Unlock()
	return c, nil
}

func (t *Tracker[O]) linkLocked(c *Chunk[O]) {
	if t.tail == nil {
		t.head = c
	} else {
		t.tail.succ = c
	}
	t.tail = c
}

// Add tracks n more messages of the chunk, which must not be sealed yet. In capped mode Add
// waits while that would exceed the cap, so the number of unfinished messages never exceeds
// it; if ctx ends first, Add returns ctx's error and tracks nothing. Add is for the chunk's
// owner only. A negative n is an error.
func (c *Chunk[O]) Add(ctx context.Context, n int) error {
	if c.sealed {
		panic("ack: Chunk.Add on a sealed chunk")
	}
	if n < 0 {
		return fmt.Errorf("ack: Chunk.Add: negative message count %d", n)
	}
	if n == 0 {
		return nil
	}
	if err := c.t.acquire(ctx, int64(n)); err != nil {
		return err
	}
	c.left.Add(int64(n))
	return nil
}

// Seal ends the chunk: no more messages will be added, and next is the offset after its
// last message. The chunk commits once it is sealed, all its messages are done and every
// chunk before it has committed; an empty sealed chunk therefore commits as soon as its
// predecessors have. Seal is for the chunk's owner only and must be called once; it does
// not block (beyond the tracker's lock, when the chunk completes).
func (c *Chunk[O]) Seal(next O) {
	if c.sealed {
		panic("ack: Chunk.Seal on a sealed chunk")
	}
	c.sealed = true
	c.next = next
	if left := c.left.Add(-unsealed); left <= 0 {
		if left < 0 {
			panic("ack: Chunk.Seal: more messages were marked done than were added")
		}
		c.t.complete(c)
	}
}

// Done marks n messages of the chunk done. Each added message must be marked done (or
// halted) exactly once; marking more messages than were added panics, like a negative
// [sync.WaitGroup] counter (on an open chunk, the panic comes at [Chunk.Seal], and the
// chunk never commits meanwhile). Done never blocks on other Done calls: it costs two atomic
// additions, plus the tracker's lock when it completes the chunk. Safe for concurrent use.
func (c *Chunk[O]) Done(n int) {
	if n <= 0 {
		if n < 0 {
			panic("ack: Chunk.Done: negative count")
		}
		return
	}
	left := c.left.Add(-int64(n))
	if left <= 0 {
		if left < 0 {
			panic("ack: Chunk.Done: more messages done than were added")
		}
		c.t.complete(c)
	}
	// Commit first, then release: once pending reads zero, the committed
	// offset reflects every message done.
	t := c.t
	if p := t.pending.Add(-int64(n)); p < t.wakeBelow.Load() {
		t.wake()
	}
}

// Halt marks one message of the chunk done as failed under the Halt failure policy (see
// [Failure.Halt]): the message no longer counts as pending, but the committed offset stops
// before this chunk forever, whatever else completes. Safe for concurrent use.
func (c *Chunk[O]) Halt() {
	t := c.t
	t.mu.Lock()
	c.halt = true
	t.halted = true
	t.mu.Unlock()
	c.Done(1)
}

// complete records that c is sealed and all its messages are done.
func (t *Tracker[O]) complete(c *Chunk[O]) {
	t.mu.Lock()
	t.completeLocked(c)
}

// completeLocked marks c complete and, if c is the head, moves the committed offset over
// every complete chunk from the head. It unlocks t.mu.
func (t *Tracker[O]) completeLocked(c *Chunk[O]) {
	c.complete = true
	if c != t.head {
		t.mu.Unlock()
		return
	}
	advanced := false
	for h := t.head; h != nil && h.complete && !h.halt; h = t.head {
		t.committed = h.next
		t.head = h.succ
		h.succ = nil
		advanced = true
	}
	if t.head == nil {
		t.tail = nil
	}
	ch := t.advanced
	t.mu.Unlock()
	if advanced && ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Committed returns the committed offset: the offset after the longest prefix of tracked
// chunks that are sealed and fully done, or the start offset if none is. It takes the
// tracker's lock briefly.
func (t *Tracker[O]) Committed() O {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.committed
}

// Pending returns the number of messages tracked and not yet done (or halted).
func (t *Tracker[O]) Pending() int {
	return int(t.pending.Load())
}

// Halted reports whether a message was halted with [Chunk.Halt] (or acknowledged with
// [Failure.Halt] set): if so, the committed offset will never again advance.
func (t *Tracker[O]) Halted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.halted
}

// Advanced returns a channel that receives a value after the committed offset advances.
// Signals coalesce: the channel has room for one, and a send finds it full when the
// previous signal has not been taken yet, so one receive may stand for many advances. The
// receiver reads the current value with [Tracker.Committed]. Every call returns the same
// channel, so it suits one consumer, such as a [Saver]. Never closed. Advances before the
// first call are not signalled: the consumer takes the channel first, then reads
// [Tracker.Committed] as its starting point.
func (t *Tracker[O]) Advanced() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.advanced == nil {
		t.advanced = make(chan struct{}, 1)
	}
	return t.advanced
}

// Wait blocks until no message is pending, or until ctx ends (then it returns ctx's error).
// When it returns nil, [Tracker.Committed] reflects every message done so far. It is meant
// for draining, once no more messages are tracked: while messages keep being tracked, a
// moment with none pending may never come. Chunks still open (not sealed) do not count as
// pending, but the committed offset stops before them.
func (t *Tracker[O]) Wait(ctx context.Context) error {
	return t.waitPending(ctx, 0)
}

// Ack implements [Acknowledger] for messages whose [Ref.Ptr] is a *Chunk[O] of this or any
// other Tracker[O]: each message counts as done, failed ones included, except that a
// failure with [Failure.Halt] set halts its chunk (see [Chunk.Halt]). Messages of one chunk
// within one call are marked together, one [Chunk.Done] per chunk and run. Ack never blocks
// on other acks. A Ref whose Ptr is not a *Chunk[O] is a wiring error: Ack panics, naming
// the type it found.
func (t *Tracker[O]) Ack(successful []Ref, failed []Failure) {
	var g chunkGroups[O]
	for i := range successful {
		g.add(successful[i].Ptr)
	}
	for i := range failed {
		if failed[i].Halt {
			chunkOf[O](failed[i].Ref.Ptr).Halt()
			continue
		}
		g.add(failed[i].Ref.Ptr)
	}
	g.flush()
}

// chunkGroups counts messages per chunk within one Ack call, in a fixed array, so
// that interleaved messages of a few chunks cost one Done per chunk.
type chunkGroups[O any] struct {
	n      int
	chunks [8]*Chunk[O]
	counts [8]int
}

func (g *chunkGroups[O]) add(ptr any) {
	c := chunkOf[O](ptr)
	for i := g.n - 1; i >= 0; i-- {
		if g.chunks[i] == c {
			g.counts[i]++
			return
		}
	}
	if g.n == len(g.chunks) {
		g.flush()
	}
	g.chunks[g.n], g.counts[g.n] = c, 1
	g.n++
}

func (g *chunkGroups[O]) flush() {
	for i := range g.n {
		g.chunks[i].Done(g.counts[i])
		g.chunks[i] = nil
	}
	g.n = 0
}

func chunkOf[O any](ptr any) *Chunk[O] {
	c, ok := ptr.(*Chunk[O])
	if !ok || c == nil {
		panic(fmt.Sprintf("ack: Tracker[%T].Ack: Ref.Ptr is %T, want a non-nil %T", *new(O), ptr, c))
	}
	return c
}

// acquire adds n to pending, waiting in capped mode for room.
func (t *Tracker[O]) acquire(ctx context.Context, n int64) error {
	if t.max <= 0 || n == 0 {
		t.pending.Add(n)
		return nil
	}
	for {
		p := t.pending.Load()
		if p+n <= t.max || p == 0 {
			if t.pending.CompareAndSwap(p, p+n) {
				return nil
			}
			continue
		}
		if err := t.waitPending(ctx, max(t.max-n, 0)); err != nil {
			return err
		}
	}
}

// waitPending waits until pending <= threshold is observed, or ctx ends.
//
// A waiter publishes its wish in wakeBelow and then reads pending; a Done
// decrements pending and then reads wakeBelow. One of the two sees the other's
// write, so no wake-up is lost.
func (t *Tracker[O]) waitPending(ctx context.Context, threshold int64) error {
	for {
		if t.pending.Load() <= threshold {
			return nil
		}
		t.mu.Lock()
		if t.wakeBelow.Load() < threshold+1 {
			t.wakeBelow.Store(threshold + 1)
		}
		if t.pending.Load() <= threshold {
			t.mu.Unlock()
			return nil
		}
		if t.space == nil {
			t.space = make(chan struct{})
		}
		ch := t.space
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wake wakes every waiter; each checks again and waits again if it must.
func (t *Tracker[O]) wake() {
	t.mu.Lock()
	t.wakeBelow.Store(0)
	if t.space != nil {
		close(t.space)
		t.space = nil
	}
	t.mu.Unlock()
}
