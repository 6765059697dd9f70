package main

import (
	"context"
	"os"
	"testing"
)

// A small run of every variant passes its row-count and sum checks.
func TestVariantsWriteEveryRow(t *testing.T) {
	pool, err := pgReachable(context.Background(), defaultDSN())
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	defer pool.Close()
	res, err := measure(context.Background(), pool, 3000, 1, 500, 2, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.rate <= 0 {
			t.Fatalf("%s: no valid run", r.name)
		}
	}
}

// The optimistic sink writes a redelivered batch once: the second delivery of the same rows
// falls back to insert-if-absent and changes nothing.
func TestOptimisticSinkRedelivery(t *testing.T) {
	pool, err := pgReachable(context.Background(), defaultDSN())
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	defer pool.Close()
	ctx := context.Background()
	const table = "sluice_bench_pg_redelivery"
	if err := freshTable(ctx, pool, table); err != nil {
		t.Fatal(err)
	}
	defer pool.Exec(ctx, "DROP TABLE IF EXISTS "+table)
	rows := make([]row, 2000)
	for i := range rows {
		rows[i] = rowAt(i)
	}
	for range 2 {
		if err := viaPipeline(ctx, pool, table, rows[:1500], 400, 2, sinkOptimistic); err != nil {
			t.Fatal(err)
		}
	}
	if err := viaPipeline(ctx, pool, table, rows, 400, 2, sinkOptimistic); err != nil {
		t.Fatal(err)
	}
	if err := check(ctx, pool, table, len(rows)); err != nil {
		t.Fatal(err)
	}
}
