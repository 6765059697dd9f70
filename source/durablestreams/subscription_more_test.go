package durablestreams_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// watch is a mutex whose changes wake the goroutines waiting for a condition on what it
// guards.
type watch struct {
	mu sync.Mutex
	ch chan struct{} // closed and replaced at each change
}

// update runs f under the lock and wakes the waiters.
func (w *watch) update(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
	if w.ch != nil {
		close(w.ch)
	}
	w.ch = make(chan struct{})
}

// await waits until cond, called under the lock, holds; it fails t after timeout.
func (w *watch) await(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		ok := cond()
		if w.ch == nil {
			w.ch = make(chan struct{})
		}
		ch := w.ch
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: not after %v", what, timeout)
		}
	}
}

// subEvents records a worker's subscription and stream events: its heartbeats, the ends of
// its claims, its commits, and each stream's response boundaries (the offsets its reads
// started and ended at, with the number of messages before each), which are the only
// offsets a heartbeat may move the server's cursor to.
type subEvents struct {
	ds.NopSubscriptionObserver
	ds.NopProducerObserver
	watch
	heartbeats int                                  // succeeded
	acked      int                                  // succeeded, with acks
	ends       []ds.ClaimEndEvent                   // claims ended
	commits    []ack.Position                       // committed positions, in order
	counted    map[string]int64                     // stream URL → messages in the responses read
	bounds     map[string]map[dsclient.Offset]int64 // stream URL → boundary → messages before it
	onCommit   func(ds.CommitEvent)                 // called first, outside the lock
}

func newSubEvents() *subEvents {
	return &subEvents{counted: map[string]int64{}, bounds: map[string]map[dsclient.Offset]int64{}}
}

func (e *subEvents) Heartbeat(h ds.HeartbeatEvent) {
	e.update(func() {
		if h.Err == nil {
			e.heartbeats++
			if h.Acks > 0 {
				e.acked++
			}
		}
	})
}

func (e *subEvents) ClaimEnded(c ds.ClaimEndEvent) {
	e.update(func() { e.ends = append(e.ends, c) })
}

func (e *subEvents) ProducerChunk(c ds.ProducerChunkEvent) {
	e.update(func() {
		b := e.bounds[c.URL]
		if b == nil {
			b = map[dsclient.Offset]int64{}
			e.bounds[c.URL] = b
		}
		if _, ok := b[c.Start]; !ok {
			b[c.Start] = e.counted[c.URL]
		}
		e.counted[c.URL] += int64(c.Messages)
		b[c.Next] = e.counted[c.URL]
	})
}

func (e *subEvents) Committed(c ds.CommitEvent) {
	if e.onCommit != nil {
		e.onCommit(c)
	}
	e.update(func() { e.commits = append(e.commits, c.Position) })
}

// boundaryBefore returns the number of messages before the last response boundary of
// stream u at or before message number n: where a heartbeat acks a stream whose first n
// messages are finished.
func (e *subEvents) boundaryBefore(u string, n int64) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	best := int64(0)
	for _, c := range e.bounds[u] {
		if c <= n && c > best {
			best = c
		}
	}
	return best
}

// committedSeqLocked returns the Seq of the last committed position, or -1. Called with
// the lock held.
func (e *subEvents) committedSeqLocked() int64 {
	if len(e.commits) == 0 {
		return -1
	}
	return e.commits[len(e.commits)-1].Seq
}

// cursor returns the server's cursor on stream s of sub, as the number of messages before
// it: the offset must be a response boundary the worker read.
func (e *subEvents) cursor(sub *dsclient.Subscription, s *dsclient.Stream) (int64, dsclient.Offset, error) {
	info, err := sub.Get(context.Background())
	if err != nil {
		return 0, "", err
	}
	for _, ls := range info.Streams {
		if sub.Stream(ls.Path).URL() != s.URL() {
			continue
		}
		if ls.AckedOffset == dsclient.Beginning || ls.AckedOffset == "" {
			return 0, ls.AckedOffset, nil
		}
		e.mu.Lock()
		n, ok := e.bounds[s.URL()][ls.AckedOffset]
		e.mu.Unlock()
		if !ok {
			return 0, ls.AckedOffset, fmt.Errorf("the cursor %s is at no response boundary the worker read", ls.AckedOffset)
		}
		return n, ls.AckedOffset, nil
	}
	return 0, "", fmt.Errorf("%s is not linked to %s", s.URL(), sub.ID())
}

// finishedSet records which messages (by position) a handler finished.
type finishedSet struct {
	watch
	done   []bool
	count  int
	prefix int64 // the messages 0..prefix-1 are all finished
}

func newFinishedSet(n int) *finishedSet { return &finishedSet{done: make([]bool, n)} }

func (f *finishedSet) add(pos int64) {
	f.update(func() {
		if pos < 0 || pos >= int64(len(f.done)) || f.done[pos] {
			return
		}
		f.done[pos] = true
		f.count++
		for f.prefix < int64(len(f.done)) && f.done[f.prefix] {
			f.prefix++
		}
	})
}

func (f *finishedSet) contiguous() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prefix
}

// gate lets a handler finish the messages whose position is below its limit; the others
// wait until the test raises it.
type gate struct {
	watch
	limit int64
}

func (g *gate) set(limit int64) { g.update(func() { g.limit = limit }) }

func (g *gate) pass(ctx context.Context, pos int64) error {
	for {
		g.mu.Lock()
		ok := pos < g.limit
		if g.ch == nil {
			g.ch = make(chan struct{})
		}
		ch := g.ch
		g.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// subPipe is a pipeline of one processor pool over a SubscriptionProducer, recording its
// events.
type subPipe struct {
	ev   *subEvents
	pl   *pipeline.Pipeline[event]
	done chan error
}

// runSubPipeline runs po over sub, with heartbeats every heartbeat (0: the default), until
// the test stops it or ends.
func runSubPipeline(t *testing.T, sub *dsclient.Subscription, ev *subEvents, heartbeat time.Duration, po pipeline.ProcessorOptions[event]) *subPipe {
	t.Helper()
	src, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[event]{
		Subscriptions:      []*dsclient.Subscription{sub},
		Worker:             "w",
		Name:               "fleet",
		Checkpoints:        &ack.MemoryStore{},
		CheckpointInterval: 10 * time.Millisecond,
		HeartbeatInterval:  heartbeat,
		Observer:           ev,
		ProducerObserver:   ev,
		Logger:             testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pipeline.New(pipeline.Options[event]{
		Name:            t.Name(),
		Producer:        src,
		Processors:      []pipeline.ProcessorOptions[event]{po},
		MaxInFlight:     2000,
		ShutdownTimeout: 20 * time.Second,
		Logger:          testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	sp := &subPipe{ev: ev, pl: pl, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { sp.done <- pl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-sp.done:
		case <-time.After(30 * time.Second):
			t.Errorf("the pipeline did not stop")
		}
	})
	return sp
}

// stop drains the pipeline and returns Run's error.
func (sp *subPipe) stop(t *testing.T) error {
	t.Helper()
	sp.pl.Stop()
	select {
	case err := <-sp.done:
		sp.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the pipeline did not drain")
		return nil
	}
}

// While a claim is held — its stream not read to the end and committed, because the sink
// finishes messages only as the test lets it — the heartbeats move the server's cursor on
// the stream to the committed position: the last response boundary before the first
// unfinished message, never past it, and long before the claim is acked done.
func TestSubscriptionHeartbeatsCommit(t *testing.T) {
	// Responses of about 40 events: boundaries inside the stream to ack.
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second, MaxChunkBytes: 1 << 10})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 3*time.Second)
	const n = 1000
	s := e.stream("g", 0)
	appendTo(t, s, 0, n, 10)

	g := &gate{}
	fin := newFinishedSet(n)
	ev := newSubEvents()
	sp := runSubPipeline(t, sub, ev, 200*time.Millisecond, pipeline.ProcessorOptions[event]{Concurrency: 4, MaxDemand: 8,
		Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error {
			if err := g.pass(ctx, m.Metadata.Position); err != nil {
				return err
			}
			fin.add(m.Metadata.Position)
			return nil
		})})
	t.Cleanup(func() { g.set(n) }) // before the pipeline's cleanup, which waits for it to stop

	prev := int64(0)
	for _, limit := range []int64{305, 705} { // inside responses
		g.set(limit)
		eventually(t, 8*time.Second, func() (bool, string) {
			at, off, err := ev.cursor(sub, s)
			if err != nil {
				t.Fatal(err)
			}
			if done := fin.contiguous(); at > done || at > limit {
				t.Fatalf("the server's cursor is at message %d (%s), past the %d messages finished in order (the sink lets %d through)", at, off, done, limit)
			}
			ev.mu.Lock()
			ended := len(ev.ends)
			ev.mu.Unlock()
			if ended > 0 {
				t.Fatalf("the claim ended while messages %d.. were held", limit)
			}
			want := ev.boundaryBefore(s.URL(), limit)
			return at == want && want > prev, fmt.Sprintf("the server's cursor is at message %d (%s); want %d, the last response boundary before the first unfinished message %d", at, off, want, limit)
		})
		prev = ev.boundaryBefore(s.URL(), limit)
		t.Logf("with messages 0..%d finished, the server's cursor moved to message %d while the claim was held", limit-1, prev)
	}
	ev.mu.Lock()
	if ev.acked < 2 || len(ev.ends) != 0 {
		t.Errorf("%d heartbeats with acks, %d claims ended; want the cursor moved by heartbeats of the claim held", ev.acked, len(ev.ends))
	}
	ev.mu.Unlock()

	g.set(n)
	ev.await(t, 8*time.Second, "the claim acked done", func() bool { return len(ev.ends) > 0 })
	eventually(t, 8*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, 1) })
	ev.mu.Lock()
	if ev.ends[0].Reason != ds.ClaimDone {
		t.Errorf("the claim ended %v, want done", ev.ends[0].Reason)
	}
	ev.mu.Unlock()
	if err := sp.stop(t); err != nil {
		t.Fatal(err)
	}
}

// Within one stream, message k is held while every later message finishes: the committed
// position (the producer's commits, and the server's cursor that heartbeats move) reaches
// k and stays there, and the claim is not done; once k finishes, it moves past all of
// them to the end of the stream.
func TestSubscriptionCommitsContiguousPrefix(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second, MaxChunkBytes: 1 << 10})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 3*time.Second)
	const n, k = 400, 125
	s := e.stream("g", 0)
	appendTo(t, s, 0, n, 10)

	var kDone atomic.Bool
	var early atomic.Pointer[ack.Position] // a commit past k before k finished
	release := make(chan struct{})
	fin := newFinishedSet(n)
	ev := newSubEvents()
	ev.onCommit = func(c ds.CommitEvent) {
		if c.Position.Seq > k && !kDone.Load() {
			p := c.Position
			early.CompareAndSwap(nil, &p)
		}
	}
	// One message per processor at a time, four at once: message k holds one processor,
	// the others go on with the messages after it.
	sp := runSubPipeline(t, sub, ev, 200*time.Millisecond, pipeline.ProcessorOptions[event]{Concurrency: 4, MaxDemand: 1,
		Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error {
			if m.Metadata.Position == k {
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
				kDone.Store(true)
			}
			fin.add(m.Metadata.Position)
			return nil
		})})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before the pipeline's cleanup, which waits for it to stop

	fin.await(t, 8*time.Second, "every message but k finished", func() bool { return fin.count == n-1 && !fin.done[k] })
	ev.await(t, 8*time.Second, "a commit up to k", func() bool { return ev.committedSeqLocked() >= k })
	if p := early.Load(); p != nil {
		t.Fatalf("committed %s, past message %d, before it finished", p, k)
	}
	var hb int
	ev.mu.Lock()
	hb = ev.heartbeats
	ev.mu.Unlock()
	// The heartbeats move the server's cursor to the boundary before k, and no further.
	want := ev.boundaryBefore(s.URL(), k)
	eventually(t, 8*time.Second, func() (bool, string) {
		at, off, err := ev.cursor(sub, s)
		if err != nil {
			t.Fatal(err)
		}
		if at > k {
			t.Fatalf("the server's cursor is at message %d (%s), past message %d, which is not finished", at, off, k)
		}
		return at == want, fmt.Sprintf("the server's cursor is at message %d (%s), want %d", at, off, want)
	})
	ev.await(t, 8*time.Second, "two more heartbeats", func() bool { return ev.heartbeats >= hb+2 })
	at, off, err := ev.cursor(sub, s)
	if err != nil {
		t.Fatal(err)
	}
	if at != want {
		t.Errorf("after two more heartbeats the server's cursor is at message %d (%s), want %d", at, off, want)
	}
	ev.mu.Lock()
	last, ended := ev.committedSeqLocked(), len(ev.ends)
	ev.mu.Unlock()
	if last != k || ended != 0 {
		t.Errorf("with message %d held: committed up to message %d, %d claims ended; want %d and none", k, last, ended, k)
	}
	if p := early.Load(); p != nil {
		t.Fatalf("committed %s, past message %d, before it finished", p, k)
	}

	unblock()
	ev.await(t, 8*time.Second, "a commit to the end", func() bool { return ev.committedSeqLocked() == n })
	ev.await(t, 8*time.Second, "the claim acked done", func() bool { return len(ev.ends) > 0 })
	eventually(t, 8*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, 1) })
	ev.mu.Lock()
	for i, p := range ev.commits {
		if i > 0 && p.Seq < ev.commits[i-1].Seq {
			t.Errorf("committed %s after %s: backwards", p, ev.commits[i-1])
		}
	}
	if ev.ends[0].Reason != ds.ClaimDone {
		t.Errorf("the claim ended %v, want done", ev.ends[0].Reason)
	}
	ev.mu.Unlock()
	if err := sp.stop(t); err != nil {
		t.Fatal(err)
	}
}

// Several streams under one subscription, through a pool of four partitioned by stream:
// each stream's messages reach the handler in position order, while the streams are
// handled at once.
func subscriptionStreamOrder(t *testing.T, root string) {
	const conc, per = 4, 400
	e := newSubEnv(t, root)
	sub := e.pullWake("a", "g", 10*time.Second)
	part := pipeline.PartitionByKey(func(m *pipeline.Message[event]) string { return m.Metadata.Stream })
	// One stream for each goroutine of the pool: the streams' paths are picked so that no
	// two share one (a stream waiting in the handler below must not hold up the others).
	var streams []*dsclient.Stream
	taken := map[uint64]bool{}
	for i := 0; len(streams) < conc; i++ {
		if i > 1000 {
			t.Fatal("no stream name for every partition")
		}
		u, err := url.Parse(e.app.Stream(fmt.Sprintf("%s/g/s%03d", e.prefix, i)).URL())
		if err != nil {
			t.Fatal(err)
		}
		p := part(&pipeline.Message[event]{Metadata: pipeline.Metadata{Stream: u.Path}}) % conc
		if taken[p] {
			continue
		}
		taken[p] = true
		streams = append(streams, e.stream("g", i))
	}
	for _, s := range streams {
		appendTo(t, s, 0, per, 20)
	}

	var mu sync.Mutex
	last := map[string]int64{}
	count := map[string]int{}
	active := map[string]int{}
	var bad []string
	total := 0
	overlap := make(chan struct{}) // closed when two streams are in the handler at once
	all := make(chan struct{})
	overlapped, waited := false, false
	ev := newSubEvents()
	sp := runSubPipeline(t, sub, ev, 0, pipeline.ProcessorOptions[event]{Concurrency: conc, MaxDemand: 16, PartitionBy: part,
		Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error {
			st, pos := m.Metadata.Stream, m.Metadata.Position
			mu.Lock()
			if l, ok := last[st]; (ok && pos <= l) || (!ok && pos != 0) || pos != int64(m.Data.N) {
				after := "first"
				if ok {
					after = fmt.Sprintf("after position %d", l)
				}
				if len(bad) < 5 {
					bad = append(bad, fmt.Sprintf("%s: position %d (event %d) %s", st, pos, m.Data.N, after))
				}
			}
			last[st] = pos
			count[st]++
			active[st]++
			if !overlapped && len(active) >= 2 {
				overlapped = true
				close(overlap)
			}
			wait := !overlapped && !waited
			waited = waited || wait
			mu.Unlock()
			if wait {
				// The first message in waits (once) for another stream's: the pool works on
				// more than one stream at once.
				select {
				case <-overlap:
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(8 * time.Second):
				}
			}
			mu.Lock()
			if active[st]--; active[st] == 0 {
				delete(active, st)
			}
			if total++; total == conc*per {
				close(all)
			}
			mu.Unlock()
			return nil
		})})
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d messages handled of %d: %v", total, conc*per, count)
	}
	eventually(t, 10*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, conc) })
	if err := sp.stop(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("out of order: %v", bad)
	}
	if !overlapped {
		t.Error("no two streams were in the handler at once")
	}
	if len(count) != conc {
		t.Errorf("%d streams handled, want %d", len(count), conc)
	}
	for st, c := range count {
		if c != per || last[st] != per-1 {
			t.Errorf("%s: %d messages, the last at position %d; want %d, the last at %d", st, c, last[st], per, per-1)
		}
	}
}

func TestSubscriptionStreamOrder(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second, MaxChunkBytes: 4 << 10})
	subscriptionStreamOrder(t, srv.StreamURL(""))
}

func TestRefSubscriptionStreamOrder(t *testing.T) {
	subscriptionStreamOrder(t, ref(t).StreamURL(""))
}
