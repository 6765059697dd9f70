package metrics_test

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// flakyStore fails its first Save.
type flakyStore struct {
	ack.MemoryStore
	saves atomic.Int32
}

func (s *flakyStore) Save(ctx context.Context, key, offset string) error {
	if s.saves.Add(1) == 1 {
		return errors.New("disk full")
	}
	return s.MemoryStore.Save(ctx, key, offset)
}

// One Metrics observes a pipeline, its Durable Streams producer and the client under it: a
// stream of ten numbers and one value that does not decode, read in small chunks after a
// 410 that makes the producer resume from the earliest offset.
func TestProducerMetrics(t *testing.T) {
	ctx := context.Background()
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 8})
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "numbers"})
	if err != nil {
		t.Fatal(err)
	}
	rp := dsclient.DefaultRetryPolicy()
	rp.InitialDelay, rp.MaxDelay = time.Millisecond, time.Millisecond
	s := dsclient.NewStream(srv.StreamURL("numbers"), dsclient.WithObserver(m), dsclient.WithRetry(rp), dsclient.WithContentType("application/json"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"0", "1", "2", "3", "4", `"x"`, "5", "6", "7", "8", "9"} {
		if _, err := s.Append(ctx, []byte(v), dsclient.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.InjectFault(u.Path, dstest.Fault{Method: "GET", Status: 410}); err != nil {
		t.Fatal(err)
	}

	store := &flakyStore{}
	prod, err := ds.NewProducer(ds.ProducerOptions[int]{
		Stream:      s,
		Name:        "numbers",
		Checkpoints: store,
		OnGone:      ds.GoneResumeEarliest,
		Observer:    m,
		Logger:      discardLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.WatchProducer(prod)
	p, err := pipeline.New(pipeline.Options[int]{
		Name:     "numbers",
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{
			Handler: pipeline.HandlerFunc[int](func(context.Context, *pipeline.Message[int]) error { return nil }),
		}},
		Observer: m,
		Logger:   discardLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}

	st := prod.Stats()
	if st.Chunks < 2 {
		t.Fatalf("the producer read %d chunks, want several (MaxChunkBytes)", st.Chunks)
	}
	got := scrape(t, reg)
	expect(t, got, map[string]float64{
		"sluice_ds_producer_chunks_total":                float64(st.Chunks),
		"sluice_ds_producer_messages_total":              11,
		"sluice_ds_producer_decode_failures_total":       1,
		"sluice_ds_producer_gone_total":                  1,
		"sluice_ds_requests_total{op=read,status=410}":   1,
		"sluice_ds_checkpoint_saves_total{result=error}": 1,
		"sluice_messages_produced_total":                 11,
		"sluice_messages_acked_total":                    11,
		"sluice_messages_acked_failed_total":             1,
		"sluice_ds_producer_at_tail":                     1,
		"sluice_ds_producer_pending_messages":            0,
		"sluice_ds_producer_oldest_pending_seconds":      0,
	})
	saves := got["sluice_ds_checkpoint_saves_total{result=ok}"] + got["sluice_ds_checkpoint_saves_total{result=error}"]
	if int(saves) != int(store.saves.Load()) {
		t.Errorf("checkpoint saves counted %v, the store saw %d", saves, store.saves.Load())
	}
	if got["sluice_ds_checkpoint_saves_total{result=ok}"] < 1 {
		t.Error("no successful checkpoint save counted; the drain saves the last offset")
	}
	expect(t, got, map[string]float64{"sluice_ds_checkpoint_save_duration_seconds_count": saves})
	// The producer's reads go through the client's observer too: 11 values of 1 to 3 bytes,
	// plus the brackets and commas of each chunk's array.
	if b := got["sluice_ds_read_bytes_total"]; b < 13 {
		t.Errorf("sluice_ds_read_bytes_total = %v, want at least the 13 bytes of the values", b)
	}
	if c := got["sluice_ds_producer_commits_total"]; c < 1 {
		t.Errorf("sluice_ds_producer_commits_total = %v, want >= 1", c)
	}
	if ts := got["sluice_ds_producer_last_commit_timestamp_seconds"]; ts < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("sluice_ds_producer_last_commit_timestamp_seconds = %v, want a recent Unix time", ts)
	}

	// Without a watched producer the lag gauges are absent.
	m.WatchProducer(nil)
	if _, ok := scrape(t, reg)["sluice_ds_producer_at_tail"]; ok {
		t.Error("sluice_ds_producer_at_tail exported after WatchProducer(nil)")
	}
}

// The lag gauges read the producer's stats at each scrape.
func TestWatchProducerPollsStats(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "lag"})
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeStats{}
	m.WatchProducer(src)
	src.st.Store(&ds.ProducerStats{Pending: 42, OldestPending: 1500 * time.Millisecond})
	expect(t, scrape(t, reg), map[string]float64{
		"sluice_ds_producer_at_tail":                0,
		"sluice_ds_producer_pending_messages":       42,
		"sluice_ds_producer_oldest_pending_seconds": 1.5,
	})
	src.st.Store(&ds.ProducerStats{AtTail: true})
	expect(t, scrape(t, reg), map[string]float64{
		"sluice_ds_producer_at_tail":                1,
		"sluice_ds_producer_pending_messages":       0,
		"sluice_ds_producer_oldest_pending_seconds": 0,
	})
}

type fakeStats struct {
	st atomic.Pointer[ds.ProducerStats]
}

func (f *fakeStats) Stats() ds.ProducerStats { return *f.st.Load() }
