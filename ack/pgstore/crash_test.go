package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// The crash test: a child process (this test binary, re-run as TestCrashChild) runs a
// pipeline from a durable stream into PostgreSQL, with rows keyed by source position
// (chunk offset, index; insert-if-absent) and the PostgreSQL checkpoint store. The parent
// SIGKILLs it at random moments, checks after each kill that the saved checkpoint is never
// ahead of the rows, and restarts it; a last run goes to the end. Every event must then be in
// the table exactly once.

const crashChildEnv = "SLUICE_CRASH_CHILD"

type crashEvent struct {
	N int    `json:"n"`
	P string `json:"p"`
}

func TestCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) != "1" {
		t.Skip("run by TestCrashKill as a child process")
	}
	if err := crashChild(context.Background(), os.Getenv("SLUICE_CRASH_URL"), os.Getenv("SLUICE_CRASH_DSN"), os.Getenv("SLUICE_CRASH_TABLE")); err != nil {
		t.Fatal(err)
	}
}

func crashChild(ctx context.Context, streamURL, dsn, table string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool, pgstore.Options{Table: table + "_ckpt"})
	if err != nil {
		return err
	}
	p, err := ds.NewProducer(ds.ProducerOptions[crashEvent]{
		Stream:             dsclient.NewStream(streamURL),
		Name:               "crash",
		Checkpoints:        store,
		CheckpointInterval: 10 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	insert := fmt.Sprintf(`INSERT INTO %s (chunk_start, idx, n)
		SELECT * FROM unnest($1::text[], $2::int[], $3::int[]) ON CONFLICT (chunk_start, idx) DO NOTHING`, pgx.Identifier{table}.Sanitize())
	pl, err := pipeline.New(pipeline.Options[crashEvent]{
		Name:     "crash",
		Producer: p,
		Processors: []pipeline.ProcessorOptions[crashEvent]{{Concurrency: 4,
			Handler: pipeline.HandlerFunc[crashEvent](func(ctx context.Context, m *pipeline.Message[crashEvent]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[crashEvent]{"db": {BatchSize: 20, BatchTimeout: 5 * time.Millisecond, Concurrency: 2,
			Handler: pipeline.BatchHandlerFunc[crashEvent](func(ctx context.Context, ms []pipeline.Message[crashEvent], _ pipeline.BatchInfo) error {
				starts := make([]string, len(ms))
				idx := make([]int32, len(ms))
				ns := make([]int32, len(ms))
				for i := range ms {
					starts[i], idx[i], ns[i] = ms[i].Metadata.Stream, int32(ms[i].Metadata.Position), int32(ms[i].Data.N)
				}
				if _, err := pool.Exec(ctx, insert, starts, idx, ns); err != nil {
					return err
				}
				time.Sleep(time.Duration(2+rand.IntN(6)) * time.Millisecond) // a slow sink, so that kills land mid-run
				return nil
			})}},
		DefaultBatcher: "db",
		Failure:        pipeline.FailureOptions[crashEvent]{Policy: pipeline.FailHalt},
	})
	if err != nil {
		return err
	}
	return pl.Run(ctx)
}

func TestCrashKill(t *testing.T) {
	if os.Getenv(crashChildEnv) == "1" {
		t.Skip("child")
	}
	pool := testPool(t)
	ctx := context.Background()
	table := fmt.Sprintf("sluice_crash_%d", rand.Uint32())
	if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (chunk_start text COLLATE "C" NOT NULL, idx int NOT NULL, n int NOT NULL, PRIMARY KEY (chunk_start, idx))`,
		pgx.Identifier{table}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize())
		pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{table + "_ckpt"}.Sanitize())
	})

	srv := dstest.ForTest(t, dstest.Options{MaxChunkBytes: 4 << 10})
	s := dsclient.NewStream(srv.StreamURL("crash"), dsclient.WithContentType("application/json"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const n, perAppend = 80000, 10
	after := make([]dsclient.Offset, n) // the offset after each event's append
	batch := make([]crashEvent, 0, perAppend)
	for i := range n {
		batch = append(batch, crashEvent{N: i, P: "crash-test-payload"})
		if len(batch) == perAppend {
			res, err := dsclient.AppendJSONBatch(ctx, s, batch, dsclient.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for j := i + 1 - perAppend; j <= i; j++ {
				after[j] = res.NextOffset
			}
			batch = batch[:0]
		}
	}

	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"=1", "SLUICE_CRASH_URL="+s.URL(), "SLUICE_CRASH_DSN="+dsn(), "SLUICE_CRASH_TABLE="+table)
		return cmd
	}
	kills := 0
	for kills < 10 {
		cmd := child()
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			t.Fatalf("the child finished before it was killed (%v): make the stream longer", err)
		case <-time.After(time.Duration(150+rand.IntN(600)) * time.Millisecond):
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := <-exited
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, not by SIGKILL", err)
		}
		kills++
		checkNotAhead(t, pool, table, s.URL(), after, kills)
	}
	cmd := child()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	var rows, distinct, minN, maxN int
	if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), count(DISTINCT n), min(n), max(n) FROM %s`, pgx.Identifier{table}.Sanitize())).Scan(&rows, &distinct, &minN, &maxN); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n || minN != 0 || maxN != n-1 {
		t.Fatalf("after %d kills: %d rows, %d distinct events, range %d..%d; want %d exactly once", kills, rows, distinct, minN, maxN, n)
	}
	checkNotAhead(t, pool, table, s.URL(), after, kills)
}

// checkNotAhead fails if an event before the saved checkpoint is missing from the table.
func checkNotAhead(t *testing.T, pool *pgxpool.Pool, table, streamURL string, after []dsclient.Offset, kill int) {
	t.Helper()
	ctx := context.Background()
	store, err := pgstore.New(ctx, pool, pgstore.Options{Table: table + "_ckpt"})
	if err != nil {
		t.Fatal(err)
	}
	saved, _, err := store.Load(ctx, ack.CheckpointKey("crash", streamURL))
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]bool{}
	rows, err := pool.Query(ctx, fmt.Sprintf("SELECT n FROM %s", pgx.Identifier{table}.Sanitize()))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		rows.Scan(&v)
		have[v] = true
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	covered := 0
	for i, off := range after {
		if saved != "" && off <= dsclient.Offset(saved) {
			covered++
			if !have[i] {
				t.Fatalf("kill %d: checkpoint %q is ahead of the rows: event %d (offset %q) is missing", kill, saved, i, off)
			}
		}
	}
	t.Logf("kill %d: checkpoint covers %d events, table has %d", kill, covered, len(have))
}
