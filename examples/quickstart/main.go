package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// Config is what the flags set.
type Config struct {
	// N is how many events to write and read.
	N int
	// URL is the base URL of an external server's streams (the stream's name is appended);
	// empty: start the in-process server.
	URL string
	// PG is a PostgreSQL connection string; empty: an in-memory table and checkpoint store.
	PG string
	// Progress is how often progress is shown; 0 shows none.
	Progress time.Duration
	// Terminal rewrites one progress line in place instead of printing periodic lines.
	Terminal bool
}

func main() {
	cfg := Config{Progress: time.Second}
	flag.IntVar(&cfg.N, "n", 100_000, "how many events to write and read")
	flag.StringVar(&cfg.URL, "url", "", "base URL of a Durable Streams server's streams, such as http://127.0.0.1:4437/v1/stream/ (default: start the in-process server)")
	flag.StringVar(&cfg.PG, "pg", "", "PostgreSQL connection string, such as postgres://postgres@127.0.0.1:5432/test (default: an in-memory table)")
	flag.Parse()
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.Terminal, cfg.Progress = true, 100*time.Millisecond
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Summary is what a run did.
type Summary struct {
	Stream          string
	Written         int
	Acked, Failed   int64
	DatabaseRows    int64
	DatabaseBatches int
	AnalyticsEvents int64
	AnalyticsBatch  int
	Keys            map[string]Aggregate
	Committed       dsclient.Offset
	AtTail          bool
	DeadLetters     int
	Elapsed         time.Duration
}

func run(ctx context.Context, cfg Config, out io.Writer) (Summary, error) {
	var sum Summary
	if cfg.N <= 0 {
		return sum, fmt.Errorf("-n must be > 0, got %d", cfg.N)
	}
	base := cfg.URL
	if base == "" {
		srv, err := dstest.NewServer(dstest.Options{})
		if err != nil {
			return sum, err
		}
		defer srv.Close()
		base = srv.StreamURL("")
	}
	name := fmt.Sprintf("quickstart-%d", time.Now().UnixNano())
	streamURL := strings.TrimSuffix(base, "/") + "/" + name
	stream := dsclient.NewStream(streamURL, dsclient.WithContentType("application/json"))
	dlq := dsclient.NewStream(streamURL+"-dead-letters", dsclient.WithContentType("application/json"))
	for _, s := range []*dsclient.Stream{stream, dlq} {
		if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
			return sum, fmt.Errorf("create %s: %w", s.URL(), err)
		}
	}
	sum.Stream, sum.Written = streamURL, cfg.N
	fmt.Fprintf(out, "quickstart: writing %d events to %s\n", cfg.N, streamURL)
	t0 := time.Now()
	if err := writeEvents(ctx, stream, cfg.N); err != nil {
		return sum, err
	}
	fmt.Fprintf(out, "wrote %d events in %v\n", cfg.N, time.Since(t0).Round(time.Millisecond))

	// The sinks and the checkpoint store: in memory, or PostgreSQL.
	var db sink = newMemTable()
	var store ack.CheckpointStore = new(ack.MemoryStore)
	if cfg.PG != "" {
		pg, err := openPG(ctx, cfg.PG)
		if err != nil {
			return sum, err
		}
		defer pg.close()
		if store, err = pgstore.New(ctx, pg.pool, pgstore.Options{}); err != nil {
			return sum, err
		}
		db = pg
	}
	agg := newAnalytics()
	dlw, err := dsclient.NewWriter(dlq, dsclient.DefaultWriterOptions("quickstart-dead-letters"))
	if err != nil {
		return sum, err
	}
	defer dlw.Close(context.WithoutCancel(ctx))

	prod, err := ds.NewProducer(ds.ProducerOptions[Event]{
		Stream:      stream,
		Name:        "quickstart",
		Live:        dsclient.LiveOff, // read up to the tail, then drain and stop
		Checkpoints: store,
	})
	if err != nil {
		return sum, err
	}
	obs := newCounter()
	p, err := pipeline.New(pipeline.Options[Event]{
		Name:     "quickstart",
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[Event]{{
			Name:        "route",
			Concurrency: 4,
			Handler:     pipeline.HandlerFunc[Event](route),
		}},
		Batchers: map[string]pipeline.BatcherOptions[Event]{
			"database":  {BatchSize: 500, BatchTimeout: 200 * time.Millisecond, Concurrency: 2, Handler: db},
			"analytics": {BatchSize: 1000, BatchTimeout: 200 * time.Millisecond, Concurrency: 2, Handler: agg},
		},
		Failure:  pipeline.FailureOptions[Event]{Handler: ds.NewDeadLetter[Event](dlw)},
		Observer: obs,
	})
	if err != nil {
		return sum, err
	}

	start := time.Now()
	stopProgress := showProgress(out, cfg, obs, prod, start)
	err = p.Run(ctx)
	stopProgress()
	sum.Elapsed = time.Since(start)
	if err != nil {
		return sum, err
	}

	head, err := stream.Head(ctx)
	if err != nil {
		return sum, err
	}
	sum.Acked, sum.Failed = obs.acked.Load(), obs.failed.Load()
	sum.DatabaseRows, sum.DatabaseBatches = db.rows(), obs.batches("database")
	sum.AnalyticsEvents, sum.AnalyticsBatch, sum.Keys = agg.total(), obs.batches("analytics"), agg.snapshot()
	committed := prod.Committed()
	sum.Committed = dsclient.Offset(committed.Offset)
	sum.AtTail = sum.Committed == head.NextOffset && committed.Skip == 0
	if dl, _, err := dsclient.ReadJSON[ds.DeadLetterRecord](ctx, dlq, dsclient.ReadOptions{}); err == nil {
		sum.DeadLetters = len(dl)
	}
	printSummary(out, sum, db.describe())
	if sum.Acked != int64(cfg.N) {
		return sum, fmt.Errorf("acknowledged %d of %d events", sum.Acked, cfg.N)
	}
	return sum, nil
}

// writeEvents writes n sample events through the idempotent Writer and waits until the server
// has them all.
func writeEvents(ctx context.Context, s *dsclient.Stream, n int) error {
	w, err := dsclient.NewWriter(s, dsclient.DefaultWriterOptions("quickstart-writer"))
	if err != nil {
		return err
	}
	for i := range n {
		if err := w.AppendJSON(ctx, sampleEvent(i)); err != nil {
			w.Close(ctx)
			return fmt.Errorf("write event %d: %w", i, err)
		}
	}
	return w.Close(ctx) // flushes, then stops
}

// route validates an event and sends it to its batcher: purchases to the database, the rest to
// analytics, keyed by type. An invalid event is bad data (pipeline.Permanent): it goes to the
// dead-letter stream at once, where a plain error would be retried as a transient failure.
func route(_ context.Context, m *pipeline.Message[Event]) error {
	e := &m.Data
	switch {
	case e.User == "":
		return pipeline.Permanent(errors.New("event without a user"))
	case e.Type == "purchase":
		if e.Amount < 0 {
			return pipeline.Permanent(fmt.Errorf("purchase %d: negative amount %.2f", e.ID, e.Amount))
		}
		m.SetBatcher("database")
	case e.Type == "page_view" || e.Type == "add_to_cart" || e.Type == "signup":
		m.SetBatcher("analytics")
		m.SetBatchKey(e.Type)
	default:
		return pipeline.Permanent(fmt.Errorf("event %d: unknown type %q", e.ID, e.Type))
	}
	return nil
}

func printSummary(out io.Writer, s Summary, dbDesc string) {
	fmt.Fprintf(out, "\nsummary\n")
	fmt.Fprintf(out, "  stream:            %s\n", s.Stream)
	fmt.Fprintf(out, "  written:           %d events\n", s.Written)
	fmt.Fprintf(out, "  processed:         %d of %d acknowledged, %d failed\n", s.Acked, s.Written, s.Failed)
	fmt.Fprintf(out, "  database batcher:  %d batches, %d rows (%s)\n", s.DatabaseBatches, s.DatabaseRows, dbDesc)
	fmt.Fprintf(out, "  analytics batcher: %d batches, %d events in %d keys\n", s.AnalyticsBatch, s.AnalyticsEvents, len(s.Keys))
	for _, k := range sortedKeys(s.Keys) {
		a := s.Keys[k]
		fmt.Fprintf(out, "    %-12s %7d events, %4d users, amount %.2f\n", k, a.Count, a.Users, a.Amount)
	}
	fmt.Fprintf(out, "  failures:          %d, %d in the dead-letter stream\n", s.Failed, s.DeadLetters)
	tail := "no"
	if s.AtTail {
		tail = "yes"
	}
	fmt.Fprintf(out, "  committed offset:  %s (the stream's tail: %s)\n", s.Committed, tail)
	rate := float64(s.Acked) / s.Elapsed.Seconds()
	fmt.Fprintf(out, "  elapsed:           %v (%.0f events/s)\n", s.Elapsed.Round(time.Millisecond), rate)
}
