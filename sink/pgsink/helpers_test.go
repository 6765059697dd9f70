package pgsink_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// requireEnv makes a missing PostgreSQL a test failure instead of a skip.
const requireEnv = "SLUICE_REQUIRE_POSTGRES"

func dsn() string {
	if d := os.Getenv("SLUICE_PG_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// TestMain skips the examples, which print what PostgreSQL holds, when PostgreSQL is
// unreachable (unless SLUICE_REQUIRE_POSTGRES=1, where they fail instead); the tests skip
// themselves (see testPool).
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(requireEnv) != "1" {
		if err := ping(); err != nil {
			fmt.Fprintf(os.Stderr, "pgsink: PostgreSQL at %s unreachable (%v): examples skipped; set %s=1 to make this a failure\n", dsn(), err, requireEnv)
			skip := flag.Lookup("test.skip")
			if skip.Value.String() == "" {
				_ = skip.Value.Set("^Example")
			}
		}
	}
	os.Exit(m.Run())
}

func ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// testPool connects to the local PostgreSQL, skipping the test when it is unreachable
// (failing it when SLUICE_REQUIRE_POSTGRES=1).
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("PostgreSQL at %s is required (%s=1): %v", dsn(), requireEnv, err)
		}
		t.Skipf("PostgreSQL at %s unreachable (%v); set %s=1 to make this a failure", dsn(), err, requireEnv)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newTable creates a table of a fresh name with the given column definitions, dropped
// when the test ends, and returns its name.
func newTable(t testing.TB, pool *pgxpool.Pool, defs string) string {
	t.Helper()
	name := fmt.Sprintf("pgsink_test_%d", rand.Uint64()%1e12)
	dropLater(t, pool, name)
	if defs != "" {
		exec(t, pool, "CREATE TABLE "+name+" ("+defs+")")
	}
	return name
}

// dropLater drops table when the test ends.
func dropLater(t testing.TB, pool *pgxpool.Pool, table string) {
	t.Cleanup(func() { pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize()) })
}

func exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Event is the test's message data.
type Event struct {
	ID     int64
	User   string
	Amount int64
}

// eventCols are the columns of an event row, and eventTable the definition of a table
// keyed by position holding them.
var eventCols = []string{"id", "user_id", "amount"}

const eventTable = `stream text NOT NULL, position bigint NOT NULL, id bigint NOT NULL, user_id text NOT NULL,
	amount bigint NOT NULL, PRIMARY KEY (stream, position)`

func eventValues(row []any, m *pipeline.Message[Event]) ([]any, error) {
	return append(row, m.Data.ID, m.Data.User, m.Data.Amount), nil
}

// event returns the event at position pos of stream: its id is pos.
func event(stream string, pos int64) pipeline.Message[Event] {
	m := pipeline.NewMessage(Event{ID: pos, User: fmt.Sprintf("u%d", pos%7), Amount: pos%100 + 1}, nil, ack.Ref{N: uint64(pos)})
	m.Metadata = pipeline.Metadata{Stream: stream, Position: pos}
	return m
}

// events returns the events at positions [from, to) of stream.
func events(stream string, from, to int64) []pipeline.Message[Event] {
	out := make([]pipeline.Message[Event], 0, to-from)
	for p := from; p < to; p++ {
		out = append(out, event(stream, p))
	}
	return out
}

// handle hands batch to h, as a batch processor would, and fails the test on an error.
func handle(t testing.TB, h pipeline.BatchHandler[Event], batch []pipeline.Message[Event]) {
	t.Helper()
	if err := h.HandleBatch(context.Background(), batch, pipeline.BatchInfo{Size: len(batch)}); err != nil {
		t.Fatalf("HandleBatch of %d: %v", len(batch), err)
	}
	for i := range batch {
		if batch[i].Failed() {
			t.Fatalf("message at position %d failed: %v", batch[i].Metadata.Position, batch[i].Err())
		}
	}
}

// copyBatch returns a fresh copy of msgs, as a redelivery would bring them.
func copyBatch(msgs []pipeline.Message[Event]) []pipeline.Message[Event] {
	return append([]pipeline.Message[Event](nil), msgs...)
}

// shuffled returns msgs in a random order.
func shuffled(msgs []pipeline.Message[Event]) []pipeline.Message[Event] {
	out := copyBatch(msgs)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// permanent reports whether the pipeline takes err for bad data.
func permanent(err error) bool { return pipeline.IsPermanent(err) }
