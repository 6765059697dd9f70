package pgsink_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/pgsink"
)

// Order is the examples' message data.
type Order struct {
	ID       int64
	Customer string
	Status   string
	Amount   int64
	Day      time.Time
}

// delivery returns the orders at positions [from, to) of a stream, as the Durable Streams
// producer delivers them: each message carries its stream and its stable position. Order
// i has status "paid" from position 100 on.
func delivery(from, to int64) []pipeline.Message[Order] {
	var out []pipeline.Message[Order]
	for pos := from; pos < to; pos++ {
		o := Order{ID: pos % 100, Customer: fmt.Sprintf("c%d", pos%3), Status: "new", Amount: 10 * (pos%100 + 1),
			Day: time.Date(2026, 3, 1+int(pos%2), 0, 0, 0, 0, time.UTC)}
		if pos >= 100 {
			o.Status = "paid"
		}
		m := pipeline.NewMessage(o, nil, ack.Ref{N: uint64(pos)})
		m.Metadata = pipeline.Metadata{Stream: "/v1/stream/orders", Position: pos}
		out = append(out, m)
	}
	return out
}

// exampleTable creates a table of the examples (its name made unique to this process) and
// returns its name and a function that drops it.
func exampleTable(ctx context.Context, pool *pgxpool.Pool, name, defs string) (string, func()) {
	name = fmt.Sprintf("%s_%d", name, os.Getpid())
	if defs != "" {
		if _, err := pool.Exec(ctx, "CREATE TABLE "+name+" ("+defs+")"); err != nil {
			log.Fatal(err)
		}
	}
	return name, func() { pool.Exec(ctx, "DROP TABLE IF EXISTS "+name) }
}

// Insert once: each order event becomes a row keyed by its position; a batch delivered
// again, whole or in part, adds nothing.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	table, drop := exampleTable(ctx, pool, "order_events", `stream text NOT NULL, position bigint NOT NULL,
		id bigint NOT NULL, customer text NOT NULL, amount bigint NOT NULL, PRIMARY KEY (stream, position)`)
	defer drop()

	sink, err := pgsink.New(pgsink.Options[Order]{
		DB:      pool,
		Table:   table,
		Columns: []string{"id", "customer", "amount"},
		Values: func(row []any, m *pipeline.Message[Order]) ([]any, error) {
			return append(row, m.Data.ID, m.Data.Customer, m.Data.Amount), nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// In a pipeline: Batchers: {"db": {Handler: sink, BatchSize: 5000, Concurrency: 2}}.
	for _, batch := range [][]pipeline.Message[Order]{delivery(0, 300), delivery(200, 500), delivery(0, 500)} {
		if err := sink.HandleBatch(ctx, batch, pipeline.BatchInfo{}); err != nil {
			log.Fatal(err)
		}
	}
	var rows, sum int64
	if err := pool.QueryRow(ctx, "SELECT count(*), sum(amount) FROM "+table).Scan(&rows, &sum); err != nil {
		log.Fatal(err)
	}
	st := sink.Stats()
	fmt.Printf("%d rows, amounts summing to %d\n", rows, sum)
	fmt.Printf("written %d, skipped %d, through staging %d\n", st.Written, st.Skipped, st.Fallbacks)
	// Output:
	// 500 rows, amounts summing to 252500
	// written 500, skipped 600, through staging 2
}

// Latest state per key: the orders table holds each order's latest status, whatever order
// the batches arrive in.
func ExampleNew_upsert() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	table, drop := exampleTable(ctx, pool, "orders", `id bigint PRIMARY KEY, status text NOT NULL,
		position bigint NOT NULL`)
	defer drop()

	sink, err := pgsink.New(pgsink.Options[Order]{
		DB:      pool,
		Mode:    pgsink.Upsert,
		Table:   table,
		Columns: []string{"id", "status"},
		Key:     []string{"id"},
		// No Version: the message's position orders an order's records.
		Values: func(row []any, m *pipeline.Message[Order]) ([]any, error) {
			return append(row, m.Data.ID, m.Data.Status), nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// The "paid" records (positions 100 to 199) arrive before the "new" ones.
	for _, batch := range [][]pipeline.Message[Order]{delivery(100, 200), delivery(0, 100)} {
		if err := sink.HandleBatch(ctx, batch, pipeline.BatchInfo{}); err != nil {
			log.Fatal(err)
		}
	}
	var status string
	var n int64
	if err := pool.QueryRow(ctx, "SELECT min(status), count(*) FROM "+table).Scan(&status, &n); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d orders, all %s\n", n, status)
	// Output:
	// 100 orders, all paid
}

// Apply once: daily revenue, where a redelivered batch adds nothing. The sink records the
// keys of the messages it applies in the applied table, in the transaction that updates
// the totals.
func ExampleNew_applyOnce() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	revenue, dropRevenue := exampleTable(ctx, pool, "revenue", "day date PRIMARY KEY, total bigint NOT NULL")
	defer dropRevenue()
	applied, dropApplied := exampleTable(ctx, pool, "revenue_applied", "") // created by the sink
	defer dropApplied()

	sink, err := pgsink.New(pgsink.Options[Order]{
		DB:          pool,
		Mode:        pgsink.ApplyOnce,
		Table:       applied,
		Columns:     []string{"day", "amount"},
		ColumnTypes: []string{"date", "bigint"},
		Values: func(row []any, m *pipeline.Message[Order]) ([]any, error) {
			return append(row, m.Data.Day, m.Data.Amount), nil
		},
		Apply: func(ctx context.Context, tx pgx.Tx, fresh pgsink.Fresh[Order]) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+revenue+` AS r (day, total)
				SELECT day, sum(amount) FROM `+fresh.Table+` GROUP BY day ORDER BY day
				ON CONFLICT (day) DO UPDATE SET total = r.total + EXCLUDED.total`)
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, batch := range [][]pipeline.Message[Order]{delivery(0, 100), delivery(50, 150), delivery(0, 100)} {
		if err := sink.HandleBatch(ctx, batch, pipeline.BatchInfo{}); err != nil {
			log.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, "SELECT day, total FROM "+revenue+" ORDER BY day")
	if err != nil {
		log.Fatal(err)
	}
	var day time.Time
	var total int64
	_, err = pgx.ForEachRow(rows, []any{&day, &total}, func() error {
		fmt.Println(day.Format(time.DateOnly), total)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 2026-03-01 31250
	// 2026-03-02 32000
}

// Composing a transaction: the batch's rows and a running count commit together.
func ExampleSink_Write() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	table, drop := exampleTable(ctx, pool, "order_rows", `stream text NOT NULL, position bigint NOT NULL,
		id bigint NOT NULL, PRIMARY KEY (stream, position)`)
	defer drop()
	counts, dropCounts := exampleTable(ctx, pool, "order_counts", "name text PRIMARY KEY, n bigint NOT NULL")
	defer dropCounts()

	sink, err := pgsink.New(pgsink.Options[Order]{
		DB:      pool,
		Table:   table,
		Columns: []string{"id"},
		Values: func(row []any, m *pipeline.Message[Order]) ([]any, error) {
			return append(row, m.Data.ID), nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	handler := pipeline.BatchHandlerFunc[Order](func(ctx context.Context, batch []pipeline.Message[Order], _ pipeline.BatchInfo) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			res, err := sink.Write(ctx, tx, batch)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+counts+` AS c VALUES ('orders', $1)
				ON CONFLICT (name) DO UPDATE SET n = c.n + EXCLUDED.n`, res.Written)
			return err
		})
	})
	for _, batch := range [][]pipeline.Message[Order]{delivery(0, 60), delivery(40, 100)} {
		if err := handler.HandleBatch(ctx, batch, pipeline.BatchInfo{}); err != nil {
			log.Fatal(err)
		}
	}
	var n int64
	if err := pool.QueryRow(ctx, "SELECT n FROM "+counts).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "orders counted once each")
	// Output:
	// 100 orders counted once each
}
