// Command postgres compares writing the same rows to PostgreSQL through a Sluice pipeline
// into the sink/pgsink modes with one bare pgx CopyFrom:
//
//	cd bench && go run ./postgres [-n 1000000] [-rounds 3] [-dsn postgres://...]
//
// Every variant gets the same n rows, (stream, position, id, user, type, amount) with
// positions 0 to n-1 of one stream, in a fresh table, and the variants run in an order that
// alternates from round to round:
//
//   - bare CopyFrom: one pgx CopyFrom of every row, on one connection, into a table keyed
//     by (stream, position): the limit.
//   - pgsink InsertOnce: a pipeline (a producer of the rows with their stream and position,
//     2 processors, a batcher of 10,000 rows with 2 batch processors) into pgsink's
//     InsertOnce sink, keyed by position, into the same table: COPY per batch.
//   - pgsink InsertOnce, every batch redelivered: the same, into a table that holds one row
//     of every 5,000 already, so that every batch's COPY meets a row there and the batch
//     goes through staging and INSERT … ON CONFLICT DO NOTHING: the cost of a redelivery.
//   - pgsink InsertOnce, a replay: the same, into a table that holds every row already, as
//     after a crash that lost the checkpoint: every batch's COPY fails at its first row, and
//     staging finds every row there.
//   - pgsink Upsert: the same pipeline into the Upsert sink (key id, versioned by position)
//     of a table keyed by id: staging and INSERT … ON CONFLICT DO UPDATE per batch.
//   - pgsink ApplyOnce: the same pipeline into the ApplyOnce sink, whose Apply adds each
//     batch's per-user amounts to a totals table; the applied table records every
//     position.
//   - sluice, plain COPY per batch: the same pipeline whose handler is a bare CopyFrom of the
//     batch (not idempotent): the pipeline's own cost.
//
// Every run checks what it wrote (row counts and sums); a run that fails its check is
// INVALID and left out of the medians. Besides rows/s and the ratio to the same round's bare
// CopyFrom, the table gives the program's own CPU time per row (the client side; PostgreSQL's
// is not counted), which holds steadier than elapsed times on a shared machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/pgsink"
)

func main() {
	n := flag.Int("n", 1_000_000, "rows per run")
	rounds := flag.Int("rounds", 3, "rounds; the order of the variants alternates")
	dsn := flag.String("dsn", defaultDSN(), "PostgreSQL connection string")
	batch := flag.Int("batch", 10000, "the pipeline's batch size")
	conc := flag.Int("concurrency", 2, "the pipeline's batch processors")
	only := flag.String("variants", "", "comma-separated variants to run, of bare, insert, redelivered, replay, upsert, apply, plain (default: all)")
	flag.Parse()
	cfg := config{n: *n, rounds: *rounds, batch: *batch, conc: *conc}
	if *only != "" {
		cfg.only = map[string]bool{}
		for _, k := range strings.Split(*only, ",") {
			if !slices.ContainsFunc(variants, func(v variant) bool { return v.key == k }) {
				log.Fatalf("-variants: no variant %q", k)
			}
			cfg.only[k] = true
		}
	}
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
	res, err := measure(ctx, pool, cfg, func(s string) { fmt.Println(s) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	fmt.Printf("%-46s %12s %8s %14s\n", "variant", "rows/s", "x bare", "µs CPU/row")
	for _, r := range res {
		if r.rate > 0 {
			fmt.Printf("%-46s %12.0f %7.2fx %14.2f\n", r.name, r.rate, r.ratio, r.cpu)
		}
	}
	fmt.Println("target: pgsink InsertOnce >= 0.85x the bare CopyFrom")
}

func defaultDSN() string {
	if d := os.Getenv("SLUICE_PG_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

type config struct {
	n, rounds, batch, conc int
	only                   map[string]bool // the variants to run, by key; nil: all
}

// row is one event's fields; its position is its index.
type row struct {
	id     int64
	user   string
	typ    string
	amount float64
}

const stream = "/v1/stream/bench-orders"

// rowAt returns row i.
func rowAt(i int) row {
	return row{id: int64(i), user: fmt.Sprintf("u%d", i%300), typ: "purchase", amount: float64(i%100) + 0.5}
}

// keyed is the table every InsertOnce variant and the bare CopyFrom write.
const keyed = `stream text NOT NULL, position bigint NOT NULL, id bigint NOT NULL, user_id text NOT NULL,
	type text NOT NULL, amount double precision NOT NULL, PRIMARY KEY (stream, position)`

var keyedColumns = []string{"stream", "position", "id", "user_id", "type", "amount"}

// variant is one way of writing the rows: setup prepares table (fresh, empty) untimed, run
// writes the rows, check verifies the result.
type variant struct {
	key   string // its name for -variants
	name  string
	setup func(ctx context.Context, pool *pgxpool.Pool, table string, n int) error
	run   func(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, cfg config) error
	check func(ctx context.Context, pool *pgxpool.Pool, table string, n int) error
}

var variants = []variant{
	{"bare", "bare CopyFrom", createKeyed, bareCopy, checkKeyed},
	{"insert", "pgsink InsertOnce", createKeyed, insertOnce, checkKeyed},
	{"redelivered", "pgsink InsertOnce, every batch redelivered", func(ctx context.Context, pool *pgxpool.Pool, table string, n int) error {
		if err := createKeyed(ctx, pool, table, n); err != nil {
			return err
		}
		_, err := pool.Exec(ctx, `INSERT INTO `+table+` SELECT $1, p, p, 'u' || (p % 300), 'purchase', (p % 100) + 0.5
			FROM generate_series(0, $2::bigint - 1, 5000) AS p`, stream, n)
		return err
	}, insertOnce, checkKeyed},
	{"replay", "pgsink InsertOnce, a replay (every row there)", func(ctx context.Context, pool *pgxpool.Pool, table string, n int) error {
		if err := createKeyed(ctx, pool, table, n); err != nil {
			return err
		}
		_, err := pool.Exec(ctx, `INSERT INTO `+table+` SELECT $1, p, p, 'u' || (p % 300), 'purchase', (p % 100) + 0.5
			FROM generate_series(0, $2::bigint - 1) AS p`, stream, n)
		return err
	}, insertOnce, checkKeyed},
	{"upsert", "pgsink Upsert", func(ctx context.Context, pool *pgxpool.Pool, table string, _ int) error {
		return create(ctx, pool, table, `id bigint PRIMARY KEY, user_id text NOT NULL, type text NOT NULL,
			amount double precision NOT NULL, position bigint NOT NULL`)
	}, upsert, checkUpsert},
	{"apply", "pgsink ApplyOnce", func(ctx context.Context, pool *pgxpool.Pool, table string, _ int) error {
		return create(ctx, pool, table+"_totals", "user_id text PRIMARY KEY, total double precision NOT NULL, n bigint NOT NULL")
	}, applyOnce, checkApplyOnce},
	{"plain", "sluice, plain COPY per batch", createKeyed, plainCopy, checkKeyed},
}

type result struct {
	name        string
	rate, ratio float64
	cpu         float64 // the program's CPU time per row, in µs: the client side's cost, whatever the load
}

// measure runs every variant cfg.rounds times and returns medians of rows/s and of the
// ratio to the bare CopyFrom of the same round.
func measure(ctx context.Context, pool *pgxpool.Pool, cfg config, logf func(string)) ([]result, error) {
	rows := make([]row, cfg.n)
	for i := range rows {
		rows[i] = rowAt(i)
	}
	rates := make([][]float64, len(variants))
	ratios := make([][]float64, len(variants))
	cpus := make([][]float64, len(variants))
	for r := range cfg.rounds {
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
			if cfg.only != nil && !cfg.only[v.key] {
				continue
			}
			table := fmt.Sprintf("sluice_bench_pg_%d", vi)
			drop(ctx, pool, table)
			err := v.setup(ctx, pool, table, cfg.n)
			var el, cpu time.Duration
			if err == nil {
				t0, c0 := time.Now(), cpuTime()
				err = v.run(ctx, pool, table, rows, cfg)
				el, cpu = time.Since(t0), cpuTime()-c0
			}
			if err == nil {
				err = v.check(ctx, pool, table, cfg.n)
			}
			drop(ctx, pool, table)
			if err != nil {
				logf(fmt.Sprintf("round %d/%d %-46s INVALID: %v", r+1, cfg.rounds, v.name, err))
				continue
			}
			got[vi] = float64(cfg.n) / el.Seconds()
			cpus[vi] = append(cpus[vi], float64(cpu.Microseconds())/float64(cfg.n))
			logf(fmt.Sprintf("round %d/%d %-46s %10.0f rows/s %6.2f µs CPU/row", r+1, cfg.rounds, v.name, got[vi], cpus[vi][len(cpus[vi])-1]))
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
		out[vi] = result{name: v.name, rate: dsload.Median(rates[vi]), ratio: dsload.Median(ratios[vi]), cpu: dsload.Median(cpus[vi])}
	}
	return out, nil
}

func create(ctx context.Context, pool *pgxpool.Pool, table, defs string) error {
	_, err := pool.Exec(ctx, "CREATE TABLE "+table+" ("+defs+")")
	return err
}

func createKeyed(ctx context.Context, pool *pgxpool.Pool, table string, _ int) error {
	return create(ctx, pool, table, keyed)
}

// drop drops table and the tables the variants make beside it.
func drop(ctx context.Context, pool *pgxpool.Pool, table string) {
	pool.Exec(ctx, "DROP TABLE IF EXISTS "+table+", "+table+"_totals")
}

// checkKeyed checks that table holds rows 0 to n-1, each once, at its position.
func checkKeyed(ctx context.Context, pool *pgxpool.Pool, table string, n int) error {
	var count, sum, misplaced int64
	if err := pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(id), 0), count(*) FILTER (WHERE id <> position OR stream <> $1) FROM "+table,
		stream).Scan(&count, &sum, &misplaced); err != nil {
		return err
	}
	if count != int64(n) || sum != int64(n)*int64(n-1)/2 || misplaced != 0 {
		return fmt.Errorf("%d rows with id sum %d (%d misplaced), want %d rows with sum %d", count, sum, misplaced, n, int64(n)*int64(n-1)/2)
	}
	return nil
}

func checkUpsert(ctx context.Context, pool *pgxpool.Pool, table string, n int) error {
	var count, sum, stale int64
	if err := pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(id), 0), count(*) FILTER (WHERE position <> id) FROM "+table).Scan(&count, &sum, &stale); err != nil {
		return err
	}
	if count != int64(n) || sum != int64(n)*int64(n-1)/2 || stale != 0 {
		return fmt.Errorf("%d rows with id sum %d (%d stale), want %d rows with sum %d", count, sum, stale, n, int64(n)*int64(n-1)/2)
	}
	return nil
}

func checkApplyOnce(ctx context.Context, pool *pgxpool.Pool, table string, n int) error {
	var applied, counted int64
	var total float64
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+table+"), sum(n), sum(total) FROM "+table+"_totals").Scan(&applied, &counted, &total); err != nil {
		return err
	}
	var want float64
	for i := range n {
		want += rowAt(i).amount
	}
	if applied != int64(n) || counted != int64(n) || total != want {
		return fmt.Errorf("%d keys applied, %d counted, total %.1f; want %d, %d, %.1f", applied, counted, total, n, n, want)
	}
	return nil
}

func bareCopy(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, _ config) error {
	_, err := pool.CopyFrom(ctx, pgx.Identifier{table}, keyedColumns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		return []any{stream, int64(i), r.id, r.user, r.typ, r.amount}, nil
	}))
	return err
}

// values is the sinks' ValuesFunc: the columns after stream and position, which the sink
// fills itself.
func values(dst []any, m *pipeline.Message[row]) ([]any, error) {
	return append(dst, m.Data.id, m.Data.user, m.Data.typ, m.Data.amount), nil
}

func insertOnce(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, cfg config) error {
	sink, err := pgsink.New(pgsink.Options[row]{DB: pool, Table: table, Columns: []string{"id", "user_id", "type", "amount"}, Values: values})
	if err != nil {
		return err
	}
	return viaPipeline(ctx, rows, cfg, sink)
}

func upsert(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, cfg config) error {
	sink, err := pgsink.New(pgsink.Options[row]{DB: pool, Mode: pgsink.Upsert, Table: table,
		Columns: []string{"id", "user_id", "type", "amount"}, Key: []string{"id"}, Values: values})
	if err != nil {
		return err
	}
	return viaPipeline(ctx, rows, cfg, sink)
}

func applyOnce(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, cfg config) error {
	totals := pgx.Identifier{table + "_totals"}.Sanitize()
	sink, err := pgsink.New(pgsink.Options[row]{DB: pool, Mode: pgsink.ApplyOnce, Table: table,
		Columns: []string{"user_id", "amount"}, ColumnTypes: []string{"text", "double precision"},
		Values: func(dst []any, m *pipeline.Message[row]) ([]any, error) {
			return append(dst, m.Data.user, m.Data.amount), nil
		},
		Apply: func(ctx context.Context, tx pgx.Tx, fresh pgsink.Fresh[row]) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+totals+` AS t (user_id, total, n)
				SELECT user_id, sum(amount), count(*) FROM `+fresh.Table+` GROUP BY user_id ORDER BY user_id
				ON CONFLICT (user_id) DO UPDATE SET total = t.total + EXCLUDED.total, n = t.n + EXCLUDED.n`)
			return err
		}})
	if err != nil {
		return err
	}
	return viaPipeline(ctx, rows, cfg, sink)
}

func plainCopy(ctx context.Context, pool *pgxpool.Pool, table string, rows []row, cfg config) error {
	return viaPipeline(ctx, rows, cfg, pipeline.BatchHandlerFunc[row](func(ctx context.Context, ms []pipeline.Message[row], _ pipeline.BatchInfo) error {
		_, err := pool.CopyFrom(ctx, pgx.Identifier{table}, keyedColumns, pgx.CopyFromSlice(len(ms), func(i int) ([]any, error) {
			m := &ms[i]
			return []any{m.Metadata.Stream, m.Metadata.Position, m.Data.id, m.Data.user, m.Data.typ, m.Data.amount}, nil
		}))
		return err
	}))
}

// producer produces rows with their stream and position, as the Durable Streams producer
// does.
type producer struct {
	mu   sync.Mutex
	rows []row
	next int
}

func (p *producer) Produce(_ context.Context, msgs []pipeline.Message[row]) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(msgs) && p.next < len(p.rows) {
		msgs[n].Data = p.rows[p.next]
		msgs[n].Metadata = pipeline.Metadata{Stream: stream, Position: int64(p.next)}
		p.next++
		n++
	}
	if p.next == len(p.rows) {
		return n, pipeline.ErrEndOfInput
	}
	return n, nil
}

func viaPipeline(ctx context.Context, rows []row, cfg config, handler pipeline.BatchHandler[row]) error {
	var failed error
	p, err := pipeline.New(pipeline.Options[row]{
		Name:     "bench-postgres",
		Producer: &producer{rows: rows},
		Processors: []pipeline.ProcessorOptions[row]{{Concurrency: 2,
			Handler: pipeline.HandlerFunc[row](func(context.Context, *pipeline.Message[row]) error { return nil })}},
		Batchers:       map[string]pipeline.BatcherOptions[row]{"db": {BatchSize: cfg.batch, BatchTimeout: time.Second, Concurrency: cfg.conc, Handler: handler}},
		DefaultBatcher: "db",
		Failure: pipeline.FailureOptions[row]{Policy: pipeline.HaltOnFailure, Handler: pipeline.FailureHandlerFunc[row](func(_ context.Context, ms []pipeline.Message[row]) error {
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

// cpuTime returns the CPU time the program has used (user and system): the client side of a
// run, which other load on the machine does not inflate as it does the elapsed time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
