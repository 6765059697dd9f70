package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/killtest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// The crash test: a child process (this test binary, re-run as TestCrashChild) runs a
// pipeline from a durable stream into PostgreSQL, with rows keyed by the messages' stable
// positions (stream, position; insert-if-absent) and the PostgreSQL checkpoint store. The
// stream's 60,000 events come back in one response (the in-process server without a chunk
// cap), so that the committed position can only advance inside that response. The parent
// SIGKILLs the child 1 to 2 s after its first batch is written, at least 30 times, and checks after each kill that the
// saved checkpoint advanced and is never ahead of the rows; a last run goes to the end. Every
// event must then be in the table exactly once, at its own position.

const crashChildEnv = "SLUICE_CRASH_CHILD"

type crashEvent struct {
	N int    `json:"n"`
	P string `json:"p"`
}

func TestCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) != "1" {
		t.Skip("run by TestCrashKill as a child process")
	}
	slow := os.Getenv("SLUICE_CRASH_FAST") != "1"
	if err := crashChild(context.Background(), os.Getenv("SLUICE_CRASH_URL"), os.Getenv("SLUICE_CRASH_DSN"), os.Getenv("SLUICE_CRASH_TABLE"), slow); err != nil {
		t.Fatal(err)
	}
}

func crashChild(ctx context.Context, streamURL, dsn, table string, slow bool) error {
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
	var firstBatch sync.Once
	insert := fmt.Sprintf(`INSERT INTO %s (stream, position, n)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[]) ON CONFLICT (stream, position) DO NOTHING`, pgx.Identifier{table}.Sanitize())
	pl, err := pipeline.New(pipeline.Options[crashEvent]{
		Name:     "crash",
		Producer: p,
		// A small demand (in flight: 2 × 4 × 16 + 3 × 20 = 188 messages) keeps each Produce
		// call's run, the unit the committed position moves by, well inside one kill cycle.
		Processors: []pipeline.ProcessorOptions[crashEvent]{{Concurrency: 4, MaxDemand: 16,
			Handler: pipeline.HandlerFunc[crashEvent](func(ctx context.Context, m *pipeline.Message[crashEvent]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[crashEvent]{"db": {BatchSize: 20, BatchTimeout: 5 * time.Millisecond, Concurrency: 2,
			Handler: pipeline.BatchHandlerFunc[crashEvent](func(ctx context.Context, ms []pipeline.Message[crashEvent], _ pipeline.BatchInfo) error {
				streams := make([]string, len(ms))
				positions := make([]int64, len(ms))
				ns := make([]int32, len(ms))
				for i := range ms {
					streams[i], positions[i], ns[i] = ms[i].Metadata.Stream, ms[i].Metadata.Position, int32(ms[i].Data.N)
				}
				if _, err := pool.Exec(ctx, insert, streams, positions, ns); err != nil {
					return err
				}
				firstBatch.Do(killtest.Println)
				if slow {
					// A slow sink (about 600 events a second), so that every kill lands
					// mid-run and the backlog outlives thirty of them.
					time.Sleep(time.Duration(50+rand.IntN(20)) * time.Millisecond)
				}
				return nil
			})}},
		DefaultBatcher: "db",
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
	if testing.Short() {
		t.Skip("-short: thirty kill cycles take about a minute (go test without -short runs them)")
	}
	pool := testPool(t)
	ctx := context.Background()
	table := fmt.Sprintf("sluice_crash_%d", rand.Uint32())
	if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (stream text NOT NULL, position bigint NOT NULL, n int NOT NULL, PRIMARY KEY (stream, position))`,
		pgx.Identifier{table}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize())
		pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{table + "_ckpt"}.Sanitize())
	})

	srv := dstest.ForTest(t, dstest.Options{}) // no chunk cap: one response holds the backlog
	s := dsclient.NewStream(srv.StreamURL("crash"), dsclient.WithContentType("application/json"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const n, perAppend = 60000, 10
	batch := make([]crashEvent, 0, perAppend)
	for i := range n {
		batch = append(batch, crashEvent{N: i, P: "crash-test-payload"})
		if len(batch) == perAppend {
			if _, err := dsclient.AppendJSONBatch(ctx, s, batch, dsclient.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}

	child := func(fast bool) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"=1", "SLUICE_CRASH_URL="+s.URL(), "SLUICE_CRASH_DSN="+dsn(), "SLUICE_CRASH_TABLE="+table)
		if fast {
			cmd.Env = append(cmd.Env, "SLUICE_CRASH_FAST=1")
		}
		return cmd
	}
	kills := 0
	last := int64(-1)
	for kills < 30 {
		cmd := child(false)
		exited := killtest.Start(t, cmd, time.Minute)
		select {
		case err := <-exited:
			t.Fatalf("the child finished before it was killed (%v): make the stream longer", err)
		case <-time.After(time.Duration(1000+rand.IntN(1000)) * time.Millisecond):
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
		seq := checkNotAhead(t, pool, table, s, kills)
		if seq <= last {
			t.Fatalf("kill %d: the checkpoint did not advance during the cycle (%d, then %d): no progress under rolling restarts", kills, last, seq)
		}
		last = seq
	}
	cmd := child(true)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	var rows, distinct, minN, maxN, misplaced int
	if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), count(DISTINCT n), min(n), max(n), count(*) FILTER (WHERE position <> n) FROM %s`,
		pgx.Identifier{table}.Sanitize())).Scan(&rows, &distinct, &minN, &maxN, &misplaced); err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n || minN != 0 || maxN != n-1 || misplaced != 0 {
		t.Fatalf("after %d kills: %d rows, %d distinct events, range %d..%d, %d not at their position; want %d exactly once",
			kills, rows, distinct, minN, maxN, misplaced, n)
	}
	if seq := checkNotAhead(t, pool, table, s, kills); seq != n {
		t.Fatalf("final checkpoint at position %d, want %d", seq, n)
	}
}

// checkNotAhead fails if an event before the saved checkpoint is missing from the table, and
// returns the checkpoint's position number (-1 when none is saved).
func checkNotAhead(t *testing.T, pool *pgxpool.Pool, table string, s *dsclient.Stream, kill int) int64 {
	t.Helper()
	ctx := context.Background()
	store, err := pgstore.New(ctx, pool, pgstore.Options{Table: table + "_ckpt"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	saved, found, err := store.Load(ctx, ack.CheckpointKey("crash", u.Path))
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Logf("kill %d: no checkpoint yet", kill)
		return -1
	}
	pos, err := ack.ParsePosition(saved)
	if err != nil {
		t.Fatal(err)
	}
	var missing, rows int
	if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT $1::bigint - count(*) FILTER (WHERE n < $1), count(*) FROM %s`,
		pgx.Identifier{table}.Sanitize()), pos.Seq).Scan(&missing, &rows); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Fatalf("kill %d: checkpoint %q is ahead of the rows: %d of the %d events before it are missing", kill, saved, missing, pos.Seq)
	}
	t.Logf("kill %d: checkpoint %q covers %d events, table has %d", kill, saved, pos.Seq, rows)
	return pos.Seq
}
