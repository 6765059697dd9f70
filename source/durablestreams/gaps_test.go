package durablestreams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// lifetimeEvents is how many events each of the two runs of deadLetterLifetimes reads.
const lifetimeEvents = 200

// badEvent reports whether deadLetterLifetimes' handler fails event n as bad data.
func badEvent(n int) bool { return n%5 == 2 }

// deadLetterLifetimes runs two pipelines over one source stream, one after the other: the
// first over events 0..lifetimeEvents-1, the second, resuming from the first's checkpoint,
// over the events appended after the first ended. Each fails the bad events permanently and
// dead-letters them onto one dead-letter stream through a Writer of its own, made with
// writerOpts(run) (a new lifetime of the writer's ID, as a restarted process makes). It
// returns each run's error (or its Writer's Close error), the good events the sinks handled,
// the dead letters stored, and the source stream's path.
func deadLetterLifetimes(t *testing.T, writerOpts func(run int) dsclient.WriterOptions) (errs [2]error, handled *seen, recs []ds.DeadLetterRecord, src string) {
	t.Helper()
	srv := dstest.ForTest(t, dstest.Options{})
	ctx := context.Background()
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	fillOpen(t, s, lifetimeEvents, 25)
	u, _ := url.Parse(s.URL())
	src = u.Path
	dlq := dsclient.NewStream(srv.StreamURL(name(t)+"-dlq"), fastRetry(), dsclient.WithContentType("application/json"))
	if _, err := dlq.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	store := new(ack.MemoryStore)
	handled = newSeen()
	for run := range 2 {
		if run == 1 {
			appendEvents(t, s, lifetimeEvents, 2*lifetimeEvents, 25)
		}
		w, err := dsclient.NewWriter(dlq, writerOpts(run))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "dead-letters", Checkpoints: store})
		if err != nil {
			t.Fatal(err)
		}
		pl, err := pipeline.New(pipeline.Options[event]{
			Name:     t.Name(),
			Producer: p,
			Processors: []pipeline.ProcessorOptions[event]{{Concurrency: 2,
				Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error {
					if badEvent(m.Data.N) {
						return pipeline.Permanent(fmt.Errorf("event %d is bad", m.Data.N))
					}
					return nil
				})}},
			Batchers: map[string]pipeline.BatcherOptions[event]{"sink": {BatchSize: 10, BatchTimeout: time.Millisecond,
				Handler: pipeline.BatchHandlerFunc[event](func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
					handled.add(ms)
					return nil
				})}},
			DefaultBatcher: "sink",
			Failure:        pipeline.FailureOptions[event]{Handler: ds.NewDeadLetter[event](w)},
		})
		if err != nil {
			t.Fatal(err)
		}
		errs[run] = pl.Run(runCtx(t))
		if err := w.Close(ctx); errs[run] == nil {
			errs[run] = err
		}
	}
	recs, _, err := dsclient.ReadJSON[ds.DeadLetterRecord](ctx, dlq, dsclient.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return errs, handled, recs, src
}

// deadLetterCounts counts the dead letters of recs by source position, failing the test on a
// record that is not one of src's bad events as the handler failed it.
func deadLetterCounts(t *testing.T, recs []ds.DeadLetterRecord, src string) map[int64]int {
	t.Helper()
	count := map[int64]int{}
	for _, r := range recs {
		var e event
		if err := json.Unmarshal(r.Data, &e); err != nil || int64(e.N) != r.Position || !badEvent(e.N) ||
			r.Stream != src || r.Error != fmt.Sprintf("event %d is bad", e.N) {
			t.Fatalf("dead letter %+v (data %s): not a bad event of %q at its position", r, r.Data, src)
		}
		count[r.Position]++
	}
	return count
}

// Two lifetimes of a dead-letter Writer with one ID and the default options (a process that
// restarts with the ID it always uses, as the quickstart does), each dead-lettering what its
// run failed onto one stream: the stream holds every dead letter of both runs exactly once.
// A Writer that reused the first lifetime's epoch would have the second lifetime's first
// batches answered as duplicates of the first's (TestDeadLetterLifetimesFixedEpoch).
func TestDeadLetterAcrossWriterLifetimes(t *testing.T) {
	errs, handled, recs, src := deadLetterLifetimes(t, func(int) dsclient.WriterOptions {
		return dsclient.DefaultWriterOptions("dead-letters")
	})
	for run, err := range errs {
		if err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
	}
	count := deadLetterCounts(t, recs, src)
	for n := range 2 * lifetimeEvents {
		want := 0
		if badEvent(n) {
			want = 1
		}
		if c := count[int64(n)]; c != want {
			t.Fatalf("event %d (run %d) has %d dead letters, want %d; %d dead letters in all", n, n/lifetimeEvents+1, c, want, len(recs))
		}
		if c := handled.count[n]; c != 1-want {
			t.Fatalf("event %d (bad: %v) handled %d times by the sinks", n, want == 1, c)
		}
	}
}

// The negative control of TestDeadLetterAcrossWriterLifetimes: lifetimes that keep one fixed
// epoch (EpochFixed, the protocol's flow for a writer that must store and bump its epoch
// itself) collide, and the second run's dead letters are not stored: its Writer fails with
// ErrEpochInUse rather than take them for duplicates, and the run halts on the failure.
func TestDeadLetterLifetimesFixedEpoch(t *testing.T) {
	errs, _, recs, src := deadLetterLifetimes(t, func(int) dsclient.WriterOptions {
		return dsclient.WriterOptions{ID: "dead-letters", EpochPolicy: dsclient.EpochFixed}
	})
	if errs[0] != nil {
		t.Fatalf("run 1: %v", errs[0])
	}
	var he *pipeline.HaltError
	if !errors.As(errs[1], &he) || !errors.Is(errs[1], dsclient.ErrEpochInUse) {
		t.Fatalf("run 2: %v, want a *pipeline.HaltError from a dead-letter append failing with ErrEpochInUse", errs[1])
	}
	count := deadLetterCounts(t, recs, src)
	stored, lost := 0, 0
	for n := range 2 * lifetimeEvents {
		if !badEvent(n) {
			continue
		}
		switch c := count[int64(n)]; {
		case n < lifetimeEvents && c != 1:
			t.Fatalf("event %d of run 1 has %d dead letters, want 1", n, c)
		case n >= lifetimeEvents && c == 0:
			lost++
		case n >= lifetimeEvents:
			stored++
		}
	}
	if stored > 0 || lost == 0 {
		t.Fatalf("run 2 stored %d dead letters and lost %d; want all lost under a reused epoch", stored, lost)
	}
}

// While the sink holds back a response's messages after the first k, the producer's stats
// point inside the response: Committed is the read's start offset with k messages done, and
// Read is past it (the messages handed out), in the same response.
func TestProducerStatsInsideOneResponse(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{}) // no chunk cap: one response holds the stream
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	const n, k, inFlight = 1000, 300, 32
	fillOpen(t, s, n, 100)
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	got := newSeen()
	reached := make(chan dsclient.Offset, 1) // the start offset of event k's response
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce()
	// One processor taking one message at a time, one batch processor with batches of one:
	// events reach the sink in order, each in a Produce call of its own, and event k waits
	// there while 0..k-1 are acknowledged.
	pl, err := pipeline.New(pipeline.Options[event]{
		Name:        t.Name(),
		Producer:    p,
		MaxInFlight: inFlight,
		Processors: []pipeline.ProcessorOptions[event]{{Concurrency: 1, MaxDemand: 1,
			Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[event]{"sink": {BatchSize: 1, Concurrency: 1,
			Handler: pipeline.BatchHandlerFunc[event](func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
				for i := range ms {
					if ms[i].Data.N == k {
						reached <- ds.ChunkOf(ms[i].Metadata).Info().StartOffset
						select {
						case <-release:
						case <-ctx.Done():
							return ctx.Err()
						}
					}
				}
				got.add(ms)
				return nil
			})}},
		DefaultBatcher: "sink",
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pl.Run(runCtx(t)) }()
	var start dsclient.Offset
	select {
	case start = <-reached:
	case err := <-done:
		t.Fatalf("the run ended before event %d reached the sink: %v", k, err)
	}
	st := p.Stats()
	if want := (ack.Position{Offset: string(start), Skip: k, Seq: k}); st.Committed != want {
		t.Fatalf("committed %v while event %d is held, want %v: the first %d messages of the response done (stats %+v)", st.Committed, k, want, k, st)
	}
	if st.Read.Offset != string(start) || st.Read.Compare(st.Committed) <= 0 || st.Read.Seq != st.Read.Skip || st.Read.Seq >= n || st.AtTail {
		t.Fatalf("read %v (at tail %v), want past the committed %v inside the response from %q", st.Read, st.AtTail, st.Committed, start)
	}
	if st.Chunks != 1 || st.Pending < 1 || st.Pending > inFlight || st.Messages != uint64(st.Read.Seq) {
		t.Fatalf("stats %+v: want one response read, the held messages pending, as many handed out as read", st)
	}
	releaseOnce()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got.exactlyOnce(t, n)
	head, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Stats().Committed; c != (ack.Position{Offset: string(head.NextOffset), Seq: n}) {
		t.Fatalf("committed %v after the run, want the tail %q after %d messages", c, head.NextOffset, n)
	}
}

// With CommitOnReceive, the checkpoint is saved past each message before the sink sees it; a
// run stopped in the middle of one large response saves a position inside it (after what was
// handed out), and the next run delivers none of what the first handed out and all the rest.
func TestProducerCommitOnReceiveStopInsideOneResponse(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{}) // no chunk cap: one response holds the stream
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	const n, stopAt = 5000, 1000
	fillOpen(t, s, n, 500)
	store := new(ack.MemoryStore)
	newProducer := func() *ds.Producer[event] {
		p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "on-receive", Checkpoints: store, Commit: ds.CommitOnReceive})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := newProducer()
	first := newSeen()
	var mu sync.Mutex
	var start dsclient.Offset
	var early []string
	var once sync.Once
	var pl *pipeline.Pipeline[event]
	pl = eventPipeline(t, p1, func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
		saved, found, err := store.Load(ctx, p1.Key())
		pos, perr := ack.ParsePosition(saved)
		mu.Lock()
		for i := range ms {
			if start == "" {
				start = ds.ChunkOf(ms[i].Metadata).Info().StartOffset
			}
			if (!found || err != nil || perr != nil || pos.Seq <= ms[i].Metadata.Position) && len(early) < 5 {
				early = append(early, fmt.Sprintf("event %d delivered with the checkpoint at %q (found %v, %v, %v)", ms[i].Data.N, saved, found, err, perr))
			}
		}
		mu.Unlock()
		if first.add(ms) >= stopAt {
			once.Do(pl.Stop)
		}
		return nil
	})
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	if len(early) > 0 {
		t.Fatalf("messages delivered before a checkpoint past them was saved: %v", early)
	}
	saved, found, _ := store.Load(context.Background(), p1.Key())
	pos, err := ack.ParsePosition(saved)
	if !found || err != nil {
		t.Fatalf("no checkpoint after the first run: %q (%v)", saved, err)
	}
	handedOut := int64(p1.Stats().Messages)
	if pos.Offset != string(start) || pos.Skip <= 0 || pos.Skip >= n || pos.Seq != pos.Skip || pos.Seq != handedOut {
		t.Fatalf("checkpoint %v: want inside the one response from %q, after the %d messages handed out", pos, start, handedOut)
	}
	for i, c := range first.count {
		if int64(i) >= pos.Seq || c != 1 {
			t.Fatalf("the first run handled event %d %d times, with its checkpoint at %v", i, c, pos)
		}
	}
	second := runStopAfter(t, newProducer(), 0)
	for i := range n {
		want := 1
		if int64(i) < pos.Seq {
			want = 0 // handed out by the first run: never again
		}
		if c := second.count[i]; c != want {
			t.Fatalf("the second run handled event %d %d times, want %d (checkpoint %v, first run handled %d)", i, c, want, pos, first.total)
		}
	}
	t.Logf("first run handled %d and handed out %d; checkpoint %v; second run handled %d", first.total, handedOut, pos, second.total)
}
