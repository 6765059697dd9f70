package durablestreams_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
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

// runStopAfter runs a pipeline over p that stops itself once it has handled stopAfter events
// (stopAfter <= 0: never), and returns what it saw.
func runStopAfter(t *testing.T, p *ds.Producer[event], stopAfter int) *seen {
	t.Helper()
	got := newSeen()
	var pl *pipeline.Pipeline[event]
	var once sync.Once
	pl = eventPipeline(t, p, func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
		if total := got.add(ms); stopAfter > 0 && total >= stopAfter {
			once.Do(pl.Stop)
		}
		return nil
	})
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	return got
}

// A run stopped in the middle of the stream saves its committed offset; the next run resumes
// there: every event is handled at least once, none is skipped, and what is handled twice is
// only what the first run had not finished committing.
func TestProducerRestartFromCheckpoint(t *testing.T) {
	for _, mode := range []ds.CommitMode{ds.CommitOnAck, ds.CommitOnReceive} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 1 << 10})
			s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
			const n = 6000
			fillOpen(t, s, n, 25)
			store, err := ack.NewFileStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			newProducer := func() *ds.Producer[event] {
				p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "restart", Checkpoints: store, Commit: mode})
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			p1 := newProducer()
			first := runStopAfter(t, p1, 1500)
			saved, found, _ := store.Load(context.Background(), p1.Key())
			if !found || saved != p1.Committed().String() {
				t.Fatalf("after the first run: saved %q (found %v), committed %v", saved, found, p1.Committed())
			}
			if first.total >= n {
				t.Fatalf("the first run was not stopped mid-stream: it saw %d events", first.total)
			}
			second := runStopAfter(t, newProducer(), 0)
			twice, missed := 0, 0
			for i := range n {
				c := first.count[i] + second.count[i]
				switch {
				case c == 0:
					missed++
				case c > 1:
					twice++
				}
				if first.count[i] > 1 || second.count[i] > 1 {
					t.Fatalf("event %d seen twice within one run", i)
				}
			}
			switch mode {
			case ds.CommitOnAck:
				if missed > 0 {
					t.Fatalf("%d events never handled: at-least-once broken", missed)
				}
			case ds.CommitOnReceive:
				if twice > 0 {
					t.Fatalf("%d events handled twice: at-most-once broken", twice)
				}
				if second.total == 0 {
					t.Fatal("the second run handled nothing")
				}
			}
			t.Logf("%s: first run %d, second run %d, twice %d, missed %d", mode, first.total, second.total, twice, missed)
		})
	}
}

// Following the stream: appends made while the pipeline runs are picked up in long-poll and
// SSE modes, and closing the stream drains the pipeline and ends the run with nil.
func TestProducerLiveTailAndClose(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	for _, mode := range []dsclient.LiveMode{dsclient.LiveLongPoll, dsclient.LiveSSE, dsclient.LiveAuto} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: 100 * time.Millisecond, SSELifetime: 300 * time.Millisecond})
			s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
			fillOpen(t, s, 200, 50)
			checkLiveTail(t, s, mode, 200, 1200)
		})
	}
}

// checkLiveTail runs a pipeline following s (which holds events 0..have-1) in mode, appends
// events up to n while it runs, waits until it has handled them all, closes the stream, and
// checks that the run ends with nil, every event handled once, the tail committed.
func checkLiveTail(t *testing.T, s *dsclient.Stream, mode dsclient.LiveMode, have, n int) {
	t.Helper()
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Live: mode})
	if err != nil {
		t.Fatal(err)
	}
	got := newSeen()
	reached := make(chan struct{})
	var once sync.Once
	pl := eventPipeline(t, p, func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
		got.add(ms)
		got.mu.Lock()
		total := got.total
		got.mu.Unlock()
		if total >= n {
			once.Do(func() { close(reached) })
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- pl.Run(runCtx(t)) }()
	appendEvents(t, s, have, n, 40)
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("the run ended before reading the appends: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("live appends not picked up: saw %d of %d", got.total, n)
	}
	if _, err := s.CloseStream(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("closing the stream did not end the run")
	}
	got.exactlyOnce(t, n)
	head, _ := s.Head(context.Background())
	if c := p.Committed(); c.Offset != string(head.NextOffset) || c.Skip != 0 {
		t.Fatalf("committed %v, want the final offset %q", c, head.NextOffset)
	}
}

// Stopping a pipeline that waits on a live read returns at once: the read is cancelled.
func TestProducerStopCancelsLiveRead(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Hour})
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	fillOpen(t, s, 10, 10)
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Live: dsclient.LiveLongPoll})
	if err != nil {
		t.Fatal(err)
	}
	got := newSeen()
	caught := make(chan struct{})
	var once sync.Once
	pl := eventPipeline(t, p, func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
		if got.add(ms) == 10 {
			once.Do(func() { close(caught) })
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- pl.Run(runCtx(t)) }()
	<-caught
	pl.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not cancel the hour-long poll")
	}
	got.exactlyOnce(t, 10)
}

// Server faults — 5xx, 429, connections dropped before and in the middle of a body, SSE
// streams cut short — are survived: every event once, in catch-up and in live modes.
func TestProducerSurvivesServerFaults(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	faults := map[string]dstest.Fault{
		"503":        {Method: "GET", Status: 503, Count: 3},
		"500":        {Method: "GET", Status: 500, Count: 2},
		"429":        {Method: "GET", Status: 429, Count: 3},
		"drop":       {Method: "GET", Drop: true, Count: 3},
		"mid-body":   {Method: "GET", DropMidBody: true, Count: 4},
		"sse-cut":    {Method: "GET", TruncateSSEAfter: 3, Count: 4},
		"slow+drop":  {Method: "GET", Delay: 20 * time.Millisecond, DropMidBody: true, Count: 2},
		"sse-cut-1":  {Method: "GET", TruncateSSEAfter: 1, Count: 3},
		"503-many":   {Method: "GET", Status: 503, Count: 12},
		"drop-burst": {Method: "GET", Drop: true, Count: 10},
	}
	for fname, f := range faults {
		for _, mode := range []dsclient.LiveMode{dsclient.LiveOff, dsclient.LiveSSE} {
			t.Run(fname+"/"+mode.String(), func(t *testing.T) {
				srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 2 << 10, LongPollTimeout: 100 * time.Millisecond})
				s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
				const n = 2000
				fillOpen(t, s, n, 20)
				if mode != dsclient.LiveOff {
					if _, err := s.CloseStream(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				u, _ := url.Parse(s.URL())
				if err := srv.InjectFault(u.Path, f); err != nil {
					t.Fatal(err)
				}
				p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Live: mode})
				if err != nil {
					t.Fatal(err)
				}
				got := runStopAfter(t, p, 0)
				got.exactlyOnce(t, n)
			})
		}
	}
}

// An item that does not decode into the data type becomes a failed message carrying a
// *DecodeError; the stream goes on; the dead-letter handler stores it, with its source
// position, before it is acknowledged.
func TestProducerDecodeFailuresToDeadLetter(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	ctx := context.Background()
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry(), dsclient.WithContentType("application/json"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`[{"n":0},{"n":1}]`, `[{"n":"two"},{"n":3}]`, `["four",{"n":5}]`, `[{"n":6}]`} {
		if _, err := s.Append(ctx, []byte(body), dsclient.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dlq := dsclient.NewStream(srv.StreamURL(name(t)+"-dlq"), fastRetry(), dsclient.WithContentType("application/json"))
	if _, err := dlq.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	w, err := dsclient.NewWriter(dlq, dsclient.DefaultWriterOptions("dlq-"+name(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	var failedSeen atomic.Int32
	got := newSeen()
	pl, err := failurePipeline(p, got, pipeline.FailureHandlerFunc[event](func(ctx context.Context, ms []pipeline.Message[event]) error {
		for i := range ms {
			var de *ds.DecodeError
			if !errors.As(ms[i].Err(), &de) {
				t.Errorf("failed message error %v is not a *DecodeError", ms[i].Err())
			}
		}
		failedSeen.Add(int32(len(ms)))
		return ds.NewDeadLetter[event](w).HandleFailed(ctx, ms)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 3, 5, 6} {
		if got.count[n] != 1 {
			t.Fatalf("event %d seen %d times", n, got.count[n])
		}
	}
	if failedSeen.Load() != 2 || got.total != 5 {
		t.Fatalf("failed %d, handled %d; want 2 and 5", failedSeen.Load(), got.total)
	}
	recs, _, err := dsclient.ReadJSON[ds.DeadLetterRecord](ctx, dlq, dsclient.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("dead letters: %+v", recs)
	}
	for i, r := range recs {
		want := []int{2, 4}[i] // the stream is read in one chunk: items 2 and 4 fail
		if r.Stream == "" || r.Offset == "" || r.Position != int64(want) || !strings.Contains(r.Error, "cannot unmarshal") {
			t.Fatalf("dead letter lacks its source position or error: %+v", r)
		}
	}
	head, _ := s.Head(ctx)
	if c := p.Committed(); c.Offset != string(head.NextOffset) || c.Skip != 0 {
		t.Fatalf("committed %v, want %q: decode failures must not block the offset", c, head.NextOffset)
	}
	if st := p.Stats(); st.DecodeFailures != 2 {
		t.Fatalf("stats count %d decode failures, want 2", st.DecodeFailures)
	}
}

// A user Decode function sees each item's bytes; its errors fail the message with the raw
// item kept for the dead letter.
func TestProducerCustomDecode(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	ctx := context.Background()
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	if _, err := s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json", Body: []byte(`[1,2,"x",4]`)}); err != nil {
		t.Fatal(err)
	}
	p, err := ds.NewProducer(ds.ProducerOptions[int]{Stream: s, Decode: func(b []byte, dst *int) error { return json.Unmarshal(b, dst) }})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sum int
	var raws []string
	pl, err := pipeline.New(pipeline.Options[int]{
		Producer: p,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(ctx context.Context, m *pipeline.Message[int]) error {
			mu.Lock()
			sum += m.Data
			mu.Unlock()
			return nil
		})}},
		Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(ctx context.Context, ms []pipeline.Message[int]) error {
			for i := range ms {
				var de *ds.DecodeError
				if errors.As(ms[i].Err(), &de) {
					mu.Lock()
					raws = append(raws, string(de.Raw))
					mu.Unlock()
				}
			}
			return nil
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	if sum != 7 || len(raws) != 1 || raws[0] != `"x"` {
		t.Fatalf("sum %d, failed raw items %q; want 7 and [\"x\"]", sum, raws)
	}
}

// A text stream is split into lines with bufio.ScanLines; a byte stream without Split gives
// one message per chunk.
func TestProducerTextAndBytes(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	ctx := context.Background()
	text := dsclient.NewStream(srv.StreamURL(name(t)+"-text"), fastRetry(), dsclient.WithContentType("text/plain"))
	if _, err := text.Create(ctx, dsclient.CreateOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 3 {
		var b strings.Builder
		for j := range 4 {
			line := strings.Repeat(string(rune('a'+i)), j+1)
			want = append(want, line)
			b.WriteString(line + "\n")
		}
		if _, err := text.Append(ctx, []byte(b.String()), dsclient.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	lines := collect(t, ds.ProducerOptions[string]{Stream: text, Split: bufio.ScanLines})
	if strings.Join(lines, ",") != strings.Join(want, ",") {
		t.Fatalf("lines %q, want %q", lines, want)
	}

	bin := dsclient.NewStream(srv.StreamURL(name(t)+"-bin"), fastRetry())
	if _, err := bin.Create(ctx, dsclient.CreateOptions{ContentType: "application/octet-stream", Body: []byte{0, 1, 2, 255}}); err != nil {
		t.Fatal(err)
	}
	chunks := collect(t, ds.ProducerOptions[[]byte]{Stream: bin})
	if len(chunks) != 1 || string(chunks[0]) != "\x00\x01\x02\xff" {
		t.Fatalf("byte chunks %q", chunks)
	}

	// A struct type needs a Decode for a byte stream: each chunk fails with a clear error.
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: bin})
	if err != nil {
		t.Fatal(err)
	}
	var failed []error
	pl, err := pipeline.New(pipeline.Options[event]{
		Producer:   p,
		Processors: []pipeline.ProcessorOptions[event]{{Handler: pipeline.HandlerFunc[event](func(context.Context, *pipeline.Message[event]) error { return nil })}},
		Failure: pipeline.FailureOptions[event]{Handler: pipeline.FailureHandlerFunc[event](func(ctx context.Context, ms []pipeline.Message[event]) error {
			for i := range ms {
				failed = append(failed, ms[i].Err())
			}
			return nil
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "ProducerOptions.Decode") {
		t.Fatalf("failures %v, want one naming ProducerOptions.Decode", failed)
	}
}

// collect runs a one-processor pipeline over a finite read and returns the data in order.
func collect[T any](t *testing.T, opts ds.ProducerOptions[T]) []T {
	t.Helper()
	p, err := ds.NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out []T
	pl, err := pipeline.New(pipeline.Options[T]{
		Producer: p,
		Processors: []pipeline.ProcessorOptions[T]{{Concurrency: 1, MaxDemand: 1, Handler: pipeline.HandlerFunc[T](func(ctx context.Context, m *pipeline.Message[T]) error {
			if err := m.Err(); err != nil {
				return err
			}
			mu.Lock()
			out = append(out, m.Data)
			mu.Unlock()
			return nil
		})}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(runCtx(t)); err != nil {
		t.Fatal(err)
	}
	return out
}

// 404 ends the run with a typed error; with NotFoundWait the producer waits for the stream.
func TestProducerNotFound(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{})
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	err = eventPipeline(t, p, func(context.Context, []pipeline.Message[event], pipeline.BatchInfo) error { return nil }).Run(runCtx(t))
	var e *dsclient.Error
	if !errors.Is(err, dsclient.ErrNotFound) || !errors.As(err, &e) || e.URL != s.URL() {
		t.Fatalf("got %v, want a *dsclient.Error matching ErrNotFound", err)
	}

	p, err = ds.NewProducer(ds.ProducerOptions[event]{Stream: s, OnNotFound: ds.NotFoundWait})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *seen, 1)
	go func() { done <- runStopAfter(t, p, 0) }()
	body, _ := json.Marshal([]event{{N: 0}, {N: 1}, {N: 2}})
	if _, err := s.Create(context.Background(), dsclient.CreateOptions{ContentType: "application/json", Body: body}); err != nil {
		t.Fatal(err)
	}
	(<-done).exactlyOnce(t, 3)
}

// 410 ends the run with a typed error by default; with GoneResumeEarliest the producer
// resumes from the earliest offset, reports it, and reads on.
func TestProducerGone(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	fillOpen(t, s, 100, 10)
	u, _ := url.Parse(s.URL())
	gone := dstest.Fault{Method: "GET", Status: 410}

	if err := srv.InjectFault(u.Path, gone); err != nil {
		t.Fatal(err)
	}
	p, _ := ds.NewProducer(ds.ProducerOptions[event]{Stream: s})
	err := eventPipeline(t, p, func(context.Context, []pipeline.Message[event], pipeline.BatchInfo) error { return nil }).Run(runCtx(t))
	if !errors.Is(err, dsclient.ErrGone) {
		t.Fatalf("got %v, want ErrGone", err)
	}

	if err := srv.InjectFault(u.Path, gone); err != nil {
		t.Fatal(err)
	}
	obs := &goneObserver{}
	p, _ = ds.NewProducer(ds.ProducerOptions[event]{Stream: s, OnGone: ds.GoneResumeEarliest, Observer: obs})
	runStopAfter(t, p, 0).exactlyOnce(t, 100)
	if obs.n.Load() != 1 {
		t.Fatalf("Gone reported %d times, want 1", obs.n.Load())
	}
}

type goneObserver struct {
	ds.NopProducerObserver
	n atomic.Int32
}

func (o *goneObserver) Gone(ds.GoneEvent) { o.n.Add(1) }

// Under the Halt policy the committed position stops before the first failed message, and
// Run returns a *pipeline.HaltError.
func TestProducerHaltKeepsOffsetBeforeFailure(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 512})
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	const n, bad = 2000, 1234
	fillOpen(t, s, n, 10)
	store := new(ack.MemoryStore)
	p, _ := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "halt", Checkpoints: store})
	pl, err := pipeline.New(pipeline.Options[event]{
		Producer: p,
		Processors: []pipeline.ProcessorOptions[event]{{Concurrency: 4, Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error {
			if m.Data.N == bad {
				return errors.New("poison")
			}
			return nil
		})}},
		Failure: pipeline.FailureOptions[event]{Policy: pipeline.HaltOnFailure},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = pl.Run(runCtx(t))
	var he *pipeline.HaltError
	if !errors.As(err, &he) {
		t.Fatalf("got %v, want *pipeline.HaltError", err)
	}
	// The committed position is at or before the failed message: its number is at most the
	// failed message's position (events are numbered by position).
	if c := p.Committed(); c.Seq > bad {
		t.Fatalf("committed %v passed the failed message at position %d", c, bad)
	}
	saved, _, _ := store.Load(context.Background(), p.Key())
	if pos, err := ack.ParsePosition(saved); err != nil || pos.Seq > bad {
		t.Fatalf("saved %q past the failed message at position %d (%v)", saved, bad, err)
	}
}

// The dead-letter handler writes bad data only: a message that failed transiently (which only
// a policy other than the default hands to a failure handler) is refused with an error naming
// it, so that the pipeline halts rather than commit past it, and nothing is written.
func TestDeadLetterRefusesTransientFailures(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	ctx := context.Background()
	dlq := dsclient.NewStream(srv.StreamURL(name(t)), dsclient.WithContentType("application/json"))
	if _, err := dlq.Create(ctx, dsclient.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := dsclient.NewWriter(dlq, dsclient.WriterOptions{ID: "dlq"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	msgs := make([]pipeline.Message[event], 2)
	msgs[0].Metadata = pipeline.Metadata{Stream: "/s", Position: 7}
	msgs[0].Fail(pipeline.Permanent(errors.New("bad value")))
	msgs[1].Metadata = pipeline.Metadata{Stream: "/s", Position: 8}
	msgs[1].Fail(errors.New("database is down"))
	err = ds.NewDeadLetter[event](w).HandleFailed(ctx, msgs)
	if err == nil || !strings.Contains(err.Error(), "position 8") || !strings.Contains(err.Error(), "database is down") {
		t.Fatalf("HandleFailed: %v, want an error naming the transient failure at position 8", err)
	}
	recs, _, err := dsclient.ReadJSON[ds.DeadLetterRecord](ctx, dlq, dsclient.ReadOptions{})
	if err != nil || len(recs) != 0 {
		t.Fatalf("dead letters written: %+v (%v), want none", recs, err)
	}
	if err := ds.NewDeadLetter[event](w).HandleFailed(ctx, msgs[:1]); err != nil {
		t.Fatal(err)
	}
	recs, _, err = dsclient.ReadJSON[ds.DeadLetterRecord](ctx, dlq, dsclient.ReadOptions{})
	if err != nil || len(recs) != 1 || recs[0].Position != 7 || recs[0].Stream != "/s" || !strings.Contains(recs[0].Error, "bad value") {
		t.Fatalf("dead letters: %+v (%v), want the bad value at position 7", recs, err)
	}
}

// failurePipeline runs p through two processors into a batcher that records what it handles
// in got, with failure as the failure handler.
func failurePipeline(p pipeline.Producer[event], got *seen, failure pipeline.FailureHandler[event]) (*pipeline.Pipeline[event], error) {
	return pipeline.New(pipeline.Options[event]{
		Producer: p,
		Processors: []pipeline.ProcessorOptions[event]{{Concurrency: 2,
			Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[event]{"sink": {BatchSize: 10, BatchTimeout: time.Millisecond,
			Handler: pipeline.BatchHandlerFunc[event](func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
				got.add(ms)
				return nil
			})}},
		DefaultBatcher: "sink",
		Failure:        pipeline.FailureOptions[event]{Handler: failure},
	})
}
