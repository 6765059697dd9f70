package durablestreams_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// flakyStore is a checkpoint store whose Load fails the first failLoads times (a database that
// is down), counting the calls.
type flakyStore struct {
	ack.MemoryStore
	failLoads int
	loads     atomic.Int32
	retried   chan struct{} // closed at the second Load
}

var errStoreDown = errors.New("checkpoint store is down")

func newFlakyStore(failLoads int) *flakyStore {
	return &flakyStore{failLoads: failLoads, retried: make(chan struct{})}
}

func (s *flakyStore) Load(ctx context.Context, key string) (string, bool, error) {
	n := int(s.loads.Add(1))
	if n == 2 {
		close(s.retried)
	}
	if n <= s.failLoads {
		return "", false, errStoreDown
	}
	return s.MemoryStore.Load(ctx, key)
}

// A checkpoint store that cannot load delays the start, with backoff, until it can or the run
// ends; Close after a start that never happened does not panic and reports nothing.
func TestProducerCheckpointStoreDownAtStart(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{})
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	fillOpen(t, s, 100, 10)

	t.Run("comes back", func(t *testing.T) {
		store := newFlakyStore(3)
		p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "down", Checkpoints: store})
		if err != nil {
			t.Fatal(err)
		}
		runStopAfter(t, p, 0).exactlyOnce(t, 100)
		if n := store.loads.Load(); n != 5 { // three failures, then the new key and the old key
			t.Fatalf("Load called %d times, want 5", n)
		}
	})
	t.Run("never comes back", func(t *testing.T) {
		store := newFlakyStore(1 << 30)
		p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "down", Checkpoints: store})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		msgs := make([]pipeline.Message[event], 10)
		done := make(chan error, 1)
		go func() {
			_, err := p.Produce(ctx, msgs)
			done <- err
		}()
		<-store.retried // the producer is retrying the load
		cancel()
		err = <-done
		if !errors.Is(err, errStoreDown) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Produce: %v, want the store's error and the cancellation", err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatalf("Close after a failed start: %v", err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// Checkpoints are keyed by the stream's path: a pipeline whose server is reached by another host
// name resumes where it was, and a checkpoint saved under the key of an earlier version (the
// whole URL) is found and then saved under the new key.
func TestProducerCheckpointKeySurvivesHostChange(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 1 << 10})
	byIP := srv.StreamURL(name(t))
	u, err := url.Parse(byIP)
	if err != nil {
		t.Fatal(err)
	}
	byName := strings.Replace(byIP, "127.0.0.1", "localhost", 1)
	if byName == byIP {
		t.Fatalf("test server URL %q is not on 127.0.0.1", byIP)
	}
	s := dsclient.NewStream(byIP, fastRetry())
	offsets, _ := appendOffsets(t, s, 1000, 10)
	store := new(ack.MemoryStore)
	run := func(streamURL string, stopAfter int) (*ds.Producer[event], *seen) {
		p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: dsclient.NewStream(streamURL, fastRetry()), Name: "moves", Checkpoints: store})
		if err != nil {
			t.Fatal(err)
		}
		return p, runStopAfter(t, p, stopAfter)
	}
	p1, first := run(byIP, 0)
	first.exactlyOnce(t, 1000)
	if want := ack.CheckpointKey("moves", u.Path); p1.Key() != want {
		t.Fatalf("key %q, want %q (pipeline name and stream path)", p1.Key(), want)
	}
	if _, second := run(byName, 0); second.total != 0 {
		t.Fatalf("after a host change the pipeline read %d events again", second.total)
	}

	// An earlier version's checkpoint, under the whole URL, at event 600.
	legacy := new(ack.MemoryStore)
	if err := legacy.Save(context.Background(), ack.CheckpointKey("old", byIP), string(offsets[59])); err != nil {
		t.Fatal(err)
	}
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Name: "old", Checkpoints: legacy})
	if err != nil {
		t.Fatal(err)
	}
	got := runStopAfter(t, p, 0)
	if got.total != 400 || got.count[599] != 0 || got.count[600] != 1 {
		t.Fatalf("from the old key's checkpoint the run read %d events (event 599: %d, 600: %d), want the 400 after it",
			got.total, got.count[599], got.count[600])
	}
	if saved, found, _ := legacy.Load(context.Background(), p.Key()); !found || !strings.HasPrefix(saved, string(p.Committed().Offset)) {
		t.Fatalf("the run did not save under the new key %q: %q (found %v)", p.Key(), saved, found)
	}
}

// countingObserver counts what the producer reports.
type countingObserver struct {
	ds.NopProducerObserver
	mu       sync.Mutex
	messages int
	calls    int
}

func (o *countingObserver) ProducerMessages(e ds.ProducerMessagesEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.messages += e.Messages
	o.calls++
}

// The producer reports every message it hands out, also during a long single-response
// catch-up that is stopped half way (where no response is ever handed out whole).
func TestProducerReportsMessagesHandedOut(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{}) // one response holds the stream
	s := dsclient.NewStream(srv.StreamURL(name(t)), fastRetry())
	fillFast(t, s, 20000)
	obs := &countingObserver{}
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: s, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	got := runStopAfter(t, p, 5000)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	st := p.Stats()
	if obs.messages != got.total || uint64(obs.messages) != st.Messages || st.Chunks != 1 || obs.calls < 2 {
		t.Fatalf("reported %d messages in %d calls; handled %d, stats %d messages in %d responses",
			obs.messages, obs.calls, got.total, st.Messages, st.Chunks)
	}
}

// A malformed JSON body ends the run with one clear error (the stream, the offset, the byte
// position), after the items before it, and never turns into a flood of failed messages.
func TestProducerMalformedBody(t *testing.T) {
	body := `[{"n":0,"s":"x"},{"n":1,"s":"x"},{"n":2,"s":"x"}{"n":3}]`
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Stream-Next-Offset", "0000000000000000_0000000000000100")
		w.Header().Set("Stream-Up-To-Date", "true")
		io.WriteString(w, body)
	}))
	defer hs.Close()
	p, err := ds.NewProducer(ds.ProducerOptions[event]{Stream: dsclient.NewStream(hs.URL+"/v1/stream/broken", fastRetry())})
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int32
	got := newSeen()
	pl, err := failurePipeline(p, got, pipeline.FailureHandlerFunc[event](func(ctx context.Context, ms []pipeline.Message[event]) error {
		failed.Add(int32(len(ms)))
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	err = pl.Run(runCtx(t))
	var e *dsclient.Error
	if !errors.As(err, &e) || !errors.Is(err, dsclient.ErrParse) {
		t.Fatalf("Run: %v, want a *dsclient.Error of kind ErrParse", err)
	}
	if !strings.Contains(err.Error(), "/v1/stream/broken") {
		t.Fatalf("error %q does not name the stream", err)
	}
	if got.total > 3 || failed.Load() != 0 {
		t.Fatalf("handled %d messages and %d failures from a body whose fourth item is malformed", got.total, failed.Load())
	}
}
