package ack_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/ack"
)

// model is a reference implementation of the committed offset: chunk i ends at
// offset i+1, the start offset is 0.
type model struct {
	sizes  []int  // messages added per chunk
	done   []int  // messages done per chunk
	sealed []bool // chunk sealed
	halted []bool
}

func (m *model) track(n int, sealed bool) int {
	m.sizes = append(m.sizes, n)
	m.done = append(m.done, 0)
	m.sealed = append(m.sealed, sealed)
	m.halted = append(m.halted, false)
	return len(m.sizes) - 1
}

// committed is the offset after the longest prefix of sealed, fully done, unhalted chunks.
func (m *model) committed() int {
	for i := range m.sizes {
		if !m.sealed[i] || m.done[i] < m.sizes[i] || m.halted[i] {
			return i
		}
	}
	return len(m.sizes)
}

func (m *model) pending() int {
	p := 0
	for i := range m.sizes {
		p += m.sizes[i] - m.done[i]
	}
	return p
}

func check(t *testing.T, tr *ack.Tracker[int], m *model, step string) {
	t.Helper()
	if got, want := tr.Committed(), m.committed(); got != want {
		t.Fatalf("%s: Committed() = %d, want %d", step, got, want)
	}
	if got, want := tr.Pending(), m.pending(); got != want {
		t.Fatalf("%s: Pending() = %d, want %d", step, got, want)
	}
}

// ref names one message: its chunk index and the chunk.
type ref struct {
	i int
	c *ack.Chunk[int]
}

// trackAll tracks chunks of the given sizes (one-shot) and returns one ref per message,
// in stream order.
func trackAll(t *testing.T, tr *ack.Tracker[int], m *model, sizes []int) []ref {
	t.Helper()
	var refs []ref
	for _, n := range sizes {
		i := m.track(n, true)
		c, err := tr.Track(context.Background(), n, i+1)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			refs = append(refs, ref{i, c})
		}
	}
	return refs
}

var sizes = []int{3, 1, 0, 5, 2, 0, 0, 4, 1, 7}

func TestTrackerSequential(t *testing.T) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	m := &model{}
	refs := trackAll(t, tr, m, sizes)
	// The leading chunks are not empty, so nothing commits yet.
	check(t, tr, m, "tracked")
	for k, r := range refs {
		r.c.Done(1)
		m.done[r.i]++
		check(t, tr, m, "done "+itoa(k))
	}
	if got := tr.Committed(); got != len(sizes) {
		t.Fatalf("final Committed() = %d, want %d", got, len(sizes))
	}
}

func TestTrackerReverse(t *testing.T) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	m := &model{}
	refs := trackAll(t, tr, m, sizes)
	for k := len(refs) - 1; k >= 0; k-- {
		r := refs[k]
		r.c.Done(1)
		m.done[r.i]++
		check(t, tr, m, "done "+itoa(k))
		if k > 0 && tr.Committed() != 0 {
			t.Fatalf("committed %d before the first message is done", tr.Committed())
		}
	}
	if got := tr.Committed(); got != len(sizes) {
		t.Fatalf("final Committed() = %d, want %d", got, len(sizes))
	}
}

func TestTrackerRandomPermutations(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var sz []int
		for range 1 + rng.IntN(12) {
			sz = append(sz, rng.IntN(6))
		}
		tr := ack.NewTracker(0, ack.TrackerOptions{})
		m := &model{}
		refs := trackAll(t, tr, m, sz)
		rng.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
		last := tr.Committed()
		for k, r := range refs {
			r.c.Done(1)
			m.done[r.i]++
			check(t, tr, m, "seed "+itoa(int(seed))+" done "+itoa(k))
			if c := tr.Committed(); c < last {
				t.Fatalf("seed %d: committed moved back from %d to %d", seed, last, c)
			} else {
				last = c
			}
		}
		if tr.Committed() != len(sz) || tr.Pending() != 0 {
			t.Fatalf("seed %d: end state committed %d pending %d, want %d and 0", seed, tr.Committed(), tr.Pending(), len(sz))
		}
	}
}

// TestTrackerConcurrent marks messages from many goroutines while an observer checks
// that the committed offset never passes a message not yet marked and never moves back.
func TestTrackerConcurrent(t *testing.T) {
	const chunks, per, workers = 200, 50, 8
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	type msg struct {
		chunk int
		c     *ack.Chunk[int]
	}
	var msgs []msg
	for i := range chunks {
		c, err := tr.Track(context.Background(), per, i+1)
		if err != nil {
			t.Fatal(err)
		}
		for range per {
			msgs = append(msgs, msg{i, c})
		}
	}
	// doneBefore[i] counts messages of chunk i that are about to be marked done.
	doneBefore := make([]atomic.Int32, chunks)
	rand.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

	stop := make(chan struct{})
	observed := make(chan error, 1)
	go func() {
		last := 0
		for {
			c := tr.Committed()
			if c < last {
				observed <- errors.New("committed moved backwards")
				return
			}
			last = c
			for i := range c {
				if n := doneBefore[i].Load(); n != per {
					observed <- errors.New("committed past chunk " + itoa(i) + " with " + itoa(int(n)) + " messages marked")
					return
				}
			}
			select {
			case <-stop:
				observed <- nil
				return
			default:
			}
		}
	}()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := w; k < len(msgs); k += workers {
				doneBefore[msgs[k].chunk].Add(1)
				msgs[k].c.Done(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-observed; err != nil {
		t.Fatal(err)
	}
	if tr.Committed() != chunks || tr.Pending() != 0 {
		t.Fatalf("end state committed %d pending %d, want %d and 0", tr.Committed(), tr.Pending(), chunks)
	}
}

func TestTrackerIncrementalChunk(t *testing.T) {
	tr := ack.NewTracker("start", ack.TrackerOptions{})
	ctx := context.Background()

	a := tr.Open()
	for range 3 {
		if err := a.Add(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	a.Done(3) // all done, but a is not sealed: its end is not known yet
	if got := tr.Committed(); got != "start" {
		t.Fatalf("committed %q before the chunk is sealed", got)
	}
	if err := a.Add(ctx, 2); err != nil {
		t.Fatal(err)
	}
	b, err := tr.Track(ctx, 1, "b-end")
	if err != nil {
		t.Fatal(err)
	}
	b.Done(1) // b is complete but waits for a
	if got := tr.Committed(); got != "start" {
		t.Fatalf("committed %q past an open chunk", got)
	}
	a.Seal("a-end")
	if got := tr.Committed(); got != "start" {
		t.Fatalf("committed %q with 2 messages of the chunk pending", got)
	}
	a.Done(1)
	a.Done(1)
	if got := tr.Committed(); got != "b-end" {
		t.Fatalf("Committed() = %q, want b-end", got)
	}
	if tr.Pending() != 0 {
		t.Fatalf("Pending() = %d, want 0", tr.Pending())
	}
}

func TestTrackerEmptyChunks(t *testing.T) {
	ctx := context.Background()
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	if _, err := tr.Track(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	if got := tr.Committed(); got != 1 {
		t.Fatalf("an empty chunk at the head: Committed() = %d, want 1", got)
	}
	c, _ := tr.Track(ctx, 2, 2)
	tr.Track(ctx, 0, 3) // a long-poll that only moved the offset
	e := tr.Open()
	e.Seal(4) // opened and sealed with no messages
	if got := tr.Committed(); got != 1 {
		t.Fatalf("empty chunks committed past a pending one: Committed() = %d, want 1", got)
	}
	c.Done(2)
	if got := tr.Committed(); got != 4 {
		t.Fatalf("Committed() = %d, want 4", got)
	}
}

func TestTrackerCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := ack.NewTracker(0, ack.TrackerOptions{MaxPending: 3})
		ctx := context.Background()
		c := tr.Open()
		if err := c.Add(ctx, 3); err != nil {
			t.Fatal(err)
		}
		added := make(chan error)
		go func() { added <- c.Add(ctx, 2) }()
		synctest.Wait()
		select {
		case err := <-added:
			t.Fatalf("Add past the cap returned %v, want it to wait", err)
		default:
		}
		c.Done(1) // 2 pending: room for 1, not 2
		synctest.Wait()
		select {
		case err := <-added:
			t.Fatalf("Add of 2 with room for 1 returned %v", err)
		default:
		}
		c.Done(1)
		if err := <-added; err != nil {
			t.Fatal(err)
		}
		if got := tr.Pending(); got != 3 {
			t.Fatalf("Pending() = %d, want 3", got)
		}

		// A chunk larger than the cap is admitted alone.
		big := make(chan error)
		go func() {
			_, err := tr.Track(ctx, 10, 2)
			big <- err
		}()
		synctest.Wait()
		c.Seal(1)
		c.Done(2)
		synctest.Wait()
		select {
		case err := <-big:
			t.Fatalf("oversized Track with 1 pending returned %v", err)
		default:
		}
		c.Done(1)
		if err := <-big; err != nil {
			t.Fatal(err)
		}
		if got := tr.Pending(); got != 10 {
			t.Fatalf("Pending() = %d, want 10", got)
		}
	})
}

func TestTrackerCappedCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := ack.NewTracker(0, ack.TrackerOptions{MaxPending: 1})
		c, err := tr.Track(context.Background(), 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = tr.Track(ctx, 1, 2)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Track past the cap with a deadline: %v, want DeadlineExceeded", err)
		}
		o := tr.Open()
		ctx2, cancel2 := context.WithCancel(context.Background())
		res := make(chan error)
		go func() { res <- o.Add(ctx2, 1) }()
		synctest.Wait()
		cancel2()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("Add after cancel: %v, want Canceled", err)
		}
		if got := tr.Pending(); got != 1 {
			t.Fatalf("cancelled waits tracked messages: Pending() = %d, want 1", got)
		}
		c.Done(1)
		o.Seal(2)
		if got := tr.Committed(); got != 2 {
			t.Fatalf("Committed() = %d, want 2", got)
		}
	})
}

func TestTrackerWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := ack.NewTracker(0, ack.TrackerOptions{})
		ctx := context.Background()
		if err := tr.Wait(ctx); err != nil {
			t.Fatalf("Wait with nothing pending: %v", err)
		}
		a, _ := tr.Track(ctx, 2, 1)
		b, _ := tr.Track(ctx, 1, 2)
		waited := make(chan int)
		go func() {
			if err := tr.Wait(ctx); err != nil {
				t.Error(err)
			}
			waited <- tr.Committed()
		}()
		b.Done(1)
		a.Done(1)
		synctest.Wait()
		select {
		case <-waited:
			t.Fatal("Wait returned with a message pending")
		default:
		}
		a.Done(1)
		if got := <-waited; got != 2 {
			t.Fatalf("after Wait, Committed() = %d, want 2", got)
		}

		c, _ := tr.Track(ctx, 1, 3)
		cctx, cancel := context.WithCancel(ctx)
		go func() { waited <- boolInt(errors.Is(tr.Wait(cctx), context.Canceled)) }()
		synctest.Wait()
		cancel()
		if <-waited != 1 {
			t.Fatal("Wait did not return Canceled")
		}
		c.Done(1)
	})
}

func TestTrackerAdvanced(t *testing.T) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	adv := tr.Advanced()
	if tr.Advanced() != adv {
		t.Fatal("Advanced returned a different channel")
	}
	ctx := context.Background()
	a, _ := tr.Track(ctx, 1, 1)
	b, _ := tr.Track(ctx, 1, 2)
	b.Done(1)
	select {
	case <-adv:
		t.Fatal("signal without an advance")
	default:
	}
	a.Done(1)
	c, _ := tr.Track(ctx, 1, 3)
	c.Done(1) // a second advance coalesces with the first
	<-adv
	select {
	case <-adv:
		t.Fatal("two signals for two advances not yet received; want them coalesced")
	default:
	}
	if got := tr.Committed(); got != 3 {
		t.Fatalf("Committed() = %d, want 3", got)
	}
}

func TestTrackerHalt(t *testing.T) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	ctx := context.Background()
	a, _ := tr.Track(ctx, 2, 1)
	b, _ := tr.Track(ctx, 2, 2)
	c, _ := tr.Track(ctx, 1, 3)
	a.Done(2)
	b.Done(1)
	b.Halt()
	c.Done(1)
	if got := tr.Committed(); got != 1 {
		t.Fatalf("Committed() = %d, want 1: stopped before the halted chunk", got)
	}
	if !tr.Halted() {
		t.Fatal("Halted() = false after Halt")
	}
	if tr.Pending() != 0 {
		t.Fatalf("Pending() = %d, want 0: a halted message is no longer pending", tr.Pending())
	}
	if err := tr.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := tr.Track(ctx, 0, 4)
	_ = d
	if got := tr.Committed(); got != 1 {
		t.Fatalf("Committed() = %d after Halt, want it to stay at 1", got)
	}
}

func TestTrackerAck(t *testing.T) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	ctx := context.Background()
	var chunks []*ack.Chunk[int]
	for i := range 12 {
		c, _ := tr.Track(ctx, 2, i+1)
		chunks = append(chunks, c)
	}
	var a ack.Acknowledger = tr
	// More distinct chunks in one call than the grouping array holds, interleaved.
	var ok []ack.Ref
	for i := 11; i >= 1; i-- {
		ok = append(ok, ack.Ref{Ptr: chunks[i], N: 0})
	}
	for i := 1; i < 12; i++ {
		ok = append(ok, ack.Ref{Ptr: chunks[i], N: 1})
	}
	a.Ack(ok, []ack.Failure{{Ref: ack.Ref{Ptr: chunks[0]}, Err: errors.New("bad item")}})
	if got := tr.Committed(); got != 0 {
		t.Fatalf("Committed() = %d with a message of chunk 0 pending", got)
	}
	if tr.Pending() != 1 {
		t.Fatalf("Pending() = %d, want 1", tr.Pending())
	}
	a.Ack([]ack.Ref{{Ptr: chunks[0], N: 1}}, nil)
	if got := tr.Committed(); got != 12 {
		t.Fatalf("Committed() = %d, want 12", got)
	}

	h, _ := tr.Track(ctx, 2, 13)
	a.Ack([]ack.Ref{{Ptr: h}}, []ack.Failure{{Ref: ack.Ref{Ptr: h}, Err: errors.New("poison"), Halt: true}})
	if got := tr.Committed(); got != 12 || !tr.Halted() || tr.Pending() != 0 {
		t.Fatalf("after a halting failure: committed %d halted %v pending %d, want 12 true 0", got, tr.Halted(), tr.Pending())
	}
}

func TestTrackerAckForeignRef(t *testing.T) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	defer func() {
		r := recover()
		s, _ := r.(string)
		if !strings.Contains(s, "Ref.Ptr is string") {
			t.Fatalf("panic %v, want one naming the Ptr's type", r)
		}
	}()
	tr.Ack([]ack.Ref{{Ptr: "x"}}, nil)
}

func TestTrackerMisuse(t *testing.T) {
	tr := ack.NewTracker(0, ack.TrackerOptions{})
	ctx := context.Background()
	if _, err := tr.Track(ctx, -1, 1); err == nil {
		t.Error("Track(-1) succeeded")
	}
	c := tr.Open()
	if err := c.Add(ctx, -1); err == nil {
		t.Error("Add(-1) succeeded")
	}
	c.Add(ctx, 1)
	c.Seal(1)
	mustPanic(t, "Done past the count", func() { c.Done(2) })
	mustPanic(t, "Add after Seal", func() { c.Add(ctx, 1) })
	mustPanic(t, "Seal twice", func() { c.Seal(2) })

	tr = ack.NewTracker(0, ack.TrackerOptions{})
	o := tr.Open() // marking past the count before the seal never commits
	o.Add(ctx, 1)
	o.Done(1)
	o.Done(1)
	if got := tr.Committed(); got != 0 {
		t.Fatalf("an over-marked open chunk committed: Committed() = %d, want 0", got)
	}
	mustPanic(t, "Seal of an over-marked chunk", func() { o.Seal(2) })
}

func TestTrackerZeroValue(t *testing.T) {
	var tr ack.Tracker[int]
	c, err := tr.Track(context.Background(), 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Committed() != 0 {
		t.Fatalf("zero tracker starts at %d, want 0", tr.Committed())
	}
	c.Done(1)
	if tr.Committed() != 7 {
		t.Fatalf("Committed() = %d, want 7", tr.Committed())
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }
