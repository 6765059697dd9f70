// Command postgres compares writing the same rows to PostgreSQL through a Sluice pipeline with
// one bare pgx CopyFrom:
//
//	cd bench && go run ./postgres [-n 1000000] [-rounds 3] [-dsn postgres://...]
//
// Variants, in an order that alternates from round to round, each into a fresh table keyed by
// source position (stream, chunk offset, index):
//
//   - bare CopyFrom: one pgx CopyFrom of every row, on one connection: the limit.
//   - sluice, staging + insert-if-absent: a pipeline (an in-memory producer, 2 processors, a
//     batcher of 10,000 rows with 2 batch processors) whose batch handler copies each batch into a
//     temporary staging table and moves it with INSERT … ON CONFLICT DO NOTHING, in one
//     transaction (examples/postgres with -staging).
//   - sluice, COPY; insert-if-absent on redelivery: the same pipeline whose handler copies each
//     batch straight into the table, and only when that fails on a row already there (a
//     redelivered batch) goes through staging and insert-if-absent: the idempotent sink of
//     examples/postgres. Both idempotent sinks put each batch's rows in source-position
//     order first, as the example does, so that concurrent writers never deadlock.
//   - sluice, insert-if-absent from arrays: one INSERT … SELECT FROM unnest(…) ON CONFLICT DO
//     NOTHING per batch.
//   - sluice, COPY per batch: the same pipeline whose handler copies each batch straight into the
//     table (not idempotent; the pipeline's own cost).
//
// Every run checks the table's row count and the sum of the ids; a run that fails the check is
// INVALID and left out of the medians.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer"
)

func main() {
	n := flag.Int("n", 1_000_000, "rows per run")
	rounds := flag.Int("rounds", 3, "rounds; the order of the variants alternates")
	dsn := flag.String("dsn", defaultDSN(), "PostgreSQL connection string")
	batch := flag.Int("batch", 10000, "the pipeline's batch size")
	conc := flag.Int("concurrency", 2, "the pipeline's batch processors")
	flag.Parse()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	fmt.Println(dsload.MachineInfo())
	var pgVersion string
	_ = pool.QueryRow(ctx, "SHOW server_version").Scan(&pgVersion)
	fmt.Printf("PostgreSQL %s at %s; %d rows of ~100 bytes per run, %d rounds; pipeline: batches of %d, %d batch processors\n\n",
		pgVersion, *dsn, *n, *rounds, *batch, *conc)
	res, err := measure(ctx, pool, *n, *rounds, *batch, *conc, func(s string) { fmt.Println(s) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	fmt.Printf("%-46s %12s %8s\n", "variant", "rows/s", "x bare")
	for _, r := range res {
		fmt.Printf("%-46s %12.0f %7.2fx\n", r.name, r.rate, r.ratio)
	}
	fmt.Println("target: the idempotent pipeline >= 0.80x the bare CopyFrom")
}

func defaultDSN() string {
	if d := os.Getenv("SLUICE_PG_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// row is one row: a source position and an event's fields.
type row struct {
	stream string
	chunk  string
	idx    int32
	id     int64
	user   string
	typ    string
	amount float64
}

var columns = []string{"stream", "chunk_start", "idx", "id", "user_id", "type", "amount"}

const streamURL = "http://127.0.0.1:4437/v1/stream/bench-orders"

// rowAt returns row i: chunks of 1000 rows, as a stream reader would give them.
func rowAt(i int) row {
	return row{stream: streamURL, chunk: fmt.Sprintf("0000000000000000_%016d", i/1000*100_000), idx: int32(i % 1000),
		id: int64(i), user: fmt.Sprintf("u%d", i%300), typ: "purchase", amount: float64(i%100) + 0.5}
}

// comparePosition orders rows by source position: stream, chunk start, index.
func comparePosition(a, b *row) int {
	if c := strings.Compare(a.stream, b.stream); c != 0 {
		return c
	}
	if c := strings.Compare(a.chunk, b.chunk); c != 0 {
		return c
	}
	return cmp.Compare(a.idx, b.idx)
}

func (r *row) values() []any {
	return []any{r.stream, r.chunk, r.idx, r.id, r.user, r.typ, r.amount}
}

type variant struct {
	name string
	run  func(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, batch, conc int) error
}

var variants = []variant{
	{"bare CopyFrom", bareCopy},
	{"sluice, staging + insert-if-absent", func(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, batch, conc int) error {
		return viaPipeline(ctx, pool, table, rows, batch, conc, sinkStaging)
	}},
	{"sluice, COPY; insert-if-absent on redelivery", func(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, batch, conc int) error {
		return viaPipeline(ctx, pool, table, rows, batch, conc, sinkOptimistic)
	}},
	{"sluice, COPY per batch", func(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, batch, conc int) error {
		return viaPipeline(ctx, pool, table, rows, batch, conc, sinkCopy)
	}},
	{"sluice, insert-if-absent from arrays", func(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, batch, conc int) error {
		return viaPipeline(ctx, pool, table, rows, batch, conc, sinkUnnest)
	}},
}

type result struct {
	name        string
	rate, ratio float64
}

// measure runs every variant rounds times and returns medians of rows/s and of the ratio to
// the bare CopyFrom of the same round.
func measure(ctx context.Context, pool *pgxpool.Pool, n, rounds, batch, conc int, logf func(string)) ([]result, error) {
	rows := make([]row, n)
	for i := range rows {
		rows[i] = rowAt(i)
	}
	rates := make([][]float64, len(variants))
	ratios := make([][]float64, len(variants))
	for r := range rounds {
		order := make([]int, len(variants))
		for i := range order {
			order[i] = (i + r) % len(variants)
		}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		got := make([]float64, len(variants))
		for _, vi := range order {
			v := variants[vi]
			table := fmt.Sprintf("sluice_bench_pg_%d", vi)
			if err := freshTable(ctx, pool, table); err != nil {
				return nil, err
			}
			t0 := time.Now()
			err := v.run(ctx, pool, table, rows, batch, conc)
			el := time.Since(t0)
			if err == nil {
				err = check(ctx, pool, table, n)
			}
			pool.Exec(ctx, "DROP TABLE IF EXISTS "+table)
			if err != nil {
				logf(fmt.Sprintf("round %d/%d %-46s INVALID: %v", r+1, rounds, v.name, err))
				continue
			}
			got[vi] = float64(n) / el.Seconds()
			logf(fmt.Sprintf("round %d/%d %-46s %10.0f rows/s", r+1, rounds, v.name, got[vi]))
		}
		for vi := range variants {
			if got[vi] > 0 {
				rates[vi] = append(rates[vi], got[vi])
				if got[0] > 0 {
					ratios[vi] = append(ratios[vi], got[vi]/got[0])
				}
			}
		}
	}
	out := make([]result, len(variants))
	for vi, v := range variants {
		out[vi] = result{name: v.name, rate: dsload.Median(rates[vi]), ratio: dsload.Median(ratios[vi])}
	}
	return out, nil
}

func freshTable(ctx context.Context, pool *pgxpool.Pool, table string) error {
	_, err := pool.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s;
		CREATE TABLE %[1]s (stream text NOT NULL, chunk_start text NOT NULL, idx int NOT NULL, id bigint NOT NULL,
			user_id text NOT NULL, type text NOT NULL, amount double precision NOT NULL, PRIMARY KEY (stream, chunk_start, idx))`, table))
	return err
}

func check(ctx context.Context, pool *pgxpool.Pool, table string, n int) error {
	var count, sum int64
	if err := pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(id), 0) FROM "+table).Scan(&count, &sum); err != nil {
		return err
	}
	if count != int64(n) || sum != int64(n)*int64(n-1)/2 {
		return fmt.Errorf("%d rows with id sum %d, want %d rows with sum %d", count, sum, n, int64(n)*int64(n-1)/2)
	}
	return nil
}

func bareCopy(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, _, _ int) error {
	_, err := pool.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		return rows[i].values(), nil
	}))
	return err
}

type sinkKind int

const (
	sinkStaging sinkKind = iota
	sinkCopy
	sinkUnnest
	sinkOptimistic
)

func viaPipeline(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, batch, conc int, kind sinkKind) error {
	unnest := "INSERT INTO " + table + " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::text[], $7::float8[]) ON CONFLICT DO NOTHING"
	insert := "INSERT INTO " + table + ` SELECT * FROM staging ORDER BY stream COLLATE "C", chunk_start COLLATE "C", idx ON CONFLICT DO NOTHING`
	createStaging := "CREATE TEMP TABLE staging (LIKE " + table + ") ON COMMIT DROP"
	handler := pipeline.BatchHandlerFunc[row](func(ctx context.Context, ms []pipeline.Message[row], _ pipeline.BatchInfo) error {
		// The idempotent sinks insert in source-position order, as examples/postgres does, so
		// that concurrent writers of the same rows never deadlock.
		order := make([]int, len(ms))
		for i := range order {
			order[i] = i
		}
		if kind == sinkStaging || kind == sinkOptimistic {
			slices.SortFunc(order, func(a, b int) int { return comparePosition(&ms[a].Data, &ms[b].Data) })
		}
		src := pgx.CopyFromSlice(len(ms), func(i int) ([]any, error) { return ms[order[i]].Data.values(), nil })
		if kind == sinkUnnest {
			streams, chunks, users, types := make([]string, len(ms)), make([]string, len(ms)), make([]string, len(ms)), make([]string, len(ms))
			idx, ids, amounts := make([]int32, len(ms)), make([]int64, len(ms)), make([]float64, len(ms))
			for i := range ms {
				r := &ms[i].Data
				streams[i], chunks[i], idx[i], ids[i], users[i], types[i], amounts[i] = r.stream, r.chunk, r.idx, r.id, r.user, r.typ, r.amount
			}
			_, err := pool.Exec(ctx, unnest, streams, chunks, idx, ids, users, types, amounts)
			return err
		}
		if kind == sinkCopy || kind == sinkOptimistic {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{table}, columns, src)
			var pe *pgconn.PgError
			if kind == sinkCopy || !errors.As(err, &pe) || pe.Code != "23505" {
				return err
			}
			// Some rows are there already: a redelivered batch. The COPY changed nothing;
			// go through staging and insert what is missing.
			src = pgx.CopyFromSlice(len(ms), func(i int) ([]any, error) { return ms[order[i]].Data.values(), nil })
		}
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, createStaging); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staging"}, columns, src); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, insert)
			return err
		})
	})
	var failed error
	p, err := pipeline.New(pipeline.Options[row]{
		Name: "bench-postgres",
		Producer: producer.Generate(func(i int) (row, bool) {
			if i >= len(rows) {
				return row{}, false
			}
			return rows[i], true
		}, nil),
		Processors: []pipeline.ProcessorOptions[row]{{Concurrency: 2,
			Handler: pipeline.HandlerFunc[row](func(context.Context, *pipeline.Message[row]) error { return nil })}},
		Batchers:       map[string]pipeline.BatcherOptions[row]{"db": {BatchSize: batch, BatchTimeout: time.Second, Concurrency: conc, Handler: handler}},
		DefaultBatcher: "db",
		Failure: pipeline.FailureOptions[row]{Policy: pipeline.FailHalt, Handler: pipeline.FailureHandlerFunc[row](func(_ context.Context, ms []pipeline.Message[row]) error {
			failed = ms[0].Err()
			return nil
		})},
	})
	if err != nil {
		return err
	}
	if err := p.Run(ctx); err != nil {
		if failed != nil {
			return fmt.Errorf("%w (%v)", err, failed)
		}
		return err
	}
	return nil
}

// pgReachable reports whether PostgreSQL answers at dsn.
func pgReachable(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
