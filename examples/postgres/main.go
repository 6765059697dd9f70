package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/pgsink"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// Config is what the flags set.
type Config struct {
	DSN         string // PostgreSQL connection string
	URL         string // stream URL; empty: an in-process server with N sample events
	N           int    // sample events written when URL is empty
	Name        string // pipeline name: the checkpoint's key
	Table       string // target table
	BatchSize   int
	Concurrency int // batch processors
}

// Event is one JSON event of the stream.
type Event struct {
	ID     int64   `json:"id"`
	User   string  `json:"user"`
	Type   string  `json:"type"`
	Amount float64 `json:"amount"`
}

func main() {
	cfg := Config{}
	flag.StringVar(&cfg.DSN, "dsn", "postgres://postgres@127.0.0.1:5432/test", "PostgreSQL connection string")
	flag.StringVar(&cfg.URL, "url", "", "URL of a JSON stream of events {id, user, type, amount} (default: start the in-process server and write -n events)")
	flag.IntVar(&cfg.N, "n", 200_000, "sample events to write when -url is not given")
	flag.StringVar(&cfg.Name, "name", "pg-example", "pipeline name, the key of its checkpoint")
	flag.StringVar(&cfg.Table, "table", "events", "target table")
	flag.IntVar(&cfg.BatchSize, "batch", 5000, "rows per batch")
	flag.IntVar(&cfg.Concurrency, "concurrency", 2, "batch processors (concurrent COPYs)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Result is what a run did.
type Result struct {
	Read      int64           // events the pipeline acknowledged
	Inserted  int64           // rows it inserted (redelivered rows are not inserted again)
	Fallbacks int64           // batches that met rows already there and went through staging
	BadData   int64           // events that failed as bad data (no user, or a row the database rejected)
	Committed dsclient.Offset // the committed offset at the end
	Elapsed   time.Duration   // the pipeline's run
}

func run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	var res Result
	if cfg.BatchSize <= 0 || cfg.Concurrency <= 0 {
		return res, fmt.Errorf("-batch and -concurrency must be > 0, got %d and %d", cfg.BatchSize, cfg.Concurrency)
	}
	if !validIdent(cfg.Table) {
		return res, fmt.Errorf("-table %q: want letters, digits and underscores", cfg.Table)
	}
	pool, err := pgxpool.New(ctx, cfg.DSN)
	if err != nil {
		return res, fmt.Errorf("-dsn: %w", err)
	}
	defer pool.Close()
	if err := createTable(ctx, pool, cfg.Table); err != nil {
		return res, err
	}
	store, err := pgstore.New(ctx, pool, pgstore.Options{})
	if err != nil {
		return res, err
	}

	streamURL := cfg.URL
	if streamURL == "" {
		srv, err := dstest.NewServer(dstest.Options{})
		if err != nil {
			return res, err
		}
		defer srv.Close()
		streamURL = srv.StreamURL(fmt.Sprintf("events-%d", time.Now().UnixNano()))
		fmt.Fprintf(out, "writing %d sample events to %s\n", cfg.N, streamURL)
		if err := writeSample(ctx, streamURL, cfg.N); err != nil {
			return res, err
		}
	}
	prod, err := ds.NewProducer(ds.ProducerOptions[Event]{
		Stream:      dsclient.NewStream(streamURL),
		Name:        cfg.Name,
		Live:        dsclient.LiveOff,
		Checkpoints: store,
	})
	if err != nil {
		return res, err
	}

	// The sink: each event is a row keyed by its stable position in the stream, (stream,
	// position), which the sink fills in; a batch delivered again changes nothing.
	sink, err := pgsink.New(pgsink.Options[Event]{
		DB:      pool,
		Table:   cfg.Table,
		Columns: []string{"id", "user_id", "type", "amount"},
		Values: func(row []any, m *pipeline.Message[Event]) ([]any, error) {
			return append(row, m.Data.ID, m.Data.User, m.Data.Type, m.Data.Amount), nil
		},
	})
	if err != nil {
		return res, err
	}

	var acked, bad atomic.Int64
	p, err := pipeline.New(pipeline.Options[Event]{
		Name:     cfg.Name,
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[Event]{{Concurrency: 2,
			Handler: pipeline.HandlerFunc[Event](func(_ context.Context, m *pipeline.Message[Event]) error {
				if m.Data.User == "" {
					return pipeline.Permanent(fmt.Errorf("event %d has no user", m.Data.ID))
				}
				return nil
			})}},
		Batchers: map[string]pipeline.BatcherOptions[Event]{
			"db": {BatchSize: cfg.BatchSize, BatchTimeout: 200 * time.Millisecond, Concurrency: cfg.Concurrency, Handler: sink},
		},
		DefaultBatcher: "db",
		// The default policy retries a batch PostgreSQL could not take (it is down, it
		// restarted) until it succeeds, never committing past it; only bad data comes here.
		Failure: pipeline.FailureOptions[Event]{Handler: pipeline.FailureHandlerFunc[Event](func(_ context.Context, ms []pipeline.Message[Event]) error {
			for i := range ms {
				fmt.Fprintf(out, "bad event at position %d: %v\n", ms[i].Metadata.Position, ms[i].Err())
			}
			bad.Add(int64(len(ms)))
			return nil
		})},
		Observer: ackCounter{&acked},
	})
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "reading %s into table %s from %s\n", streamURL, cfg.Table, startPosition(ctx, store, prod))
	t0 := time.Now()
	err = p.Run(ctx)
	res.Elapsed = time.Since(t0)
	st := sink.Stats()
	res.Read, res.Inserted, res.Fallbacks, res.BadData = acked.Load(), st.Written, st.Fallbacks, bad.Load()
	res.Committed = dsclient.Offset(prod.Committed().Offset)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "read %d events, inserted %d rows (%d batches redelivered, %d bad events) in %v: %.0f rows/s; committed offset %s\n",
		res.Read, res.Inserted, res.Fallbacks, res.BadData, res.Elapsed.Round(time.Millisecond), float64(res.Read)/res.Elapsed.Seconds(), res.Committed)
	return res, nil
}

func startPosition(ctx context.Context, store *pgstore.Store, prod *ds.Producer[Event]) string {
	if pos, ok, err := store.Load(ctx, prod.Key()); err == nil && ok {
		return pos + " (checkpoint)"
	}
	return "the beginning (no checkpoint)"
}

// writeSample writes n events to a new JSON stream through the idempotent Writer.
func writeSample(ctx context.Context, url string, n int) error {
	s := dsclient.NewStream(url, dsclient.WithContentType("application/json"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
		return err
	}
	w, err := dsclient.NewWriter(s, dsclient.DefaultWriterOptions("pg-example-writer"))
	if err != nil {
		return err
	}
	for i := range n {
		e := Event{ID: int64(i), User: fmt.Sprintf("u%d", i*7919%500), Type: "purchase", Amount: float64(i%100) + 0.25}
		if err := w.AppendJSON(ctx, e); err != nil {
			w.Close(ctx)
			return err
		}
	}
	return w.Close(ctx)
}

type ackCounter struct{ n *atomic.Int64 }

func (ackCounter) Produced(pipeline.ProducedEvent)   {}
func (ackCounter) Processed(pipeline.ProcessedEvent) {}
func (ackCounter) BatchHandled(pipeline.BatchEvent)  {}
func (ackCounter) Retried(pipeline.RetryEvent)       {}
func (ackCounter) Drain(pipeline.DrainEvent)         {}
func (c ackCounter) Acked(e pipeline.AckEvent)       { c.n.Add(int64(e.Successful + e.Failed)) }

// createTable creates the table, keyed by (stream, position), if it is missing.
func createTable(ctx context.Context, pool *pgxpool.Pool, table string) error {
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+pgx.Identifier{table}.Sanitize()+` (
		stream   text   NOT NULL,
		position bigint NOT NULL,
		id       bigint NOT NULL,
		user_id  text   NOT NULL,
		type     text   NOT NULL,
		amount   double precision NOT NULL,
		PRIMARY KEY (stream, position)
	)`)
	// Two programs creating the table at once: one loses the race on the catalog, and the
	// table is there.
	if err != nil && !pgsink.LostCreateRace(err) {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return nil
}

func validIdent(s string) bool {
	if s == "" || len(s) > 63 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
