package durablestreams_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// seen records which events a pipeline handled, and how often.
type seen struct {
	mu    sync.Mutex
	count map[int]int
	total int
}

func newSeen() *seen { return &seen{count: map[int]int{}} }

// add records ms and returns how many events were seen in all, read under the lock.
func (s *seen) add(ms []pipeline.Message[event]) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range ms {
		s.count[ms[i].Data.N]++
		s.total++
	}
	return s.total
}

// exactlyOnce fails unless events 0..n-1 were each seen once.
func (s *seen) exactlyOnce(t *testing.T, n int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		if c := s.count[i]; c != 1 {
			t.Fatalf("event %d seen %d times (total %d, want %d)", i, c, s.total, n)
		}
	}
	if s.total != n {
		t.Fatalf("saw %d events, want %d", s.total, n)
	}
}

// fillOpen creates a JSON stream holding events 0..n-1, appended perAppend at a time.
func fillOpen(t *testing.T, s *dsclient.Stream, n, perAppend int) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, 0, n, perAppend)
}

func appendEvents(t testing.TB, s *dsclient.Stream, from, to, perAppend int) {
	t.Helper()
	batch := make([]event, 0, perAppend)
	for i := from; i < to; i++ {
		batch = append(batch, event{N: i, S: "x"})
		if len(batch) == perAppend || i == to-1 {
			if _, err := dsclient.AppendJSONBatch(context.Background(), s, batch, dsclient.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// eventPipeline builds a pipeline of 4 processors and a batcher of 4 batch processors
// calling handle.
func eventPipeline(t *testing.T, p pipeline.Producer[event], handle func(ctx context.Context, ms []pipeline.Message[event], info pipeline.BatchInfo) error) *pipeline.Pipeline[event] {
	t.Helper()
	pl, err := pipeline.New(pipeline.Options[event]{
		Name:     t.Name(),
		Producer: p,
		Processors: []pipeline.ProcessorOptions[event]{{Concurrency: 4, MaxDemand: 16,
			Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[event]{"sink": {BatchSize: 50, BatchTimeout: 5 * time.Millisecond, Concurrency: 4,
			Handler: pipeline.BatchHandlerFunc[event](handle)}},
		DefaultBatcher:  "sink",
		ShutdownTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func runCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A finite catch-up run (LiveOff) reads every event once, drains, returns nil, and commits
// and saves the stream's tail.
func TestProducerCatchUp(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 2 << 10})
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	const n = 5000
	fillOpen(t, s, n, 70)
	store := new(ack.MemoryStore)
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "catch-up", Checkpoints: store})
	if err != nil {
		t.Fatal(err)
	}
	got := newSeen()
	pl := eventPipeline(t, p, func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
		for i := range ms {
			md := ms[i].Metadata
			c := ds.ChunkOf(md)
			if c == nil || c.URL() != s.URL() || c.Info().StartOffset == "" || c.Info().NextOffset == "" ||
				md.Stream != c.Stream() || md.Position != int64(ms[i].Data.N) || md.Position < c.First() {
				return fmt.Errorf("message %d: bad metadata %+v %+v", ms[i].Data.N, md, c)
			}
		}
		got.add(ms)
		return nil
	})
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	got.exactlyOnce(t, n)
	head, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := ack.Position{Offset: string(head.NextOffset), Seq: n}
	if c := p.Committed(); c != want {
		t.Fatalf("committed %v, want %v", c, want)
	}
	saved, ok, _ := store.Load(context.Background(), p.Key())
	if !ok || saved != want.String() {
		t.Fatalf("saved %q (found %v), want %q", saved, ok, want.String())
	}
	if st := p.Stats(); st.Pending != 0 || !st.AtTail || st.Messages != n || st.OldestPending != 0 {
		t.Fatalf("stats after the run: %+v", st)
	}
}

// Acks arrive out of order from concurrent batch processors that take random time: while a
// batch is being handled, the committed offset never passes the chunk of any of its
// messages (offsets of the in-process server sort as the stream does); at the end it is the
// tail.
func TestProducerCommitsOnlyFinishedPrefix(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 1 << 10})
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	const n = 4000
	fillOpen(t, s, n, 13)
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	got := newSeen()
	var mu sync.Mutex
	var violations []string
	advanced := 0
	var last ack.Position
	pl := eventPipeline(t, p, func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
		if rand.IntN(4) == 0 {
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // work of random length, to reorder acks
		}
		mu.Lock()
		defer mu.Unlock()
		c := p.Committed() // read under the lock, so that successive reads are in order
		if last.Offset != "" && (c.Compare(last) < 0 || c.Seq < last.Seq) {
			violations = append(violations, fmt.Sprintf("committed moved back from %v to %v", last, c))
		}
		if c != last {
			advanced++
		}
		last = c
		for i := range ms {
			// The committed position is before every unfinished message: its number is at
			// most the message's position.
			if c.Seq > ms[i].Metadata.Position {
				violations = append(violations, fmt.Sprintf("committed %v passed unfinished event %d at position %d", c, ms[i].Data.N, ms[i].Metadata.Position))
			}
			if ms[i].Metadata.Position != int64(ms[i].Data.N) {
				violations = append(violations, fmt.Sprintf("event %d has position %d", ms[i].Data.N, ms[i].Metadata.Position))
			}
		}
		got.add(ms)
		return nil
	})
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Fatalf("%d violations, first: %s", len(violations), violations[0])
	}
	if advanced < 3 {
		t.Fatalf("the committed offset advanced %d times during the run; the test observed too little", advanced)
	}
	got.exactlyOnce(t, n)
	head, _ := s.Head(context.Background())
	if c := p.Committed(); c.Offset != string(head.NextOffset) || c.Skip != 0 || c.Seq != n {
		t.Fatalf("committed %v, want the tail %q after %d messages", c, head.NextOffset, n)
	}
}

// Bad options are all reported at once, by field.
func TestProducerOptionsValidation(t *testing.T) {
	_, err := ds.NewProducer(ds.ProducerOptions[event]{MaxBytes: -1, Live: 9, Checkpoints: new(ack.MemoryStore), CheckpointInterval: -time.Second})
	var oe *pipeline.OptionsError
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want *pipeline.OptionsError", err)
	}
	want := []string{"ProducerOptions.Stream", "ProducerOptions.Live", "ProducerOptions.MaxBytes", "ProducerOptions.CheckpointInterval", "ProducerOptions.Name"}
	if len(oe.Problems) != len(want) {
		t.Fatalf("problems %v, want fields %v", oe.Problems, want)
	}
	for i, f := range want {
		if oe.Problems[i].Field != f {
			t.Fatalf("problem %d is %v, want field %s", i, oe.Problems[i], f)
		}
	}
}

// Stats and Committed may be called from any goroutine while the pipeline runs (a metrics
// scrape does): under -race this finds unsynchronised fields.
func TestProducerStatsWhileRunning(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 1 << 10})
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	fillOpen(t, s, 3000, 10)
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	polled := make(chan int)
	go func() {
		n := 0
		var last ds.ProducerStats
		for {
			select {
			case <-stop:
				polled <- n
				return
			default:
				st := p.Stats()
				c := p.Committed()
				if n > 0 && (st.Messages < last.Messages || c.Seq < last.Committed.Seq) || st.Pending < 0 {
					t.Errorf("stats went backwards: %+v after %+v", st, last)
				}
				last = st
				n++
			}
		}
	}()
	got := runStopAfter(t, p, 0)
	close(stop)
	if n := <-polled; n == 0 {
		t.Fatal("Stats was never polled during the run")
	}
	got.exactlyOnce(t, 3000)
}
