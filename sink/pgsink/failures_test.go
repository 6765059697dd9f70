package pgsink_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/pgsink"
)

// strictValues is eventValues with a NULL user for an empty one, and an error for a
// negative id.
func strictValues(row []any, m *pipeline.Message[Event]) ([]any, error) {
	if m.Data.ID < 0 {
		return nil, fmt.Errorf("event with id %d", m.Data.ID)
	}
	var user any = m.Data.User
	if m.Data.User == "" {
		user = nil
	}
	return append(row, m.Data.ID, user, m.Data.Amount), nil
}

// badRow is a way to spoil an event, and the SQLSTATE the database answers it with ("" for
// an error that is not the database's).
type badRow struct {
	name  string
	spoil func(batch []pipeline.Message[Event], i int)
	code  string
}

var badRows = []badRow{
	{"check constraint", func(b []pipeline.Message[Event], i int) { b[i].Data.Amount = -1 }, "23514"},
	{"not null", func(b []pipeline.Message[Event], i int) { b[i].Data.User = "" }, "23502"},
	{"bad text", func(b []pipeline.Message[Event], i int) { b[i].Data.User = "a\x00b" }, "22021"},
	{"value out of range for int4", func(b []pipeline.Message[Event], i int) { b[i].Data.Amount = 1 << 40 }, ""},
	{"Values error", func(b []pipeline.Message[Event], i int) { b[i].Data.ID = -1 }, ""},
}

// A bad row in a batch of 1,000 fails that message only, with the database's error; the
// other 999 are written. In every mode, and for InsertOnce both on the fast path and
// through staging.
func TestBadRowInBatch(t *testing.T) {
	const n = 1000
	const rowDefs = `stream text NOT NULL, position bigint NOT NULL, id bigint NOT NULL, user_id text NOT NULL,
		amount int NOT NULL CHECK (amount > 0), PRIMARY KEY (stream, position)`
	type setup struct {
		name string
		// sink returns the sink and a function that counts the messages written.
		sink func(t *testing.T, pool *pgxpool.Pool) (*pgsink.Sink[Event], func() int64)
		bad  []badRow
	}
	setups := []setup{
		{"InsertOnce", func(t *testing.T, pool *pgxpool.Pool) (*pgsink.Sink[Event], func() int64) {
			table := newTable(t, pool, rowDefs)
			s, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: strictValues})
			if err != nil {
				t.Fatal(err)
			}
			return s, func() int64 { return queryInt(t, pool, "SELECT count(*) FROM "+table) }
		}, badRows},
		{"InsertOnce through staging", func(t *testing.T, pool *pgxpool.Pool) (*pgsink.Sink[Event], func() int64) {
			table := newTable(t, pool, rowDefs+", UNIQUE (id)")
			exec(t, pool, "INSERT INTO "+table+" VALUES ($1, 0, 0, 'u0', 1)", stream) // the batch's first row is there
			s, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: strictValues})
			if err != nil {
				t.Fatal(err)
			}
			return s, func() int64 { return queryInt(t, pool, "SELECT count(*) FROM "+table) }
		}, append(badRows, badRow{"another unique constraint", func(b []pipeline.Message[Event], i int) {
			b[i].Data.ID = b[i-1].Data.ID
		}, "23505"})},
		{"Upsert", func(t *testing.T, pool *pgxpool.Pool) (*pgsink.Sink[Event], func() int64) {
			table := newTable(t, pool, `id bigint PRIMARY KEY, user_id text NOT NULL, amount int NOT NULL CHECK (amount > 0),
				position bigint NOT NULL`)
			s, err := pgsink.New(pgsink.Options[Event]{DB: pool, Mode: pgsink.Upsert, Table: table, Columns: eventCols,
				Values: strictValues, Key: []string{"id"}})
			if err != nil {
				t.Fatal(err)
			}
			return s, func() int64 { return queryInt(t, pool, "SELECT count(*) FROM "+table) }
		}, badRows},
		{"ApplyOnce", func(t *testing.T, pool *pgxpool.Pool) (*pgsink.Sink[Event], func() int64) {
			totals := newTable(t, pool, totalsTable)
			s, err := pgsink.New(pgsink.Options[Event]{DB: pool, Mode: pgsink.ApplyOnce, Table: newTable(t, pool, ""),
				Columns: eventCols, ColumnTypes: []string{"bigint", "text", "int"}, Values: strictValues, Apply: applyTotals(totals)})
			if err != nil {
				t.Fatal(err)
			}
			return s, func() int64 { return queryInt(t, pool, "SELECT coalesce(sum(n), 0) FROM "+totals) }
		}, append(badRows[2:], badRow{"aggregate's check constraint", func(b []pipeline.Message[Event], i int) {
			b[i].Data.Amount = 2e9 // fits an int, but its user's total passes the totals' CHECK
		}, "23514"})},
	}
	for _, su := range setups {
		for _, bad := range su.bad {
			t.Run(su.name+"/"+bad.name, func(t *testing.T) {
				pool := testPool(t)
				sink, written := su.sink(t, pool)
				batch := events(stream, 0, n)
				i := 1 + rand.IntN(n-1)
				bad.spoil(batch, i)
				if err := sink.HandleBatch(context.Background(), batch, pipeline.BatchInfo{}); err != nil {
					t.Fatalf("HandleBatch: %v", err)
				}
				for j := range batch {
					if batch[j].Failed() != (j == i) {
						t.Fatalf("message %d failed: %v (the bad one is %d)", j, batch[j].Err(), i)
					}
				}
				err := batch[i].Err()
				var re *pgsink.RejectedError
				if !errors.As(err, &re) || re.Position != int64(i) || re.Stream != stream || !permanent(err) {
					t.Fatalf("error %v (%T): want a permanent *RejectedError at position %d", err, err, i)
				}
				var pe *pgconn.PgError
				if bad.code != "" && (!errors.As(err, &pe) || pe.Code != bad.code) {
					t.Fatalf("error %v: want the database's %s", err, bad.code)
				}
				if got := written(); got != n-1 {
					t.Fatalf("%d messages written, want %d", got, n-1)
				}
				if st := sink.Stats(); st.Rejected != 1 {
					t.Fatalf("stats %+v, want 1 rejected", st)
				}
				t.Logf("%v", err)
			})
		}
	}
}

// gate is a column value whose encoding, during a COPY, waits until the test lets it go.
type gate struct {
	v                int64
	once, opened     sync.Once
	reached, release chan struct{}
}

// open lets the encoding go on; it is idempotent.
func (g *gate) open() { g.opened.Do(func() { close(g.release) }) }

func newGate(v int64) *gate {
	return &gate{v: v, reached: make(chan struct{}), release: make(chan struct{})}
}

// Value blocks the first time, after saying so.
func (g *gate) Value() (driver.Value, error) {
	g.once.Do(func() {
		close(g.reached)
		<-g.release
	})
	return g.v, nil
}

// poolWithName connects with a unique application_name, to find the pool's backends.
func poolWithName(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	testPool(t) // skips without PostgreSQL
	name := fmt.Sprintf("pgsink_test_%d", rand.Uint64()%1e12)
	cfg, err := pgxpool.ParseConfig(dsn())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = name
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, name
}

// A connection killed in the middle of a COPY (pg_terminate_backend from another
// connection, as a server restart would) fails the batch with a plain, retryable error and
// no message failed; nothing of it is committed; the batch written again is written once.
func TestConnectionKilledMidCopy(t *testing.T) {
	const n, at = 5000, 3000
	for _, mode := range []pgsink.Mode{pgsink.InsertOnce, pgsink.Upsert, pgsink.ApplyOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			pool, app := poolWithName(t)
			admin := testPool(t)
			var table, totals string
			opts := pgsink.Options[Event]{DB: pool, Mode: mode, Columns: eventCols}
			var g *gate
			opts.Values = func(row []any, m *pipeline.Message[Event]) ([]any, error) {
				if m.Metadata.Position == at {
					return append(row, m.Data.ID, m.Data.User, g), nil
				}
				return eventValues(row, m)
			}
			var count func() int64
			switch mode {
			case pgsink.InsertOnce:
				table = newTable(t, admin, eventTable)
				count = func() int64 { return queryInt(t, admin, "SELECT count(*) FROM "+table) }
			case pgsink.Upsert:
				table = newTable(t, admin, "id bigint PRIMARY KEY, user_id text NOT NULL, amount bigint NOT NULL, position bigint NOT NULL")
				opts.Key = []string{"id"}
				count = func() int64 { return queryInt(t, admin, "SELECT count(*) FROM "+table) }
			case pgsink.ApplyOnce:
				table = newTable(t, admin, "")
				totals = newTable(t, admin, totalsTable)
				opts.ColumnTypes, opts.Apply = []string{"bigint", "text", "bigint"}, applyTotals(totals)
				count = func() int64 { return queryInt(t, admin, "SELECT coalesce(sum(n), 0) FROM "+totals) }
			}
			opts.Table = table
			sink, err := pgsink.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			batch := events(stream, 0, n)
			g = newGate(batch[at].Data.Amount)
			t.Cleanup(g.open) // before the tables are dropped, should the test fail early
			done := make(chan error, 1)
			go func() { done <- sink.HandleBatch(context.Background(), batch, pipeline.BatchInfo{}) }()
			select {
			case <-g.reached:
			case err := <-done:
				t.Fatalf("HandleBatch returned %v before the COPY reached the gate", err)
			}
			// The rows before the gate are on their way; the server shows the COPY once it has
			// read its start.
			var killed int64
			for deadline := time.Now().Add(30 * time.Second); killed == 0 && time.Now().Before(deadline); {
				if err := admin.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE application_name = $1 AND query ILIKE 'copy %' AND state = 'active'`, app).Scan(&killed); err != nil {
					t.Fatal(err)
				}
				if killed == 0 {
					time.Sleep(5 * time.Millisecond) // polling the server's view: no event to wait on
				}
			}
			if killed != 1 {
				t.Fatalf("killed %d backends, want the one in COPY", killed)
			}
			g.open()
			err = <-done
			var we *pgsink.WriteError
			if !errors.As(err, &we) || permanent(err) {
				t.Fatalf("HandleBatch after the kill: %v (%T), want a *WriteError, not permanent", err, err)
			}
			for i := range batch {
				if batch[i].Failed() {
					t.Fatalf("message %d failed: %v", i, batch[i].Err())
				}
			}
			if got := count(); got != 0 {
				t.Fatalf("%d messages written by the killed attempt, want 0", got)
			}
			t.Logf("%v", err)
			// The pipeline retries the batch.
			handle(t, sink, batch)
			if got := count(); got != n {
				t.Fatalf("%d messages written after the retry, want %d", got, n)
			}
			if mode == pgsink.InsertOnce {
				checkEvents(t, admin, table, n)
			}
		})
	}
}

// A deadlock with a writer that takes its locks in another order is retried: the sink is
// the victim (its deadlock_timeout is the shorter), tries again, and writes the batch.
func TestDeadlockRetried(t *testing.T) {
	pool, app := poolWithName(t)
	admin := testPool(t)
	table := newTable(t, admin, eventTable)
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: eventValues})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, "SET LOCAL deadlock_timeout = '30s'"); err != nil {
		t.Skipf("cannot make the other writer the survivor: %v", err)
	}
	insert := "INSERT INTO " + table + " (stream, position, id, user_id, amount) VALUES ($1, $2::bigint, $2::bigint, 'u' || ($2::bigint % 7), $2::bigint % 100 + 1)"
	if _, err := other.Exec(ctx, insert, stream, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sink.HandleBatch(ctx, events(stream, 0, 2), pipeline.BatchInfo{}) }()
	// Once the sink waits for position 1 (holding 0), the other writer asks for 0.
	for waiting := int64(0); waiting == 0; {
		waiting = queryInt(t, admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", app)
		select {
		case err := <-done:
			t.Fatalf("HandleBatch returned %v before waiting", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := other.Exec(ctx, insert, stream, 0); err != nil {
		t.Fatalf("the other writer: %v", err)
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	checkEvents(t, admin, table, 2)
	if st := sink.Stats(); st.Retries < 1 || st.Written != 0 || st.Skipped != 2 {
		t.Fatalf("stats %+v: want a retry, and both rows found there", st)
	}
}

// Write works within the caller's transaction: its rows commit or roll back with it, a
// conflict or a rejected row costs a savepoint and leaves the transaction usable.
func TestWriteInCallersTransaction(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	table := newTable(t, pool, eventTable+", CHECK (amount > 0)")
	audit := newTable(t, pool, "note text")
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: eventValues})
	if err != nil {
		t.Fatal(err)
	}
	errAbort := errors.New("abort")
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := sink.Write(ctx, tx, events(stream, 0, 100)); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatal(err)
	}
	if n := queryInt(t, pool, "SELECT count(*) FROM "+table); n != 0 {
		t.Fatalf("%d rows after a rollback, want 0", n)
	}
	var res [3]pgsink.Result
	bad := events(stream, 150, 200)
	bad[7].Data.Amount = -1
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		if res[0], err = sink.Write(ctx, tx, events(stream, 0, 100)); err != nil {
			return err
		}
		if res[1], err = sink.Write(ctx, tx, events(stream, 50, 150)); err != nil { // half there already
			return err
		}
		if res[2], err = sink.Write(ctx, tx, bad); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO "+audit+" VALUES ('three batches')")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Written != 100 || res[1].Written != 50 || res[1].Skipped != 50 || res[1].Fallbacks != 1 || res[2].Written != 49 || res[2].Rejected != 1 {
		t.Fatalf("results %+v", res)
	}
	if !bad[7].Failed() || queryInt(t, pool, "SELECT count(*) FROM "+table) != 199 || queryInt(t, pool, "SELECT count(*) FROM "+audit) != 1 {
		t.Fatalf("after commit: bad failed %v, %d rows, %d notes", bad[7].Failed(), queryInt(t, pool, "SELECT count(*) FROM "+table), queryInt(t, pool, "SELECT count(*) FROM "+audit))
	}
	if st := sink.Stats(); st != (pgsink.Stats{}) {
		t.Fatalf("Write counted in Stats: %+v", st)
	}
}

// ApplyOnce within one transaction: the second Write of the same batch sees the keys the
// first recorded, and adds nothing.
func TestApplyOnceWriteTwiceInOneTransaction(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	totals := newTable(t, pool, totalsTable)
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Mode: pgsink.ApplyOnce, Table: newTable(t, pool, ""),
		Columns: eventCols, ColumnTypes: []string{"bigint", "text", "bigint"}, Values: eventValues, Apply: applyTotals(totals)})
	if err != nil {
		t.Fatal(err)
	}
	var second pgsink.Result
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := sink.Write(ctx, tx, events(stream, 0, 100)); err != nil {
			return err
		}
		second, err = sink.Write(ctx, tx, events(stream, 0, 100))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, pool, totals, 100)
	if second.Written != 0 || second.Skipped != 100 {
		t.Fatalf("second Write: %+v, want 100 skipped", second)
	}
}

// A missing table, or one without a unique index on the key, is no bad data: the batch fails
// with a plain error, no message fails. A unique index on exactly the key's columns, in any
// order, with included columns, will do.
func TestTableChecked(t *testing.T) {
	pool := testPool(t)
	for _, tc := range []struct {
		name, defs, index string
		ok                bool
	}{
		{"missing table", "", "", false},
		{"no index", "stream text, position bigint, id bigint, user_id text, amount bigint", "", false},
		{"wider unique index", eventTable, "(stream, position, id)", false},
		{"partial unique index", "stream text, position bigint, id bigint, user_id text, amount bigint", "(stream, position) WHERE id > 0", false},
		{"key in another order", "stream text, position bigint, id bigint, user_id text, amount bigint, PRIMARY KEY (position, stream)", "", true},
		{"unique index with included columns", "stream text, position bigint, id bigint, user_id text, amount bigint", "(stream, position) INCLUDE (id)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t, pool, tc.defs)
			if tc.name == "wider unique index" {
				exec(t, pool, "ALTER TABLE "+table+" DROP CONSTRAINT "+table+"_pkey")
			}
			if tc.index != "" {
				exec(t, pool, "CREATE UNIQUE INDEX ON "+table+" "+tc.index)
			}
			sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: eventValues})
			if err != nil {
				t.Fatal(err)
			}
			batch := events(stream, 0, 10)
			err = sink.HandleBatch(context.Background(), batch, pipeline.BatchInfo{})
			var we *pgsink.WriteError
			switch {
			case tc.ok && err != nil:
				t.Fatalf("HandleBatch: %v", err)
			case !tc.ok && (!errors.As(err, &we) || permanent(err)):
				t.Fatalf("HandleBatch: %v, want a *WriteError, not permanent", err)
			}
			for i := range batch {
				if batch[i].Failed() {
					t.Fatalf("message %d failed: %v", i, batch[i].Err())
				}
			}
			t.Log(err)
		})
	}
}

// Names are quoted: a table whose name needs quotes, in a schema, works as written.
func TestQuotedNames(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	schema := newTable(t, pool, "") // a fresh name, used for a schema
	exec(t, pool, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	exec(t, pool, `CREATE TABLE `+schema+`."Order Events" ("Stream" text, "Pos" bigint, "ID" bigint, "User" text, "Amount" bigint,
		PRIMARY KEY ("Stream", "Pos"))`)
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: schema + ".Order Events", Columns: []string{"ID", "User", "Amount"},
		StreamColumn: "Stream", PositionColumn: "Pos", Values: eventValues})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		handle(t, sink, events(stream, 0, 50))
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM `+schema+`."Order Events"`); n != 50 {
		t.Fatalf("%d rows, want 50", n)
	}
}

// A serialization failure is retried: a sink whose transactions are REPEATABLE READ meets a
// row that another transaction updates and commits meanwhile (40001), tries again in a new
// transaction, and writes its newer version.
func TestSerializationFailureRetried(t *testing.T) {
	testPool(t) // skips without PostgreSQL
	app := fmt.Sprintf("pgsink_test_%d", rand.Uint64()%1e12)
	cfg, err := pgxpool.ParseConfig(dsn())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "repeatable read"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	admin := testPool(t)
	table := newTable(t, admin, "id bigint PRIMARY KEY, user_id text NOT NULL, amount bigint NOT NULL")
	exec(t, admin, "INSERT INTO "+table+" VALUES (7, 'first', 1)")
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Mode: pgsink.Upsert, Table: table, Columns: eventCols,
		Values: eventValues, Key: []string{"id"}, Version: "amount"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, "UPDATE "+table+" SET user_id = 'other', amount = 2 WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- sink.HandleBatch(ctx, []pipeline.Message[Event]{record(100, 7, 5)}, pipeline.BatchInfo{})
	}()
	for waiting := int64(0); waiting == 0; {
		waiting = queryInt(t, admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", app)
		select {
		case err := <-done:
			t.Fatalf("HandleBatch returned %v before waiting", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	if st := sink.Stats(); st.Retries < 1 || st.Written != 1 {
		t.Fatalf("stats %+v: want a retry and the row written", st)
	}
	if v := queryInt(t, admin, "SELECT amount FROM "+table+" WHERE id = 7 AND user_id = 'v5'"); v != 5 {
		t.Fatalf("amount %d, want 5", v)
	}
}
