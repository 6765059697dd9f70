package durablestreams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// positionRun runs a pipeline over p until the input ends, or until stopAfter events were
// handled (0: no stop), and fails if a message's position is not its event number (events
// are numbered by their place in the stream).
func positionRun(t *testing.T, p *ds.Producer[event], stopAfter int) *seen {
	t.Helper()
	got := newSeen()
	var bad []string
	var pl *pipeline.Pipeline[event]
	stopped := false
	pl = eventPipeline(t, p, func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
		got.mu.Lock()
		defer got.mu.Unlock()
		for i := range ms {
			got.count[ms[i].Data.N]++
			got.total++
			if md := ms[i].Metadata; md.Position != int64(ms[i].Data.N) && len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("event %d at position %d", ms[i].Data.N, md.Position))
			}
		}
		if stopAfter > 0 && got.total >= stopAfter && !stopped {
			stopped = true
			pl.Stop()
		}
		return nil
	})
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("positions differ from the events' places in the stream: %v", bad)
	}
	return got
}

// appendOffsets appends events 0..n-1, perAppend at a time, and returns the offset after each
// append and the number of events before it.
func appendOffsets(t *testing.T, s *dsclient.Stream, n, perAppend int) (offsets []dsclient.Offset, before []int) {
	t.Helper()
	if _, err := s.Create(context.Background(), dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	batch := make([]event, 0, perAppend)
	for i := range n {
		batch = append(batch, event{N: i, S: "x"})
		if len(batch) == perAppend || i == n-1 {
			res, err := dsclient.AppendJSONBatch(context.Background(), s, batch, dsclient.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			offsets = append(offsets, res.NextOffset)
			before = append(before, i+1)
			batch = batch[:0]
		}
	}
	return offsets, before
}

// checkPositions reads one stream in every way the producer can, and restarts it from
// checkpoints at and inside response boundaries: every message has the same position every
// time, its place in the stream.
func checkPositions(t *testing.T, streamURL func(string) string) {
	const n, perAppend = 3000, 7
	s := dsclient.NewStream(streamURL(name(t)), fastRetry())
	offsets, before := appendOffsets(t, s, n, perAppend)
	for _, live := range []dsclient.LiveMode{dsclient.LiveOff, dsclient.LiveLongPoll, dsclient.LiveSSE, dsclient.LiveAuto} {
		t.Run("whole/"+live.String(), func(t *testing.T) {
			p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Live: live})
			if err != nil {
				t.Fatal(err)
			}
			got := positionRun(t, p, n)
			if got.total < n {
				t.Fatalf("read %d events, want %d", got.total, n)
			}
		})
	}
	// Restarts from saved checkpoints: at an append boundary (a response boundary for a
	// server that cuts responses at appends), inside a response, and chains of stops in
	// different live modes, each run resuming from the last one's checkpoint.
	cases := []struct {
		name string
		pos  ack.Position
	}{
		{"at-boundary", ack.Position{Offset: string(offsets[100]), Skip: 0, Seq: int64(before[100])}},
		{"inside", ack.Position{Offset: string(offsets[100]), Skip: 5, Seq: int64(before[100] + 5)}},
		{"inside-far", ack.Position{Offset: string(offsets[10]), Skip: 1500, Seq: int64(before[10] + 1500)}},
		{"beginning-inside", ack.Position{Offset: string(dsclient.Beginning), Skip: 2222, Seq: 2222}},
	}
	for _, c := range cases {
		t.Run("restart/"+c.name, func(t *testing.T) {
			store := new(ack.MemoryStore)
			p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: c.name, Checkpoints: store})
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Save(context.Background(), p.Key(), c.pos.String()); err != nil {
				t.Fatal(err)
			}
			got := positionRun(t, p, 0)
			for i := range n {
				want := 0
				if int64(i) >= c.pos.Seq {
					want = 1
				}
				if got.count[i] != want {
					t.Fatalf("from %v: event %d read %d times, want %d", c.pos, i, got.count[i], want)
				}
			}
		})
	}
	t.Run("restart/chain", func(t *testing.T) {
		store := new(ack.MemoryStore)
		modes := []dsclient.LiveMode{dsclient.LiveSSE, dsclient.LiveOff, dsclient.LiveLongPoll, dsclient.LiveSSE, dsclient.LiveOff} // the last one ends at the tail
		total := newSeen()
		for i, live := range modes {
			p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "chain", Checkpoints: store, Live: live})
			if err != nil {
				t.Fatal(err)
			}
			stop := 300 + 100*i // 1800 events over the first four runs, fewer than the stream holds
			if i == len(modes)-1 {
				stop = 0
			}
			got := positionRun(t, p, stop)
			for k, c := range got.count {
				total.count[k] += c
			}
		}
		for i := range n {
			if total.count[i] == 0 {
				t.Fatalf("event %d never read across the chain of runs", i)
			}
		}
	})
}

func TestProducerPositionsStable(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 4 << 10, LongPollTimeout: 200 * time.Millisecond})
	checkPositions(t, srv.StreamURL)
}

func TestProducerPositionsStableWholeResponses(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: 200 * time.Millisecond}) // no chunk cap
	checkPositions(t, srv.StreamURL)
}

func TestRefProducerPositionsStable(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	checkPositions(t, ref(t).StreamURL)
}

// stopInsideOneResponse reads a stream of n events that the server returns in one response,
// stops the pipeline at about half, and restarts it: the saved checkpoint is inside the
// response, and the second run delivers exactly what the first did not finish.
func stopInsideOneResponse(t *testing.T, s *dsclient.Stream, n int) {
	store := new(ack.MemoryStore)
	newProducer := func() *ds.Producer[event] {
		p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "half", Checkpoints: store})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := newProducer()
	first := positionRun(t, p1, n/2)
	saved, found, _ := store.Load(context.Background(), p1.Key())
	pos, err := ack.ParsePosition(saved)
	if !found || err != nil {
		t.Fatalf("no checkpoint after the first run: %q (%v)", saved, err)
	}
	if pos.Offset != string(dsclient.Beginning) || pos.Skip < int64(n/2) || pos.Skip >= int64(n) || pos.Seq != pos.Skip {
		t.Fatalf("checkpoint %v: want inside the one response (offset -1, skip between %d and %d)", pos, n/2, n)
	}
	if pos.Seq != int64(first.total) {
		t.Fatalf("checkpoint %v, but the first run finished %d events: a clean stop commits every finished one", pos, first.total)
	}
	second := positionRun(t, newProducer(), 0)
	twice, missed := 0, 0
	for i := range n {
		switch first.count[i] + second.count[i] {
		case 0:
			missed++
		case 1:
		default:
			twice++
		}
	}
	if missed > 0 || twice > 0 {
		t.Fatalf("after a stop at %d of %d: %d events never read, %d read twice", first.total, n, missed, twice)
	}
}

func TestProducerStopInsideOneResponse(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{}) // no chunk cap: one response holds the stream
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	n := largeStreamSize()
	fillFast(t, s, n)
	stopInsideOneResponse(t, s, n)
}

func TestRefProducerStopInsideOneResponse(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := ref(t)
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	n := largeStreamSize()
	fillFast(t, s, n)
	stopInsideOneResponse(t, s, n)
}
