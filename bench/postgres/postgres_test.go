package main

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgReachable(context.Background(), defaultDSN())
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// A small run of every variant passes its checks.
func TestVariantsWriteEveryRow(t *testing.T) {
	pool := testPool(t)
	res, err := measure(context.Background(), pool, config{n: 3000, rounds: 1, batch: 500, conc: 2}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.rate <= 0 {
			t.Fatalf("%s: no valid run", r.name)
		}
	}
}

// The InsertOnce pipeline writes a redelivered stream once: a second and a third run over
// the same rows (and more) change nothing that is there.
func TestInsertOnceRedelivery(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	const table = "sluice_bench_pg_redelivery"
	drop(ctx, pool, table)
	if err := createKeyed(ctx, pool, table, 0); err != nil {
		t.Fatal(err)
	}
	defer drop(ctx, pool, table)
	rows := make([]row, 2000)
	for i := range rows {
		rows[i] = rowAt(i)
	}
	cfg := config{batch: 400, conc: 2}
	for range 2 {
		if err := insertOnce(ctx, pool, table, rows[:1500], cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := insertOnce(ctx, pool, table, rows, cfg); err != nil {
		t.Fatal(err)
	}
	if err := checkKeyed(ctx, pool, table, len(rows)); err != nil {
		t.Fatal(err)
	}
}
