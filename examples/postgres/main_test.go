package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

func testDSN(t *testing.T) string {
	dsn := os.Getenv("SLUICE_PG_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err == nil {
		err = pool.Ping(ctx)
		pool.Close()
	}
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	return dsn
}

func count(t *testing.T, dsn, table string) (rows, distinct int64) {
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.QueryRow(context.Background(), fmt.Sprintf("SELECT count(*), count(DISTINCT id) FROM %s", table)).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// A run writes every event once and sends the bad one (no user) to the failure handler; a
// second run resumes at the checkpoint and reads nothing; a run under another name re-reads
// everything and, through the redelivery path, inserts nothing.
func TestStreamToPostgres(t *testing.T) {
	dsn := testDSN(t)
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 64 << 10})
	const n = 12_000
	url := srv.StreamURL("events")
	if err := writeSample(context.Background(), url, n); err != nil {
		t.Fatal(err)
	}
	if _, err := dsclient.NewStream(url).AppendJSON(context.Background(), Event{ID: n, Type: "purchase"}, dsclient.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("pg_example_test_%d", rand.Uint32())
	name := table + "-pipeline"
	t.Cleanup(func() {
		pool, err := pgxpool.New(context.Background(), dsn)
		if err == nil {
			pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
			pool.Exec(context.Background(), "DELETE FROM sluice_checkpoints WHERE pipeline LIKE $1", table+"%")
			pool.Close()
		}
	})
	cfg := Config{DSN: dsn, URL: url, Name: name, Table: table, BatchSize: 700, Concurrency: 2}

	res, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Read != n+1 || res.Inserted != n || res.Fallbacks != 0 || res.BadData != 1 {
		t.Fatalf("first run: %+v, want %d read, %d inserted, 1 bad", res, n+1, n)
	}
	if rows, distinct := count(t, dsn, table); rows != n || distinct != n {
		t.Fatalf("table: %d rows, %d distinct ids; want %d", rows, distinct, n)
	}

	res, err = run(context.Background(), cfg, io.Discard)
	if err != nil || res.Read != 0 || res.Inserted != 0 {
		t.Fatalf("second run from the checkpoint: %+v, %v; want nothing read", res, err)
	}

	c := cfg
	c.Name = name + "-again"
	res, err = run(context.Background(), c, io.Discard)
	if err != nil || res.Read != n+1 || res.Inserted != 0 || res.Fallbacks == 0 {
		t.Fatalf("re-read: %+v, %v; want %d read, none inserted, through the redelivery path", res, err, n+1)
	}
	if rows, _ := count(t, dsn, table); rows != n {
		t.Fatalf("after the re-read: %d rows, want %d", rows, n)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := run(context.Background(), Config{Table: "x;drop", BatchSize: 1, Concurrency: 1}, io.Discard); err == nil {
		t.Fatal("a bad table name was accepted")
	}
	if _, err := run(context.Background(), Config{Table: "x", BatchSize: 0, Concurrency: 1}, io.Discard); err == nil {
		t.Fatal("batch 0 was accepted")
	}
}

// Two pipelines (two names, so two checkpoints) read the same stream into the same table at
// the same time, as an old deployment still running beside its replacement would: both
// finish, and every event is in the table once.
func TestTwoPipelinesAtOnce(t *testing.T) {
	dsn := testDSN(t)
	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 16 << 10})
	const n = 20_000
	url := srv.StreamURL("events")
	if err := writeSample(context.Background(), url, n); err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("pg_example_test_%d", rand.Uint32())
	t.Cleanup(func() {
		pool, err := pgxpool.New(context.Background(), dsn)
		if err == nil {
			pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
			pool.Exec(context.Background(), "DELETE FROM sluice_checkpoints WHERE pipeline LIKE $1", table+"%")
			pool.Close()
		}
	})
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 2)
	for i := range 2 {
		cfg := Config{DSN: dsn, URL: url, Name: fmt.Sprintf("%s-%d", table, i), Table: table, BatchSize: 300, Concurrency: 3}
		go func() {
			res, err := run(context.Background(), cfg, io.Discard)
			done <- outcome{res, err}
		}()
	}
	var inserted int64
	for _, o := range []outcome{<-done, <-done} {
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.Read != n {
			t.Fatalf("a pipeline read %d events, want %d", o.res.Read, n)
		}
		inserted += o.res.Inserted
	}
	if rows, distinct := count(t, dsn, table); rows != n || distinct != n || inserted != n {
		t.Fatalf("table: %d rows, %d distinct ids, %d inserted by the two; want %d", rows, distinct, inserted, n)
	}
}
