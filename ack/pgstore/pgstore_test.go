package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/acktest"
	"github.com/sluice-go/sluice/ack/pgstore"
)

// RequireEnv makes a missing PostgreSQL a test failure instead of a skip.
const requireEnv = "SLUICE_REQUIRE_POSTGRES"

func dsn() string {
	if d := os.Getenv("SLUICE_PG_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
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

// tempTable returns a fresh table name, dropped when the test ends.
func tempTable(t testing.TB, pool *pgxpool.Pool) string {
	name := fmt.Sprintf("sluice_ckpt_test_%d", rand.Uint64()%1e12)
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	})
	return name
}

func TestCheckpointStoreContract(t *testing.T) {
	pool := testPool(t)
	acktest.TestCheckpointStore(t, func(t *testing.T) ack.CheckpointStore {
		s, err := pgstore.New(context.Background(), pool, pgstore.Options{Table: tempTable(t, pool)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A save never moves an offset backwards, whatever order saves arrive in; a sentinel offset
// is replaced by any real one.
func TestNeverBackwards(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	s, err := pgstore.New(ctx, pool, pgstore.Options{Table: tempTable(t, pool)})
	if err != nil {
		t.Fatal(err)
	}
	key := ack.CheckpointKey("orders", "/v1/stream/orders")
	for _, step := range []struct{ save, want string }{
		{"now", "now"},
		{"0000000000000000_0000000000000010", "0000000000000000_0000000000000010"},
		{"0000000000000000_0000000000000005", "0000000000000000_0000000000000010"},
		{"0000000000000000_0000000000000100", "0000000000000000_0000000000000100"},
		{"-1", "0000000000000000_0000000000000100"},
		{"now", "0000000000000000_0000000000000100"},
		{"0000000000000000_0000000000000099", "0000000000000000_0000000000000100"},
		{"0000000000000001_0000000000000000", "0000000000000001_0000000000000000"},
		// Positions inside the response that starts at that offset.
		{"0000000000000001_0000000000000000,9,109", "0000000000000001_0000000000000000,9,109"},
		{"0000000000000001_0000000000000000,10,110", "0000000000000001_0000000000000000,10,110"},
		{"0000000000000001_0000000000000000,9,109", "0000000000000001_0000000000000000,10,110"},
		{"0000000000000001_0000000000000000", "0000000000000001_0000000000000000,10,110"},
		{"0000000000000000_0000000000000100,5000,5000", "0000000000000001_0000000000000000,10,110"},
		{"now", "0000000000000001_0000000000000000,10,110"},
		{"0000000000000001_0000000000000005", "0000000000000001_0000000000000005"},
	} {
		if err := s.Save(ctx, key, step.save); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Load(ctx, key)
		if err != nil || !ok || got != step.want {
			t.Fatalf("after saving %q: loaded %q (%v, %v), want %q", step.save, got, ok, err, step.want)
		}
	}
	// The row is readable by pipeline name and stream path.
	var off string
	q := fmt.Sprintf(`SELECT "offset" FROM %s WHERE pipeline = $1 AND source = $2`, s.Table())
	if err := pool.QueryRow(ctx, q, "orders", "/v1/stream/orders").Scan(&off); err != nil || off != "0000000000000001_0000000000000005" {
		t.Fatalf("by pipeline and source: %q, %v", off, err)
	}
}

// Rows saved by versions before positions hold bare offsets, and such a version may still
// be saving while a newer one runs (a rolling upgrade). The store reads and orders those rows,
// and the older version's own guard, a byte-wise comparison, does not move a position saved
// in the new form backwards either: ',' sorts before every character of the servers' offsets.
func TestRowsOfOlderVersions(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	s, err := pgstore.New(ctx, pool, pgstore.Options{Table: tempTable(t, pool)})
	if err != nil {
		t.Fatal(err)
	}
	// The statement versions before positions saved with.
	oldSave := `INSERT INTO ` + s.Table() + ` AS t (key, pipeline, source, "offset") VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO UPDATE SET "offset" = EXCLUDED."offset", updated_at = now()
		WHERE t."offset" IN ('-1', 'now')
			OR (EXCLUDED."offset" NOT IN ('-1', 'now') AND t."offset" < EXCLUDED."offset")`
	const key = "orders|/v1/stream/orders"
	old := func(offset string) {
		t.Helper()
		if _, err := pool.Exec(ctx, oldSave, key, "orders", "/v1/stream/orders", offset); err != nil {
			t.Fatal(err)
		}
	}
	load := func(want string) {
		t.Helper()
		if got, found, err := s.Load(ctx, key); err != nil || !found || got != want {
			t.Fatalf("Load = %q, %v, %v; want %q", got, found, err, want)
		}
	}
	save := func(offset string) {
		t.Helper()
		if err := s.Save(ctx, key, offset); err != nil {
			t.Fatal(err)
		}
	}
	const a, b = "0000000000000000_0000000000000010", "0000000000000000_0000000000000020"
	old(a)
	load(a)
	if p, err := ack.ParsePosition(a); err != nil || p != (ack.Position{Offset: a, Seq: -1}) {
		t.Fatalf("an older row parses as %#v, %v", p, err)
	}
	save(a + ",5,15") // inside the response after a
	load(a + ",5,15")
	old(a) // the older version, late: its guard keeps the position
	load(a + ",5,15")
	save(a) // and so does ours
	load(a + ",5,15")
	old(b) // the older version moves on: a later offset replaces the position
	load(b)
	save(a + ",100,110")
	load(b)
	save(b + ",1,21")
	load(b + ",1,21")
}

// Concurrent savers of one key, each with rising values in a random interleaving: the value
// that remains is the highest saved, for bare offsets and for positions inside one offset
// (whose skips do not sort as text).
func TestConcurrentSavesKeepTheHighest(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	s, err := pgstore.New(ctx, pool, pgstore.Options{Table: tempTable(t, pool)})
	if err != nil {
		t.Fatal(err)
	}
	bare := func(i int) string { return fmt.Sprintf("%08d", i) }
	inside := func(i int) string {
		return ack.Position{Offset: "00000007", Skip: int64(i), Seq: int64(i) + 100}.String()
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if err := s.Save(ctx, "k", bare(i*8+w)); err != nil {
					t.Error(err)
				}
				if err := s.Save(ctx, "inside", inside(i*8+w)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got, _, _ := s.Load(ctx, "k"); got != bare(24*8+7) {
		t.Fatalf("kept %q, want the highest", got)
	}
	if got, _, _ := s.Load(ctx, "inside"); got != inside(24*8+7) {
		t.Fatalf("kept %q, want the highest, %q", got, inside(24*8+7))
	}
}

// The store's guard is ack.Supersedes, the rule every store applies: for pairs of values in
// both encodings, sentinels and values that are not positions, saving one and then the other
// keeps what Supersedes says.
func TestGuardIsSupersedes(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	s, err := pgstore.New(ctx, pool, pgstore.Options{Table: tempTable(t, pool)})
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, off := range []string{"-1", "now", "!", "0000000000000000_0000000000000001", "0000000000000000_0000000000000010", "0000000000000000_00000000000000100", "z"} {
		for _, skip := range []int64{0, 1, 9, 10} {
			for _, seq := range []int64{-1, skip, skip + 90} {
				p := ack.Position{Offset: off, Skip: skip, Seq: seq}
				if _, err := ack.ParsePosition(p.String()); err == nil {
					values = append(values, p.String())
				}
			}
		}
	}
	values = append(values, "", "a,b,c", "x,0,-1", "x,01,1", `quote"s`)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		saved, next := values[rng.IntN(len(values))], values[rng.IntN(len(values))]
		key := fmt.Sprintf("pair-%d", i)
		if err := s.Save(ctx, key, saved); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, key, next); err != nil {
			t.Fatal(err)
		}
		want := saved
		if ack.Supersedes(next, saved) {
			want = next
		}
		if got, _, err := s.Load(ctx, key); err != nil || got != want {
			t.Fatalf("saved %q then %q: loaded %q (%v), want %q", saved, next, got, err, want)
		}
	}
}

// Stores creating the same table at once all succeed, whichever catalog entry the losers
// of the race trip on (the table's name, its row type, a catalog index); a bad table name
// is refused, naming the option.
func TestNewCreatesAndValidates(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	const rounds, creators = 20, 6
	var table string
	for range rounds {
		table = tempTable(t, pool)
		var wg sync.WaitGroup
		errs := make(chan error, creators)
		start := make(chan struct{})
		for range creators {
			wg.Go(func() {
				<-start
				_, err := pgstore.New(ctx, pool, pgstore.Options{Table: table})
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent create: %v", err)
			}
		}
	}
	for _, bad := range []string{"1table", "a;drop table x", "a.b.c", `quo"te`, strings.Repeat("x", 64)} {
		_, err := pgstore.New(ctx, pool, pgstore.Options{Table: bad})
		if err == nil || !strings.Contains(err.Error(), "Options.Table") {
			t.Fatalf("table %q: got %v, want an error naming Options.Table", bad, err)
		}
	}
	if _, err := pgstore.New(ctx, pool, pgstore.Options{Table: "sluice_missing_" + table, NoCreate: true}); err != nil {
		t.Fatal(err) // NoCreate does no I/O
	}
	s, _ := pgstore.New(ctx, pool, pgstore.Options{Table: "sluice_missing_" + table, NoCreate: true})
	if err := s.Save(ctx, "k", "1"); err == nil || !strings.Contains(err.Error(), "sluice_missing_") {
		t.Fatalf("save to a missing table: %v, want an error naming the table", err)
	}
}

// A Save that is waiting on the database (here, on a row another transaction holds) returns
// when its context is cancelled, with an error wrapping context.Canceled. With pgx's default
// connection settings the statement may still complete on the server after Save returned; with
// a pool that sends cancel requests (see the package documentation) it is aborted and the
// offset stays where it was. Either way the store goes on working.
func TestSaveHonoursCancellationWhileWaiting(t *testing.T) {
	for _, sendCancel := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancel request %v", sendCancel), func(t *testing.T) {
			pool := testPool(t)
			if sendCancel {
				pool = cancellingPool(t)
			}
			saveCancelledWhileWaiting(t, pool, sendCancel)
		})
	}
}

// cancellingPool is a pool whose connections abort a running statement on the server when
// its context ends, as the package documentation shows.
func cancellingPool(t *testing.T) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(dsn())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 10 * time.Second}
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func saveCancelledWhileWaiting(t *testing.T, pool *pgxpool.Pool, aborted bool) {
	ctx := context.Background()
	s, err := pgstore.New(ctx, pool, pgstore.Options{Table: tempTable(t, pool)})
	if err != nil {
		t.Fatal(err)
	}
	const key = "orders|http://example/v1/stream/orders"
	const before, cancelled, later = "0000000000000000_0000000000000010", "0000000000000000_0000000000000020", "0000000000000000_0000000000000030"
	if err := s.Save(ctx, key, before); err != nil {
		t.Fatal(err)
	}
	// Another transaction locks the row, so the next Save waits for it.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+s.Table()+` WHERE key = $1 FOR UPDATE`, key); err != nil {
		t.Fatal(err)
	}
	var holder int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}

	saveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Save(saveCtx, key, cancelled) }()

	// Wait until the Save is blocked behind the holder (or has returned, which is a failure).
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	for blocked := false; !blocked; {
		select {
		case err := <-done:
			t.Fatalf("Save returned (%v) while the row was locked", err)
		default:
		}
		err := pool.QueryRow(waitCtx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)))`, holder).Scan(&blocked)
		if err != nil {
			t.Fatalf("waiting for the Save to block: %v", err)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Save: %v, want an error wrapping context.Canceled", err)
		}
	case <-waitCtx.Done():
		t.Fatal("a cancelled Save did not return")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if aborted && got != before {
		t.Fatalf("after a Save aborted on the server: %q; want %q", got, before)
	}
	if got != before && got != cancelled {
		t.Fatalf("after the cancelled Save: %q; want %q or %q", got, before, cancelled)
	}
	if err := s.Save(ctx, key, later); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Load(ctx, key); err != nil || got != later {
		t.Fatalf("after a later Save: %q, %v; want %q", got, err, later)
	}
}

// A nil handle is refused at once, also when it is a typed nil in the interface.
func TestNewRefusesNilDB(t *testing.T) {
	var pool *pgxpool.Pool
	var conn *pgx.Conn
	for _, db := range []pgstore.DB{nil, pool, conn} {
		if _, err := pgstore.New(context.Background(), db, pgstore.Options{}); err == nil || !strings.Contains(err.Error(), "nil") {
			t.Fatalf("New(%T(nil)): %v, want an error saying db is nil", db, err)
		}
	}
}
