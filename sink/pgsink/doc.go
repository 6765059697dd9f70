// Package pgsink writes batches of pipeline messages to PostgreSQL with COPY, through pgx,
// so that a redelivered batch has no second effect. A [Sink] is a
// [github.com/sluice-go/sluice/pipeline.BatchHandler]; [Sink.Write] does the same work
// within a transaction of the caller's.
//
//	sink, err := pgsink.New(pgsink.Options[Order]{
//		DB:      pool,                                  // a *pgxpool.Pool
//		Table:   "orders",                              // with PRIMARY KEY (stream, position)
//		Columns: []string{"id", "customer", "amount"},
//		Values: func(row []any, m *pipeline.Message[Order]) ([]any, error) {
//			return append(row, m.Data.ID, m.Data.Customer, m.Data.Amount), nil
//		},
//	})
//	...
//	Batchers: map[string]pipeline.BatcherOptions[Order]{
//		"db": {Handler: sink, BatchSize: 5000, BatchTimeout: 200 * time.Millisecond, Concurrency: 2},
//	},
//
// # Rows
//
// [Options.Values] appends a message's column values to a row, in the order of
// [Options.Columns]; pgx encodes them for the columns' types. A row is keyed by the
// message's stable position, (Metadata.Stream, Metadata.Position), which the sink writes
// to [Options.StreamColumn] and [Options.PositionColumn] ("stream" and "position" by
// default), or by columns the program names in [Options.Key]. The table must have a
// unique index or constraint on exactly the key's columns. Table and column names are
// quoted identifiers, used as written.
//
// # Insert once
//
// [InsertOnce] copies a batch straight into the table: the fast path, as fast as a bare
// COPY. When a row with one of the batch's keys is there already (a redelivered batch, or
// another writer of the same rows), the COPY fails whole and the sink writes the batch
// again through a temporary staging table with INSERT … ON CONFLICT (key) DO NOTHING:
// only that batch pays for the conflict checks. A redelivered batch changes nothing.
//
// # Latest state per key
//
// [Upsert] copies a batch into a temporary table, then moves it with INSERT … ON CONFLICT
// (key) DO UPDATE … WHERE the stored version is less than the new one. The version is
// [Options.Version] (a number or a timestamp that grows with each record of a key) or, by
// default, the message's position, written to PositionColumn: positions order the records
// of a key when they all come from one stream. Within a batch the newest record of a key
// is kept. So an older record never overwrites a newer one, whatever order batches arrive
// in, and a redelivered batch changes nothing (a record of equal version does not replace
// the stored one).
//
// # Apply once
//
// [ApplyOnce] is for aggregates: sums, counters, windows. The sink copies a batch into a
// temporary table, records the keys of its messages in [Options.Table] (the applied
// table) and, in the same transaction, calls [Options.Apply] with only the messages whose
// keys were not recorded before ([Fresh]): as a table to aggregate in SQL, and as
// messages for Go. The keys and the aggregate commit together, so a redelivered batch
// adds nothing, and concurrent writers of the same messages apply each one once.
//
//	Apply: func(ctx context.Context, tx pgx.Tx, fresh pgsink.Fresh[Order]) error {
//		_, err := tx.Exec(ctx, `INSERT INTO revenue AS r (day, total)
//			SELECT day, sum(amount) FROM `+fresh.Table+` GROUP BY day ORDER BY day
//			ON CONFLICT (day) DO UPDATE SET total = r.total + EXCLUDED.total`)
//		return err
//	},
//
// The applied table is created when it is missing:
//
//	CREATE TABLE IF NOT EXISTS <Table> (
//		stream     text   NOT NULL,   -- or the Key columns, typed by ColumnTypes
//		position   bigint NOT NULL,
//		applied_at timestamptz NOT NULL DEFAULT now(),
//		PRIMARY KEY (stream, position)
//	)
//
// It grows by one row per message. Keys of messages that can no longer be delivered
// (behind the pipeline's saved checkpoint, for example) may be deleted by the program.
//
// # Order and concurrency
//
// Every writer puts a batch's rows in key order before writing them (by stream
// byte-wise, then position; or by the key columns' values), and keeps one row per key.
// Writers of the same keys (a pipeline's concurrent batch processors, two pipelines on one
// stream, an old process beside its replacement) therefore take their row locks in the same
// order: they wait for one another but never deadlock. A deadlock with some other writer
// (SQLSTATE 40P01) or a serialization failure (40001) is retried, in a new transaction,
// with exponential backoff, up to [Options.MaxAttempts].
//
// # Failures
//
// A row the database rejects (a check constraint, a NOT NULL column, a foreign key, a
// unique constraint other than the key's, a bad value: SQLSTATE classes 22 and 23), a
// value pgx cannot encode, and an error of Values fail that message only, with a
// [*RejectedError] that carries the cause and is permanent: the pipeline's failure handler
// gets it (a dead-letter stream, for instance), and the rest of the batch is written. The
// sink finds a rejected row by writing halves of the batch, each in its own transaction,
// down to the row; a value pgx cannot encode is known at once.
//
// Anything else (a lost connection, a server restart, a missing table, deadlocks beyond
// MaxAttempts) fails the batch with a [*WriteError], which is not permanent: the pipeline
// retries the batch and never commits past it, so a database outage loses nothing. Each
// attempt is a transaction, and each mode makes writing a batch again harmless.
//
// # Composing a transaction
//
// [Sink.Write] writes a batch within a pgx.Tx of the caller's, in savepoints, so that the
// rows commit (or roll back) with the caller's other changes:
//
//	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//		if _, err := sink.Write(ctx, tx, batch); err != nil {
//			return err
//		}
//		_, err := tx.Exec(ctx, `UPDATE stock SET …`)
//		return err
//	})
//
// The caller owns the transaction, so it retries it when [Retryable] says so.
//
// # Cost
//
// The fast path of InsertOnce is one COPY per batch, in a statement of its own: in
// bench/postgres a pipeline into an InsertOnce sink writes 1M rows at 0.99x to 1.08x the rate
// of one bare pgx CopyFrom of the same rows (medians of 5 rounds, two runs, a shared 2-CPU
// machine). The staging path (every Upsert and ApplyOnce batch, and InsertOnce batches that
// meet rows already there) adds a temporary table and an INSERT … SELECT whose per-row
// conflict check costs PostgreSQL more than the COPY: in the same runs Upsert ran at about
// 0.7x, ApplyOnce (with its applied keys and a per-user aggregate) at about 0.35x, a replay
// of rows all there already at 0.8x, and new rows in batches that each met one row there at
// about 0.35x. Finding a rejected row costs about 2·log2(batch size) transactions; a value
// pgx cannot encode is found at once. The sink checks its table's unique index (or creates
// the ApplyOnce table) once, before its first write.
package pgsink
