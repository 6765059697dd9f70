package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
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
	Concurrency int  // batch processors
	Staging     bool // always go through the staging table
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
	flag.BoolVar(&cfg.Staging, "staging", false, "write every batch through the staging table (insert-if-absent), not only redelivered ones")
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
	Fallbacks int64           // batches that went through staging after a conflict
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
	stream := dsclient.NewStream(streamURL)
	prod, err := ds.NewProducer(ds.ProducerOptions[Event]{
		Stream:      stream,
		Name:        cfg.Name,
		Live:        dsclient.LiveOff,
		Checkpoints: store,
	})
	if err != nil {
		return res, err
	}
	sink := &sink{pool: pool, table: cfg.Table, staging: cfg.Staging}
	var acked atomic.Int64
	p, err := pipeline.New(pipeline.Options[Event]{
		Name:     cfg.Name,
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[Event]{{Concurrency: 2,
			Handler: pipeline.HandlerFunc[Event](func(_ context.Context, m *pipeline.Message[Event]) error {
				if m.Data.User == "" {
					return fmt.Errorf("event %d has no user", m.Data.ID)
				}
				return nil
			})}},
		Batchers: map[string]pipeline.BatcherOptions[Event]{
			"db": {BatchSize: cfg.BatchSize, BatchTimeout: 200 * time.Millisecond, Concurrency: cfg.Concurrency, Handler: sink},
		},
		DefaultBatcher: "db",
		Failure:        pipeline.FailureOptions[Event]{Policy: pipeline.FailHalt}, // never commit past a row not written
		Observer:       ackCounter{&acked},
	})
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "reading %s into table %s from offset %s\n", streamURL, cfg.Table, startOffset(ctx, store, prod))
	t0 := time.Now()
	err = p.Run(ctx)
	res.Elapsed = time.Since(t0)
	res.Read, res.Inserted, res.Fallbacks, res.Committed = acked.Load(), sink.inserted.Load(), sink.fallbacks.Load(), dsclient.Offset(prod.Committed().Offset)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "read %d events, inserted %d rows (%d batches redelivered) in %v: %.0f rows/s; committed offset %s\n",
		res.Read, res.Inserted, res.Fallbacks, res.Elapsed.Round(time.Millisecond), float64(res.Read)/res.Elapsed.Seconds(), res.Committed)
	return res, nil
}

func startOffset(ctx context.Context, store *pgstore.Store, prod *ds.Producer[Event]) string {
	if off, ok, err := store.Load(ctx, prod.Key()); err == nil && ok {
		return off + " (checkpoint)"
	}
	return "-1 (no checkpoint)"
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

var columns = []string{"stream", "chunk_start", "idx", "id", "user_id", "type", "amount"}

func createTable(ctx context.Context, pool *pgxpool.Pool, table string) error {
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+pgx.Identifier{table}.Sanitize()+` (
		stream      text   NOT NULL,
		chunk_start text   NOT NULL,
		idx         int    NOT NULL,
		id          bigint NOT NULL,
		user_id     text   NOT NULL,
		type        text   NOT NULL,
		amount      double precision NOT NULL,
		PRIMARY KEY (stream, chunk_start, idx)
	)`)
	// Two programs creating the table at once: one loses the race on the catalog (a unique
	// violation, or "already exists"), and the table is there.
	var pe *pgconn.PgError
	if err != nil && !(errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07")) {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return nil
}

// sink writes batches to the table, idempotently.
//
// Every writer inserts a batch's rows in source-position order (stream, chunk start, index,
// compared byte-wise), so writers that insert the same rows at once (two pipelines on one
// stream, an old process beside its replacement) wait for one another but never deadlock:
// the one that waits goes on once the other commits, and takes the insert-if-absent path.
type sink struct {
	pool      *pgxpool.Pool
	table     string
	staging   bool
	inserted  atomic.Int64
	fallbacks atomic.Int64
}

// maxAttempts bounds the attempts at the insert-if-absent path of one batch when PostgreSQL
// aborts it as a deadlock victim or on a serialization failure, which can only happen against
// writers that do not follow the sink's order.
const maxAttempts = 3

func (s *sink) HandleBatch(ctx context.Context, batch []pipeline.Message[Event], _ pipeline.BatchInfo) error {
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return comparePosition(&batch[a], &batch[b]) })
	rows := func() pgx.CopyFromSource {
		return pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			m := &batch[order[i]]
			return []any{streamOf(m), "", int32(m.Metadata.Position), m.Data.ID, m.Data.User, m.Data.Type, m.Data.Amount}, nil
		})
	}
	if !s.staging {
		n, err := s.pool.CopyFrom(ctx, pgx.Identifier{s.table}, columns, rows())
		if err == nil {
			s.inserted.Add(n)
			return nil
		}
		if !hasCode(err, "23505") && !retryable(err) {
			return err
		}
		// A row of the batch is there already: the batch is a redelivery, or another writer
		// has it. The COPY was rolled back whole; insert what is missing.
		s.fallbacks.Add(1)
	}
	t := pgx.Identifier{s.table}.Sanitize()
	var err error
	for range maxAttempts {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE staging (LIKE `+t+`) ON COMMIT DROP`); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staging"}, columns, rows()); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO `+t+` SELECT * FROM staging
				ORDER BY stream COLLATE "C", chunk_start COLLATE "C", idx ON CONFLICT DO NOTHING`)
			if err != nil {
				return err
			}
			s.inserted.Add(tag.RowsAffected())
			return nil
		})
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// comparePosition orders messages by source position: stream URL, chunk start, index.
func comparePosition(a, b *pipeline.Message[Event]) int {
	if c := strings.Compare(streamOf(a), streamOf(b)); c != 0 {
		return c
	}
	return cmp.Compare(a.Metadata.Position, b.Metadata.Position)
}

// streamOf returns the URL of the stream m was read from.
func streamOf(m *pipeline.Message[Event]) string {
	return m.Metadata.Stream
}

func hasCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// retryable reports whether PostgreSQL aborted the statement as a deadlock victim or on a
// serialization failure: trying again can succeed.
func retryable(err error) bool { return hasCode(err, "40P01") || hasCode(err, "40001") }

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
