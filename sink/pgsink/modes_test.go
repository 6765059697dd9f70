package pgsink_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/pgsink"
)

const stream = "/v1/stream/orders"

// redeliveries is the schedule of batches every mode is tested under: the same batch
// twice, overlapping batches, batches out of order (each shuffled inside), then the whole
// stream as one batch. It covers positions [0, 350) of stream.
func redeliveries() [][]pipeline.Message[Event] {
	return [][]pipeline.Message[Event]{
		shuffled(events(stream, 0, 100)),
		shuffled(events(stream, 0, 100)),   // the same batch again
		shuffled(events(stream, 50, 150)),  // overlapping
		shuffled(events(stream, 250, 350)), // ahead of the next
		shuffled(events(stream, 150, 250)),
		shuffled(events(stream, 0, 350)),
	}
}

const redeliveredN = 350

// checkEvents checks that table holds exactly the events at positions [0, n) of stream.
func checkEvents(t *testing.T, pool *pgxpool.Pool, table string, n int64) {
	t.Helper()
	count := queryInt(t, pool, "SELECT count(*) FROM "+table)
	ids := queryInt(t, pool, "SELECT coalesce(sum(id), 0) FROM "+table)
	wrong := queryInt(t, pool, "SELECT count(*) FROM "+table+` WHERE id <> position OR stream <> $1 OR amount <> position % 100 + 1
		OR user_id <> 'u' || (position % 7)`, stream)
	if count != n || ids != n*(n-1)/2 || wrong != 0 {
		t.Fatalf("%s: %d rows, id sum %d, %d rows unlike their event; want %d rows, sum %d", table, count, ids, wrong, n, n*(n-1)/2)
	}
}

func TestInsertOnceRedelivery(t *testing.T) {
	pool := testPool(t)
	table := newTable(t, pool, eventTable)
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: eventValues})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range redeliveries() {
		handle(t, sink, b)
	}
	checkEvents(t, pool, table, redeliveredN)
	st := sink.Stats()
	// Batches 1, 4 and 5 go straight in; 2, 3 and 6 meet rows already there.
	if st.Written != redeliveredN || st.Skipped != 100+50+350 || st.Fallbacks != 3 || st.Rejected != 0 || st.Batches != 6 {
		t.Fatalf("stats %+v: want 350 written, 500 skipped, 3 fallbacks, 6 batches", st)
	}
}

// A batch whose messages were delivered before (Attempt > 1) goes through staging at once.
func TestInsertOnceRetriedBatchSkipsTheFastPath(t *testing.T) {
	pool := testPool(t)
	table := newTable(t, pool, eventTable)
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: eventValues})
	if err != nil {
		t.Fatal(err)
	}
	// A pipeline retrying the batch is what makes Attempt > 1; through a real pipeline, the
	// first attempt fails (the table is missing) and the retry writes it.
	exec(t, pool, "ALTER TABLE "+table+" RENAME TO "+table+"_away")
	dropLater(t, pool, table+"_away")
	var attempts, fallbacks int
	h := pipeline.BatchHandlerFunc[Event](func(ctx context.Context, b []pipeline.Message[Event], info pipeline.BatchInfo) error {
		attempts++
		if attempts == 2 {
			// The table is back, with the batch's first row: a COPY would fail on it.
			exec(t, pool, "ALTER TABLE "+table+"_away RENAME TO "+table)
			exec(t, pool, "INSERT INTO "+table+" VALUES ($1, 0, 0, 'u0', 1)", stream)
		}
		err := sink.HandleBatch(ctx, b, info)
		fallbacks = int(sink.Stats().Fallbacks)
		return err
	})
	prod := newProducer(events(stream, 0, 100))
	p, err := pipeline.New(pipeline.Options[Event]{
		Producer:       prod,
		Processors:     []pipeline.ProcessorOptions[Event]{{Handler: pipeline.HandlerFunc[Event](func(context.Context, *pipeline.Message[Event]) error { return nil }), Concurrency: 1}},
		Batchers:       map[string]pipeline.BatcherOptions[Event]{"db": {Handler: h, BatchSize: 100}},
		DefaultBatcher: "db",
		Failure:        pipeline.FailureOptions[Event]{Policy: pipeline.RetryThenFail, MaxRetries: 3, RetryBackoff: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if attempts < 2 {
		t.Fatalf("%d attempts, want a retry", attempts)
	}
	checkEvents(t, pool, table, 100)
	if fallbacks != 0 {
		t.Fatalf("%d fallbacks: the retried batch went through the fast path first", fallbacks)
	}
	if st := sink.Stats(); st.Written != 99 || st.Skipped != 1 {
		t.Fatalf("stats %+v, want 99 written, 1 skipped", st)
	}
}

// Rows keyed by a column of the data: the first row of a key stays.
func TestInsertOnceByKey(t *testing.T) {
	pool := testPool(t)
	table := newTable(t, pool, "id bigint PRIMARY KEY, user_id text NOT NULL, amount bigint NOT NULL")
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: eventValues, Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range redeliveries() {
		handle(t, sink, b)
	}
	// The same ids from another stream change nothing either.
	other := events("/v1/stream/other", 0, 350)
	for i := range other {
		other[i].Data.Amount = -1
	}
	handle(t, sink, other)
	if n, bad := queryInt(t, pool, "SELECT count(*) FROM "+table), queryInt(t, pool, "SELECT count(*) FROM "+table+" WHERE amount <> id % 100 + 1"); n != redeliveredN || bad != 0 {
		t.Fatalf("%d rows, %d changed by the other stream; want %d, 0", n, bad, redeliveredN)
	}
}

// record is a state record for the upsert tests: key id, version v.
func record(pos, id, v int64) pipeline.Message[Event] {
	m := event(stream, pos)
	m.Data = Event{ID: id, User: fmt.Sprintf("v%d", v), Amount: v}
	return m
}

// randomBatches cuts msgs (shuffled) into batches of 1 to max messages, repeats some,
// and returns them in a random order.
func randomBatches(msgs []pipeline.Message[Event], max int) [][]pipeline.Message[Event] {
	msgs = shuffled(msgs)
	var out [][]pipeline.Message[Event]
	for len(msgs) > 0 {
		n := min(len(msgs), 1+rand.IntN(max))
		out = append(out, copyBatch(msgs[:n]))
		if rand.IntN(4) == 0 {
			out = append(out, copyBatch(msgs[:n]))
		}
		msgs = msgs[n:]
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestUpsertLatestVersionWins(t *testing.T) {
	pool := testPool(t)
	table := newTable(t, pool, "id bigint PRIMARY KEY, user_id text NOT NULL, amount bigint NOT NULL")
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Mode: pgsink.Upsert, Table: table, Columns: eventCols,
		Values: eventValues, Key: []string{"id"}, Version: "amount"})
	if err != nil {
		t.Fatal(err)
	}
	const keys, versions = 40, 10
	var recs []pipeline.Message[Event]
	for k := range int64(keys) {
		for v := int64(1); v <= versions; v++ {
			recs = append(recs, record(k*versions+v, k, v))
		}
	}
	for range 3 { // three random schedules, on top of one another
		for _, b := range randomBatches(recs, 60) {
			handle(t, sink, b)
		}
		n := queryInt(t, pool, "SELECT count(*) FROM "+table)
		latest := queryInt(t, pool, "SELECT count(*) FROM "+table+" WHERE amount = $1 AND user_id = $2", versions, fmt.Sprintf("v%d", versions))
		if n != keys || latest != keys {
			t.Fatalf("%d rows, %d at the latest version; want %d, %d", n, latest, keys, keys)
		}
	}
	// An old record delivered late changes nothing.
	handle(t, sink, []pipeline.Message[Event]{record(1, 0, 1)})
	if v := queryInt(t, pool, "SELECT amount FROM "+table+" WHERE id = 0"); v != versions {
		t.Fatalf("key 0 at version %d after a late old record, want %d", v, versions)
	}
}

// Without a Version, the position orders a key's records.
func TestUpsertByPosition(t *testing.T) {
	pool := testPool(t)
	table := newTable(t, pool, "id bigint PRIMARY KEY, user_id text NOT NULL, amount bigint NOT NULL, position bigint NOT NULL")
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Mode: pgsink.Upsert, Table: table, Columns: eventCols,
		Values: eventValues, Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	const keys, n = 40, 400
	var recs []pipeline.Message[Event]
	for pos := range int64(n) {
		recs = append(recs, record(pos, pos%keys, pos)) // version in the data = position
	}
	for _, b := range randomBatches(recs, 50) {
		handle(t, sink, b)
	}
	// Key k's latest record is at position n-keys+k.
	if got, ok := queryInt(t, pool, "SELECT count(*) FROM "+table), queryInt(t, pool, "SELECT count(*) FROM "+table+
		" WHERE position = $1::bigint - $2::bigint + id AND amount = position AND user_id = 'v' || position", n, keys); got != keys || ok != keys {
		t.Fatalf("%d rows, %d at their latest position; want %d", got, ok, keys)
	}
}

// applyTotals is an ApplyFunc in SQL: per-user totals of the fresh messages, added in
// user order.
func applyTotals(totals string) pgsink.ApplyFunc[Event] {
	return func(ctx context.Context, tx pgx.Tx, fresh pgsink.Fresh[Event]) error {
		_, err := tx.Exec(ctx, `INSERT INTO `+totals+` AS r (user_id, total, n)
			SELECT user_id, sum(amount), count(*) FROM `+fresh.Table+` GROUP BY user_id ORDER BY user_id
			ON CONFLICT (user_id) DO UPDATE SET total = r.total + EXCLUDED.total, n = r.n + EXCLUDED.n`)
		return err
	}
}

// applyTotalsGo is the same in Go over fresh.Messages.
func applyTotalsGo(totals string) pgsink.ApplyFunc[Event] {
	return func(ctx context.Context, tx pgx.Tx, fresh pgsink.Fresh[Event]) error {
		sums := map[string][2]int64{}
		for _, m := range fresh.Messages {
			s := sums[m.Data.User]
			sums[m.Data.User] = [2]int64{s[0] + m.Data.Amount, s[1] + 1}
		}
		users := make([]string, 0, len(sums))
		for u := range sums {
			users = append(users, u)
		}
		slices.Sort(users)
		for _, u := range users {
			if _, err := tx.Exec(ctx, `INSERT INTO `+totals+` AS r (user_id, total, n) VALUES ($1, $2, $3)
				ON CONFLICT (user_id) DO UPDATE SET total = r.total + EXCLUDED.total, n = r.n + EXCLUDED.n`, u, sums[u][0], sums[u][1]); err != nil {
				return err
			}
		}
		return nil
	}
}

const totalsTable = "user_id text PRIMARY KEY, total bigint NOT NULL CHECK (total < 1000000000), n bigint NOT NULL"

// checkTotals checks that totals holds the per-user sums of the events at positions [0, n).
func checkTotals(t *testing.T, pool *pgxpool.Pool, totals string, n int64) {
	t.Helper()
	want := map[string][2]int64{}
	for p := range n {
		e := event(stream, p).Data
		s := want[e.User]
		want[e.User] = [2]int64{s[0] + e.Amount, s[1] + 1}
	}
	rows, err := pool.Query(context.Background(), "SELECT user_id, total, n FROM "+totals)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int64{}
	var u string
	var total, count int64
	if _, err := pgx.ForEachRow(rows, []any{&u, &total, &count}, func() error {
		got[u] = [2]int64{total, count}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("totals %v, want %v", got, want)
	}
}

func TestApplyOnceRedelivery(t *testing.T) {
	for _, tc := range []struct {
		name    string
		apply   func(string) pgsink.ApplyFunc[Event]
		columns bool
	}{{"SQL", applyTotals, true}, {"Go", applyTotalsGo, false}} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testPool(t)
			totals := newTable(t, pool, totalsTable)
			applied := newTable(t, pool, "") // created by the sink
			opts := pgsink.Options[Event]{DB: pool, Mode: pgsink.ApplyOnce, Table: applied, Apply: tc.apply(totals)}
			if tc.columns {
				opts.Columns, opts.ColumnTypes, opts.Values = eventCols, []string{"bigint", "text", "bigint"}, eventValues
			}
			sink, err := pgsink.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range redeliveries() {
				handle(t, sink, b)
			}
			checkTotals(t, pool, totals, redeliveredN)
			if n := queryInt(t, pool, "SELECT count(*) FROM "+applied+" WHERE stream = $1 AND position < $2", stream, redeliveredN); n != redeliveredN {
				t.Fatalf("%d keys recorded as applied, want %d", n, redeliveredN)
			}
			if st := sink.Stats(); st.Written != redeliveredN || st.Skipped != 500 {
				t.Fatalf("stats %+v: want 350 applied, 500 skipped", st)
			}
		})
	}
}

// Four writers at once, each writing every message of the stream in overlapping batches of
// its own, in an order of its own: each message has its effect once, and no writer meets
// a deadlock.
func TestConcurrentWriters(t *testing.T) {
	const n, writers = 3000, 4
	for _, mode := range []pgsink.Mode{pgsink.InsertOnce, pgsink.Upsert, pgsink.ApplyOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			pool := testPool(t)
			var table, totals string
			opts := pgsink.Options[Event]{DB: pool, Mode: mode, Columns: eventCols, Values: eventValues}
			switch mode {
			case pgsink.InsertOnce:
				table = newTable(t, pool, eventTable)
			case pgsink.Upsert:
				table = newTable(t, pool, "id bigint PRIMARY KEY, user_id text NOT NULL, amount bigint NOT NULL, position bigint NOT NULL")
				opts.Key = []string{"id"}
			case pgsink.ApplyOnce:
				table = newTable(t, pool, "")
				totals = newTable(t, pool, totalsTable)
				opts.ColumnTypes, opts.Apply = []string{"bigint", "text", "bigint"}, applyTotals(totals)
			}
			opts.Table = table
			sink, err := pgsink.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			all := events(stream, 0, n)
			if mode == pgsink.Upsert {
				for i := range all {
					all[i].Data.ID = int64(i % 100) // 100 keys, 30 records each
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					// Batches of 100 to 300 at offsets of the writer's own, in a random order.
					var batches [][]pipeline.Message[Event]
					for from := (w * 37) % 100; from < n; {
						size := 100 + rand.IntN(200)
						batches = append(batches, shuffled(all[max(0, from-50):min(n, from+size)]))
						from += size
					}
					batches = append(batches, copyBatch(all[:(w*37)%100+50]))
					rand.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
					for _, b := range batches {
						if err := sink.HandleBatch(context.Background(), b, pipeline.BatchInfo{}); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			switch mode {
			case pgsink.InsertOnce:
				checkEvents(t, pool, table, n)
			case pgsink.Upsert:
				if got, ok := queryInt(t, pool, "SELECT count(*) FROM "+table), queryInt(t, pool, "SELECT count(*) FROM "+table+
					" WHERE position = $1::bigint - 100 + id AND amount = position % 100 + 1", n); got != 100 || ok != 100 {
					t.Fatalf("%d rows, %d at their latest position; want 100", got, ok)
				}
			case pgsink.ApplyOnce:
				checkTotals(t, pool, totals, n)
			}
			if st := sink.Stats(); st.Retries != 0 {
				t.Fatalf("stats %+v: writers in key order met %d deadlocks", st, st.Retries)
			}
		})
	}
}

// newProducer returns a producer of msgs, with their metadata, that ends after the last.
func newProducer(msgs []pipeline.Message[Event]) pipeline.Producer[Event] {
	return &sliceProducer{msgs: msgs}
}

type sliceProducer struct {
	mu   sync.Mutex
	msgs []pipeline.Message[Event]
}

func (p *sliceProducer) Produce(_ context.Context, out []pipeline.Message[Event]) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := copy(out, p.msgs)
	p.msgs = p.msgs[n:]
	if len(p.msgs) == 0 {
		return n, pipeline.ErrEndOfInput
	}
	return n, nil
}

// A pipeline with four batch processors into one sink, with one bad event: the failure
// handler gets it with the database's error, and every other event is written once.
func TestPipelineIntoSink(t *testing.T) {
	pool := testPool(t)
	table := newTable(t, pool, eventTable+", CHECK (amount > 0)")
	sink, err := pgsink.New(pgsink.Options[Event]{DB: pool, Table: table, Columns: eventCols, Values: eventValues})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	msgs := events(stream, 0, n)
	msgs[12345].Data.Amount = -5
	var mu sync.Mutex
	var failed []pipeline.Message[Event]
	p, err := pipeline.New(pipeline.Options[Event]{
		Producer:       newProducer(msgs),
		Processors:     []pipeline.ProcessorOptions[Event]{{Handler: pipeline.HandlerFunc[Event](func(context.Context, *pipeline.Message[Event]) error { return nil }), Concurrency: 2}},
		Batchers:       map[string]pipeline.BatcherOptions[Event]{"db": {Handler: sink, BatchSize: 1000, Concurrency: 4}},
		DefaultBatcher: "db",
		Failure: pipeline.FailureOptions[Event]{Handler: pipeline.FailureHandlerFunc[Event](func(_ context.Context, ms []pipeline.Message[Event]) error {
			mu.Lock()
			defer mu.Unlock()
			failed = append(failed, ms...)
			return nil
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].Metadata.Position != 12345 || !permanent(failed[0].Err()) {
		t.Fatalf("failed: %d messages (%v), want the one at 12345 with a permanent error", len(failed), errsOf(failed))
	}
	if n, bad := queryInt(t, pool, "SELECT count(*) FROM "+table), queryInt(t, pool, "SELECT count(*) FROM "+table+" WHERE position = 12345"); n != 19999 || bad != 0 {
		t.Fatalf("%d rows (%d of the bad event), want 19999 (0)", n, bad)
	}
}

func errsOf(ms []pipeline.Message[Event]) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%d: %v", m.Metadata.Position, m.Err()))
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}
