package durablestreams_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
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

// One worker over one subscription reads every stream once, with positions that are the
// events' numbers, and acks every stream up to its tail.
func TestSubscriptionOneWorker(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second, MinLeaseTTL: 10 * time.Millisecond})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", time.Second)
	const streams, per = 5, 300
	var all []*dsclient.Stream
	for i := range streams {
		s := e.stream("g", i)
		appendTo(t, s, 0, per/2, 25)
		all = append(all, s)
	}
	sink := newKeyedSink(streams * per)
	startWorker(t, "w1", []*dsclient.Subscription{sub}, sink, workerOptions{store: &ack.MemoryStore{}})
	for _, s := range all {
		appendTo(t, s, per/2, per, 25)
	}
	sink.waitFull(t, 30*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, streams) })
	sink.check(t)
}

// The options are validated all at once, each problem naming its field.
func TestSubscriptionOptionsValidation(t *testing.T) {
	sub := dsclient.NewSubscription("http://127.0.0.1:1/v1/stream/", "a")
	for _, tc := range []struct {
		name string
		opts ds.SubscriptionOptions[event]
		want []string
	}{
		{"none", ds.SubscriptionOptions[event]{}, []string{"SubscriptionOptions.Subscriptions: required"}},
		{"nil and duplicate", ds.SubscriptionOptions[event]{Subscriptions: []*dsclient.Subscription{sub, nil, dsclient.NewSubscription("http://127.0.0.1:2/v1/stream/", "a")}},
			[]string{"SubscriptionOptions.Subscriptions[1]: nil subscription", `SubscriptionOptions.Subscriptions[2]: id "a" is also Subscriptions[0]`}},
		{"every field", ds.SubscriptionOptions[event]{
			Subscriptions: []*dsclient.Subscription{sub}, Worker: "a\nb", Checkpoints: &ack.MemoryStore{},
			CheckpointInterval: -1, HeartbeatInterval: -1, ClaimInterval: -1, LeaseMargin: -1, MaxClaimAge: -1,
			MaxBytes: -1, MaxMessagesPerTurn: -1, MaxOpenStreams: -1,
			Webhook: dsclient.WebhookOptions{ReplayWindow: -1, Handler: func(context.Context, *dsclient.Wake) (bool, error) { return true, nil }},
		}, []string{
			"SubscriptionOptions.Worker: must not contain control characters",
			"SubscriptionOptions.Name: required with Checkpoints",
			"SubscriptionOptions.CheckpointInterval: must be >= 0",
			"SubscriptionOptions.HeartbeatInterval: must be >= 0",
			"SubscriptionOptions.ClaimInterval: must be >= 0",
			"SubscriptionOptions.LeaseMargin: must be >= 0",
			"SubscriptionOptions.MaxClaimAge: must be >= 0",
			"SubscriptionOptions.MaxBytes: must be >= 0",
			"SubscriptionOptions.MaxMessagesPerTurn: must be >= 0",
			"SubscriptionOptions.MaxOpenStreams: must be >= 0",
			"SubscriptionOptions.Webhook.Handler: must be nil",
			"SubscriptionOptions.Webhook.Root:",
			"SubscriptionOptions.Webhook.ReplayWindow:",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ds.NewSubscriptionProducer(tc.opts)
			var oe *pipeline.OptionsError
			if !errors.As(err, &oe) {
				t.Fatalf("error %v, want a *pipeline.OptionsError", err)
			}
			if len(oe.Problems) != len(tc.want) {
				t.Errorf("%d problems, want %d: %v", len(oe.Problems), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nlacks %q", err, w)
				}
			}
		})
	}
	if _, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[event]{Subscriptions: []*dsclient.Subscription{sub}}); err != nil {
		t.Fatalf("the zero value of every other field must be valid: %v", err)
	}
}

// A drain finishes the messages in flight, saves and acks what they committed and releases
// the claim at once: another worker claims it without waiting for the lease, and goes on
// exactly where the first stopped — nothing is delivered twice.
func TestSubscriptionDrainReleases(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 10*time.Second) // a lease far longer than the test waits
	const streams, per = 2, 3000
	var all []*dsclient.Stream
	for i := range streams {
		s := e.stream("g", i)
		appendTo(t, s, 0, per, 1000)
		all = append(all, s)
	}
	store := &ack.MemoryStore{}
	sink := newKeyedSink(streams * per)
	var seen atomic.Int64
	half := make(chan struct{})
	a := startWorker(t, "A", []*dsclient.Subscription{sub}, sink, workerOptions{store: store,
		handle: func(ctx context.Context, ms []pipeline.Message[event]) error {
			if v := seen.Add(int64(len(ms))); v >= streams*per/2 && v-int64(len(ms)) < streams*per/2 {
				close(half) // only the batch that crosses the half
			}
			time.Sleep(time.Millisecond) // a sink with some latency: the drain comes mid-way
			return nil
		}})
	<-half
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := a.obs.endReasons(); len(got) != 1 || got[0] != "released" {
		t.Fatalf("A's claims ended %v, want one released", got)
	}
	// The server's cursor is never past the saved position.
	info, err := sub.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ls := range info.Streams {
		v, _, _ := store.Load(context.Background(), keyOf(sub.Stream(ls.Path)))
		pos, _ := ack.ParsePosition(v)
		if ls.AckedOffset != dsclient.Beginning && (ack.Position{Offset: pos.Offset}).Compare(ack.Position{Offset: string(ls.AckedOffset)}) < 0 {
			t.Errorf("%s: the server's cursor %s is past the saved position %s", ls.Path, ls.AckedOffset, v)
		}
	}
	// Released: a claim succeeds now, long before the lease would have passed.
	probe, err := sub.Claim(context.Background(), "probe")
	if err != nil {
		t.Fatalf("claim after the drain: %v (the drain did not release the claim)", err)
	}
	if err := probe.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := startWorker(t, "B", []*dsclient.Subscription{sub}, sink, workerOptions{store: store})
	sink.waitFull(t, 60*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, streams) })
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	sink.check(t)
	if sink.total != sink.want {
		t.Errorf("%d deliveries of %d events: a drained worker leaves nothing to deliver again", sink.total, sink.want)
	}
}

// A claim older than MaxClaimAge is committed, released and claimed again, losing and
// repeating nothing.
func TestSubscriptionMaxClaimAge(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 10*time.Second)
	const per = 3000
	appendTo(t, e.stream("g", 0), 0, per, 1000)
	sink := newKeyedSink(per)
	w := startWorker(t, "w", []*dsclient.Subscription{sub}, sink, workerOptions{store: &ack.MemoryStore{}, maxAge: 100 * time.Millisecond,
		handle: func(ctx context.Context, ms []pipeline.Message[event]) error {
			time.Sleep(10 * time.Millisecond) // about a second in all: several claim ages
			return nil
		}})
	sink.waitFull(t, 60*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, 1) })
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	sink.check(t)
	ends := w.obs.endReasons()
	if !slices.Contains(ends, "released") || slices.Contains(ends, "fenced") || slices.Contains(ends, "expired") {
		t.Errorf("claims ended %v, want some released by age and none lost", ends)
	}
	if sink.total != sink.want {
		t.Errorf("%d deliveries of %d events: a claim released by age repeats nothing", sink.total, sink.want)
	}
}

// Without a checkpoint store delivery is at least once, and a claim's positions count from
// where it starts reading: the server's cursor, at the last response boundary acked (the
// server here cuts responses at 4 KiB, so that there are boundaries inside the stream).
func TestSubscriptionWithoutStore(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second, MaxChunkBytes: 4 << 10})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 10*time.Second)
	const per = 2000
	appendTo(t, e.stream("g", 0), 0, per, 500)
	var mu sync.Mutex
	got := map[int]int{} // event → deliveries
	firstB := int64(-1)  // B's first position
	firstBEvent := -1    // and its event
	sinkA := newKeyedSink(per)
	var seen atomic.Int64
	half := make(chan struct{})
	a := startWorker(t, "A", []*dsclient.Subscription{sub}, sinkA, workerOptions{noStore: true,
		handle: func(ctx context.Context, ms []pipeline.Message[event]) error {
			mu.Lock()
			for i := range ms {
				got[ms[i].Data.N]++
			}
			mu.Unlock()
			if v := seen.Add(int64(len(ms))); v >= per/2 && v-int64(len(ms)) < per/2 {
				close(half) // only the batch that crosses the half
			}
			time.Sleep(time.Millisecond)
			return nil
		}})
	<-half
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	sinkB := newKeyedSink(per)
	b := startWorker(t, "B", []*dsclient.Subscription{sub}, sinkB, workerOptions{noStore: true,
		handle: func(ctx context.Context, ms []pipeline.Message[event]) error {
			mu.Lock()
			defer mu.Unlock()
			for i := range ms {
				got[ms[i].Data.N]++
				if firstB < 0 || ms[i].Metadata.Position < firstB {
					firstB, firstBEvent = ms[i].Metadata.Position, ms[i].Data.N
				}
			}
			return nil
		}})
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, 1) })
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range per {
		if got[i] == 0 {
			t.Fatalf("event %d was never delivered", i)
		}
	}
	if firstB != 0 || firstBEvent == 0 {
		t.Errorf("B's first message: event %d at position %d; want position 0, counted from where B's claim started (past event 0)", firstBEvent, firstB)
	}
}

// A worker whose ClaimInterval is far off still claims new work at once: it follows the
// wake stream.
func TestSubscriptionFollowsWakeStream(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: 10 * time.Second})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 10*time.Second)
	sink := newKeyedSink(100)
	w := startWorker(t, "w", []*dsclient.Subscription{sub}, sink, workerOptions{store: &ack.MemoryStore{}, claimInt: time.Hour})
	// The first claim attempt (at start) finds no work; wait for it, so that what follows
	// can only be claimed on a wake event.
	w.waitClaimAttempt(t)
	start := time.Now()
	appendTo(t, e.stream("g", 0), 0, 100, 10)
	sink.waitFull(t, 5*time.Second)
	t.Logf("processed %v after the appends began", time.Since(start))
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	sink.check(t)
}

// A subscription that does not exist fails the run with ErrSubscriptionNotFound; Close
// before any Produce is fine; the webhook handler of a producer without Webhook answers 501.
func TestSubscriptionErrors(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	sub := dsclient.NewSubscription(srv.StreamURL(""), name(t))
	src, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[event]{Subscriptions: []*dsclient.Subscription{sub}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pipeline.New(pipeline.Options[event]{Producer: src,
		Processors: []pipeline.ProcessorOptions[event]{{Handler: pipeline.HandlerFunc[event](func(context.Context, *pipeline.Message[event]) error { return nil })}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Run(runCtx(t)); !errors.Is(err, dsclient.ErrSubscriptionNotFound) {
		t.Errorf("Run: %v, want ErrSubscriptionNotFound", err)
	}

	idle, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[event]{Subscriptions: []*dsclient.Subscription{sub}})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Close(context.Background()); err != nil {
		t.Errorf("Close before Produce: %v", err)
	}
	if _, err := idle.Produce(context.Background(), make([]pipeline.Message[event], 1)); err == nil {
		t.Error("Produce after Close: no error")
	}
	rec := httptest.NewRecorder()
	idle.WebhookHandler().ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("webhook handler without Webhook: %d, want 501", rec.Code)
	}
}

// A stream whose position in the shared store is ahead of the server's cursor (its last
// holder saved, then died before acking) is read from the store's position — nothing is
// delivered again — and acked up to it; later messages go on from the store's numbering.
func TestSubscriptionStoreAheadOfCursor(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 10*time.Second)
	done := e.stream("g", 0)
	appendTo(t, done, 0, 100, 100)
	h, err := done.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	store := &ack.MemoryStore{}
	if err := store.Save(context.Background(), keyOf(done), ack.Position{Offset: string(h.NextOffset), Seq: 100}.String()); err != nil {
		t.Fatal(err)
	}
	other := e.stream("g", 1)
	appendTo(t, other, 0, 50, 10)
	sink := newKeyedSink(50)
	w := startWorker(t, "w", []*dsclient.Subscription{sub}, sink, workerOptions{store: store})
	sink.waitFull(t, 30*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, 2) })
	sink.mu.Lock()
	for k := range sink.rows {
		if strings.HasSuffix(k.stream, "/s000") {
			t.Errorf("delivered %v again: the store was past it", k)
		}
	}
	sink.want += 20
	sink.full = make(chan struct{})
	sink.mu.Unlock()
	appendTo(t, done, 100, 120, 5) // numbered on from the store's 100
	sink.waitFull(t, 30*time.Second)
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	sink.check(t)
	if n := w.obs.won(); n > 3 {
		t.Errorf("%d claims won: a stream acked behind the store must not wake the subscription again and again", n)
	}
}

// An item that does not decode is bad data: its message reaches the failure handler with a
// *DecodeError naming its stream and position, and the stream goes on — whether the
// pipeline decodes on its processors (deferred) or the producer decodes as it reads
// (partitioned by stream).
func TestSubscriptionDecodeFailures(t *testing.T) {
	for _, partitioned := range []bool{false, true} {
		t.Run(map[bool]string{false: "deferred", true: "partitioned"}[partitioned], func(t *testing.T) {
			srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
			e := newSubEnv(t, srv.StreamURL(""))
			sub := e.pullWake("a", "g", 10*time.Second)
			s := e.stream("g", 0)
			for _, item := range []string{`{"n":0,"s":"s000"}`, `"not an event"`, `{"n":2,"s":"s000"}`} {
				if _, err := s.Append(context.Background(), []byte(item), dsclient.AppendOptions{ContentType: "application/json"}); err != nil {
					t.Fatal(err)
				}
			}
			src, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[event]{Subscriptions: []*dsclient.Subscription{sub}, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var good []int
			var bad []*ds.DecodeError
			all := make(chan struct{})
			check := func() {
				if len(good)+len(bad) == 3 {
					close(all)
				}
			}
			po := pipeline.ProcessorOptions[event]{Handler: pipeline.HandlerFunc[event](func(_ context.Context, m *pipeline.Message[event]) error {
				mu.Lock()
				defer mu.Unlock()
				good = append(good, m.Data.N)
				check()
				return nil
			})}
			if partitioned {
				po.PartitionBy = pipeline.PartitionByKey(func(m *pipeline.Message[event]) string { return m.Metadata.Stream })
			}
			pl, err := pipeline.New(pipeline.Options[event]{Producer: src, Processors: []pipeline.ProcessorOptions[event]{po}, Logger: testLogger(t),
				Failure: pipeline.FailureOptions[event]{Handler: pipeline.FailureHandlerFunc[event](func(_ context.Context, ms []pipeline.Message[event]) error {
					mu.Lock()
					defer mu.Unlock()
					for i := range ms {
						var de *ds.DecodeError
						if !errors.As(ms[i].Err(), &de) {
							t.Errorf("failed with %v, want a *DecodeError", ms[i].Err())
						}
						bad = append(bad, de)
					}
					check()
					return nil
				})}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- pl.Run(ctx) }()
			select {
			case <-all:
			case <-time.After(30 * time.Second):
				t.Fatal("not every message ended")
			}
			eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, 1) })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(good)
			if !slices.Equal(good, []int{0, 2}) || len(bad) != 1 || bad[0] == nil || bad[0].Position != 1 || bad[0].URL != s.URL() {
				t.Fatalf("decoded %v, failed %+v; want 0 and 2 decoded, position 1 of %s failed", good, bad, s.URL())
			}
		})
	}
}

// RunWorker runs a worker until its context ends, drains it, and returns its stats.
func TestRunWorker(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 10*time.Second)
	appendTo(t, e.stream("g", 0), 0, 100, 25)
	appendTo(t, e.stream("g", 1), 0, 50, 25)
	sink := newKeyedSink(150)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := ds.SubscriptionOptions[event]{Subscriptions: []*dsclient.Subscription{sub}, Worker: "solo", Name: "fleet",
		Checkpoints: &ack.MemoryStore{}, Logger: testLogger(t)}
	pl := pipeline.Options[event]{Logger: testLogger(t),
		Processors: []pipeline.ProcessorOptions[event]{{Handler: pipeline.HandlerFunc[event](func(_ context.Context, m *pipeline.Message[event]) error {
			sink.add("solo", []pipeline.Message[event]{*m})
			return nil
		})}}}
	type result struct {
		st  ds.WorkerStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := ds.RunWorker(ctx, opts, pl)
		done <- result{st, err}
	}()
	sink.waitFull(t, 30*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, 2) })
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	sink.check(t)
	if len(r.st.Subscriptions) != 1 {
		t.Fatalf("stats %+v: want one subscription", r.st)
	}
	if s := r.st.Subscriptions[0]; r.st.Worker != "solo" || s.ID != sub.ID() || s.Won < 1 || s.Messages != 150 || s.Done < 1 || s.Held || s.Fenced+s.Expired+s.Failed > 0 {
		t.Errorf("stats %+v, want worker solo, claims won and done, 150 messages, none lost", r.st)
	}
	pl.Producer = pipeline.ProducerFunc[event](func(context.Context, []pipeline.Message[event]) (int, error) { return 0, nil })
	if _, err := ds.RunWorker(ctx, opts, pl); err == nil {
		t.Error("RunWorker with a Producer set: no error")
	}
}
