package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// These tests run the pipeline with an ack.Tracker the way a stream producer does: chunks
// are opened before their first message, messages are added one by one as they are emitted
// (a chunk may span several Produce calls), and each chunk is sealed after its last message;
// some chunks are empty. Offsets are message positions: chunk k ends at the position after
// its last message. Concurrent processors, several keyed batchers and retries make the acks
// arrive out of order, and a watcher checks at every advance that the committed offset
// never passes a message that was not acknowledged, and never moves backwards.

// streamProducer emits the messages 0, 1, 2, … in chunks of the given sizes.
type streamProducer struct {
	tr    *ack.Tracker[int]
	a     ack.Acknowledger
	sizes []int

	k       int             // current chunk
	chunk   *ack.Chunk[int] // open chunk, or nil
	start   int             // current chunk's first position
	emitted int             // messages of the current chunk emitted so far
	next    int             // next message's position
}

func (p *streamProducer) Produce(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
	n := 0
	for n < len(msgs) {
		if p.k == len(p.sizes) {
			return n, pipeline.ErrEndOfInput
		}
		if p.chunk == nil {
			p.chunk, p.start, p.emitted = p.tr.Open(), p.next, 0
		}
		if p.emitted == p.sizes[p.k] {
			p.chunk.Seal(p.next)
			p.chunk = nil
			p.k++
			continue
		}
		if err := p.chunk.Add(ctx, 1); err != nil {
			return n, err
		}
		m := &msgs[n]
		m.Data = p.next
		m.SetAcknowledger(p.a, ack.Ref{Ptr: p.chunk, N: uint64(p.next)})
		m.Metadata = pipeline.Metadata{
			Stream:   strconv.Itoa(p.start),
			Position: int64(p.emitted),
			Source:   p.chunk,
		}
		p.next++
		p.emitted++
		n++
	}
	return n, nil
}

// doneMarker records each message as done, then passes the acknowledgement on to the
// tracker; so whenever the tracker has committed an offset, the watcher finds every message
// before it marked.
type doneMarker struct {
	tr     *ack.Tracker[int]
	done   []atomic.Bool
	failed []atomic.Bool
}

func (d *doneMarker) Ack(successful []ack.Ref, failed []ack.Failure) {
	for _, r := range successful {
		if d.done[r.N].Swap(true) {
			panic("message " + strconv.Itoa(int(r.N)) + " acknowledged twice")
		}
	}
	for _, f := range failed {
		if d.done[f.Ref.N].Swap(true) {
			panic("message " + strconv.Itoa(int(f.Ref.N)) + " acknowledged twice")
		}
		d.failed[f.Ref.N].Store(true)
	}
	d.tr.Ack(successful, failed)
}

// watchCommitted checks the committed offset at every advance until stop is closed, and
// returns the number of advances it saw.
func watchCommitted(t *testing.T, tr *ack.Tracker[int], d *doneMarker, stop <-chan struct{}) <-chan int {
	adv := tr.Advanced()
	out := make(chan int, 1)
	go func() {
		seen, prev, checked := 0, tr.Committed(), 0
		check := func() {
			c := tr.Committed()
			if c < prev {
				t.Errorf("committed offset went back from %d to %d", prev, c)
			}
			for ; checked < c; checked++ {
				if !d.done[checked].Load() {
					t.Errorf("committed offset %d passes message %d, which is not acknowledged", c, checked)
					break
				}
			}
			prev = c
		}
		for {
			select {
			case <-adv:
				seen++
				check()
			case <-stop:
				check()
				out <- seen
				return
			}
		}
	}()
	return out
}

func chunkSizes(rng *rand.Rand, chunks int) (sizes []int, total int) {
	for range chunks {
		n := rng.IntN(40)
		if rng.IntN(8) == 0 {
			n = 0 // an empty chunk, such as a long-poll that only moved the offset
		}
		sizes = append(sizes, n)
		total += n
	}
	return sizes, total
}

// jitter yields now and then, so that goroutines finish in a different order each run.
func jitter(v int) {
	if v%3 == 0 {
		runtime.Gosched()
	}
}

type offsetsRun struct {
	tr      *ack.Tracker[int]
	d       *doneMarker
	sizes   []int
	total   int
	err     error
	advance int
}

func runWithTracker(t *testing.T, seed uint64, failure pipeline.FailureOptions[int], handle func(m *pipeline.Message[int]) error, batch func(m *pipeline.Message[int]) error) offsetsRun {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	sizes, total := chunkSizes(rng, 300)
	const maxInFlight = 200
	tr := ack.NewTracker(0, ack.TrackerOptions{MaxPending: maxInFlight})
	d := &doneMarker{tr: tr, done: make([]atomic.Bool, total), failed: make([]atomic.Bool, total)}
	batchHandler := pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
		for i := range b {
			jitter(b[i].Data)
			if err := batch(&b[i]); err != nil {
				b[i].Fail(err)
			}
		}
		return nil
	})
	p, err := pipeline.New(pipeline.Options[int]{
		Producer: &streamProducer{tr: tr, a: d, sizes: sizes},
		Processors: []pipeline.ProcessorOptions[int]{{
			Concurrency: 4, MaxDemand: 16,
			Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				jitter(m.Data)
				switch m.Data % 5 {
				case 0, 1:
					m.SetBatcher("a")
					m.SetBatchKey(strconv.Itoa(m.Data % 7))
				case 2, 3:
					m.SetBatcher("b")
				default: // acknowledged right after the processor
				}
				return handle(m)
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[int]{
			"a": {Handler: batchHandler, BatchSize: 9, BatchTimeout: 5 * time.Millisecond, Concurrency: 3},
			"b": {Handler: batchHandler, BatchSize: 25, BatchTimeout: 3 * time.Millisecond, Concurrency: 2},
		},
		// A tracker capped at MaxInFlight never makes the producer wait: the pipeline
		// asks for no more than it has room for, and acknowledges before it frees room.
		MaxInFlight:     maxInFlight,
		Failure:         failure,
		ShutdownTimeout: 20 * time.Second,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	advances := watchCommitted(t, tr, d, stop)
	err = p.Run(t.Context())
	close(stop)
	return offsetsRun{tr: tr, d: d, sizes: sizes, total: total, err: err, advance: <-advances}
}

func TestCommittedOffsetFollowsOutOfOrderAcks(t *testing.T) {
	for seed := range uint64(5) {
		r := runWithTracker(t, seed, pipeline.FailureOptions[int]{},
			func(m *pipeline.Message[int]) error {
				if m.Data%13 == 0 {
					return pipeline.Permanent(errors.New("bad message")) // bad data: failed, yet done
				}
				return nil
			},
			func(*pipeline.Message[int]) error { return nil })
		if r.err != nil {
			t.Fatalf("seed %d: Run: %v", seed, r.err)
		}
		if c := r.tr.Committed(); c != r.total || r.tr.Pending() != 0 {
			t.Fatalf("seed %d: after the run, committed %d and pending %d; want %d and 0", seed, c, r.tr.Pending(), r.total)
		}
		for g := range r.total {
			if !r.d.done[g].Load() || r.d.failed[g].Load() != (g%13 == 0) {
				t.Fatalf("seed %d: message %d: done %v, failed %v", seed, g, r.d.done[g].Load(), r.d.failed[g].Load())
			}
		}
		if r.advance == 0 {
			t.Fatalf("seed %d: the watcher saw no advance", seed)
		}
	}
}

func TestRetriedMessagesCommitOnceTheySucceed(t *testing.T) {
	var mu sync.Mutex
	attempts := map[int]int{}
	count := func(m *pipeline.Message[int]) {
		mu.Lock()
		attempts[m.Data] = max(attempts[m.Data], m.Attempt())
		mu.Unlock()
	}
	r := runWithTracker(t, 42,
		pipeline.FailureOptions[int]{Policy: pipeline.RetryThenFail, MaxRetries: 2, RetryBackoff: time.Millisecond},
		func(m *pipeline.Message[int]) error {
			if m.Data%11 == 0 {
				count(m)
				if m.Attempt() == 1 {
					return errors.New("processor: transient")
				}
			}
			return nil
		},
		func(m *pipeline.Message[int]) error {
			if m.Data%17 == 0 {
				count(m)
				if m.Attempt() < 3 {
					return errors.New("sink: transient")
				}
			}
			return nil
		})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if c := r.tr.Committed(); c != r.total {
		t.Fatalf("committed %d, want %d", c, r.total)
	}
	for g := range r.total {
		if r.d.failed[g].Load() {
			t.Fatalf("message %d failed; every failure was transient", g)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for g, a := range attempts {
		want := 1
		switch {
		case g%17 == 0 && g%5 <= 3: // went to a batcher: failed twice there
			want = 3
		case g%11 == 0:
			want = 2
		}
		if a != want {
			t.Errorf("message %d: last attempt %d, want %d", g, a, want)
		}
	}
}

func TestHaltStopsTheCommittedOffsetBeforeTheFailedMessage(t *testing.T) {
	const bad = 1234
	r := runWithTracker(t, 9, pipeline.FailureOptions[int]{Policy: pipeline.HaltOnFailure},
		func(m *pipeline.Message[int]) error {
			if m.Data == bad {
				return errors.New("poison")
			}
			return nil
		},
		func(*pipeline.Message[int]) error { return nil })
	var he *pipeline.HaltError
	if !errors.As(r.err, &he) {
		t.Fatalf("Run returned %v, want a *HaltError", r.err)
	}
	// Find the failed message's chunk.
	start := 0
	for _, n := range r.sizes {
		if bad < start+n {
			break
		}
		start += n
	}
	if he.Metadata.Stream != strconv.Itoa(start) || start+int(he.Metadata.Position) != bad {
		t.Errorf("HaltError names position %d of chunk %s, want message %d (chunk %d)", he.Metadata.Position, he.Metadata.Stream, bad, start)
	}
	if c := r.tr.Committed(); c > start {
		t.Errorf("committed %d, past the start %d of the halted message's chunk", c, start)
	}
	if !r.tr.Halted() {
		t.Error("tracker not halted")
	}
	if !r.d.failed[bad].Load() {
		t.Error("the poison message was not acknowledged as failed")
	}
}
