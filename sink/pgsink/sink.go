package pgsink

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-go/sluice/pipeline"
)

// Sink writes batches of messages to a PostgreSQL table with COPY, in one of three modes
// (see [Mode]). It is a [pipeline.BatchHandler]; [Sink.Write] is the same work within a
// transaction of the caller's. A Sink is safe for concurrent use when its DB is (a pool
// is); it holds no per-batch state.
type Sink[T any] struct {
	cfg       config[T]
	table     string // quoted
	stage     string // quoted name of the staging table, in pg_temp
	stageID   pgx.Identifier
	stageCols []string // cfg.cols and the ordinal

	createStage string // InsertOnce, Upsert: CREATE TEMP TABLE … AS SELECT … WITH NO DATA; ApplyOnce: with explicit types
	dropStage   string
	insert      string // InsertOnce: insert-if-absent from the staging table
	upsert      string // Upsert: the guarded upsert from the staging table
	apply       string // ApplyOnce: record the keys, return the ordinals of rows applied before

	createApplied string   // ApplyOnce: CREATE TABLE IF NOT EXISTS of Table
	keyNames      []string // the key's columns, sorted byte-wise, for the unique index check
	readyMu       sync.Mutex
	ready         bool // the table was checked (InsertOnce, Upsert) or created (ApplyOnce)

	stats struct {
		batches, written, skipped, rejected, fallbacks, retries atomic.Int64
	}
}

var _ pipeline.BatchHandler[int] = (*Sink[int])(nil)

// sinks numbers sinks, to give each its own staging table name: pgx caches the column
// types of a COPY's target by statement, per connection.
var sinks atomic.Int64

// New validates opts and returns a sink. It does no I/O (the ApplyOnce table is created,
// when missing, by the first batch). Invalid options are reported all at once in a
// *[pipeline.OptionsError], each problem naming its field.
func New[T any](opts Options[T]) (*Sink[T], error) {
	cfg, err := opts.check()
	if err != nil {
		return nil, err
	}
	s := &Sink[T]{cfg: cfg, table: cfg.table.Sanitize()}
	s.stageID = pgx.Identifier{"pg_temp", fmt.Sprintf("pgsink_stage_%d", sinks.Add(1))}
	s.stage = s.stageID.Sanitize()
	s.dropStage = `DROP TABLE ` + s.stage
	s.stageCols = append(append([]string(nil), cfg.cols...), ordColumn)
	cols := quoteAll(cfg.cols)
	keys := quoteAll(pick(cfg.cols, cfg.keyAt))
	s.keyNames = pick(cfg.cols, cfg.keyAt)
	slices.Sort(s.keyNames)
	switch cfg.Mode {
	case InsertOnce, Upsert:
		s.createStage = `CREATE TEMP TABLE ` + s.stage + ` ON COMMIT DROP AS SELECT ` + strings.Join(cols, ", ") +
			`, 0::int AS ` + ordColumn + ` FROM ` + s.table + ` WITH NO DATA`
	case ApplyOnce:
		defs := make([]string, len(cfg.cols))
		for i, c := range cols {
			defs[i] = c + " " + cfg.types[i]
		}
		s.createStage = `CREATE TEMP TABLE ` + s.stage + ` (` + strings.Join(defs, ", ") + `, ` + ordColumn + ` int) ON COMMIT DROP`
	}
	from := ` SELECT ` + strings.Join(cols, ", ") + ` FROM ` + s.stage + ` ORDER BY ` + ordColumn
	switch cfg.Mode {
	case InsertOnce:
		s.insert = `INSERT INTO ` + s.table + ` (` + strings.Join(cols, ", ") + `)` + from +
			` ON CONFLICT (` + strings.Join(keys, ", ") + `) DO NOTHING`
	case Upsert:
		var set []string
		for i, c := range cols {
			if !isKey(cfg.keyAt, i) {
				set = append(set, c+` = EXCLUDED.`+c)
			}
		}
		v := cols[cfg.verAt]
		s.upsert = `INSERT INTO ` + s.table + ` AS t (` + strings.Join(cols, ", ") + `)` + from +
			` ON CONFLICT (` + strings.Join(keys, ", ") + `) DO UPDATE SET ` + strings.Join(set, ", ") +
			` WHERE t.` + v + ` IS NULL OR t.` + v + ` < EXCLUDED.` + v
	case ApplyOnce:
		var match []string
		for _, k := range keys {
			match = append(match, `f.`+k+` = s.`+k)
		}
		s.apply = `WITH fresh AS (INSERT INTO ` + s.table + ` (` + strings.Join(keys, ", ") + `) SELECT ` +
			strings.Join(keys, ", ") + ` FROM ` + s.stage + ` ORDER BY ` + ordColumn +
			` ON CONFLICT (` + strings.Join(keys, ", ") + `) DO NOTHING RETURNING ` + strings.Join(keys, ", ") + `)
			DELETE FROM ` + s.stage + ` s WHERE NOT EXISTS (SELECT FROM fresh f WHERE ` + strings.Join(match, " AND ") + `)
			RETURNING s.` + ordColumn
		defs := make([]string, len(cfg.keyAt))
		for i, k := range cfg.keyAt {
			defs[i] = keys[i] + " " + cfg.types[k] + " NOT NULL"
		}
		s.createApplied = `CREATE TABLE IF NOT EXISTS ` + s.table + ` (` + strings.Join(defs, ", ") +
			`, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (` + strings.Join(keys, ", ") + `))`
	}
	return s, nil
}

// Mode returns the sink's mode.
func (s *Sink[T]) Mode() Mode { return s.cfg.Mode }

// Table returns the quoted name of the sink's table.
func (s *Sink[T]) Table() string { return s.table }

// Columns returns the columns of a row, in the order the sink copies them: Options.Columns,
// then the metadata columns it fills (StreamColumn, PositionColumn) when it does.
func (s *Sink[T]) Columns() []string { return append([]string(nil), s.cfg.cols...) }

// Result is what a write did with a batch's messages.
type Result struct {
	// Written counts rows the database inserted or changed (for ApplyOnce: messages
	// applied).
	Written int
	// Skipped counts messages whose effect was there already: a row with their key (a
	// redelivery), a newer version (Upsert), an earlier application (ApplyOnce), or a
	// message of the same key earlier in the batch (for Upsert: older in the batch).
	Skipped int
	// Rejected counts messages failed with a [*RejectedError].
	Rejected int
	// Fallbacks counts InsertOnce COPYs that met a row already there and went through the
	// staging table.
	Fallbacks int
	// Retries counts attempts made again after a deadlock or serialization failure.
	Retries int
}

func (r *Result) add(o Result) {
	r.Written += o.Written
	r.Skipped += o.Skipped
	r.Rejected += o.Rejected
	r.Fallbacks += o.Fallbacks
	r.Retries += o.Retries
}

// Stats are a sink's counts since it was made, over the batches its HandleBatch committed.
type Stats struct {
	Batches int64 // batches handled without error
	// The sums of the batches' [Result] fields.
	Written, Skipped, Rejected, Fallbacks, Retries int64
}

// Stats returns the sink's counts. It is safe to call at any time, from any goroutine.
func (s *Sink[T]) Stats() Stats {
	return Stats{
		Batches:   s.stats.batches.Load(),
		Written:   s.stats.written.Load(),
		Skipped:   s.stats.skipped.Load(),
		Rejected:  s.stats.rejected.Load(),
		Fallbacks: s.stats.fallbacks.Load(),
		Retries:   s.stats.retries.Load(),
	}
}

// HandleBatch writes the batch, in transactions of its own on Options.DB, and implements
// [pipeline.BatchHandler]. It blocks until the rows are committed or it gives up; ctx
// bounds it.
//
// A message whose row is rejected fails with a [*RejectedError] (permanent), the rest of
// the batch being written; duplicates and redeliveries succeed without a second effect.
// Deadlocks and serialization failures are retried, up to Options.MaxAttempts. Any other
// failure (a lost connection, a server restart, a missing table) returns a [*WriteError]:
// the pipeline retries the batch, which the modes make safe to write again.
func (s *Sink[T]) HandleBatch(ctx context.Context, batch []pipeline.Message[T], _ pipeline.BatchInfo) error {
	var res Result
	err := s.write(ctx, nil, batch, &res)
	s.stats.rejected.Add(int64(res.Rejected))
	s.stats.fallbacks.Add(int64(res.Fallbacks))
	s.stats.retries.Add(int64(res.Retries))
	if err != nil {
		return err
	}
	s.stats.batches.Add(1)
	s.stats.written.Add(int64(res.Written))
	s.stats.skipped.Add(int64(res.Skipped))
	return nil
}

// Write writes batch within tx, a transaction of the caller's, which commits it (or rolls
// it back) with whatever else it did: the piece to use when a batch's rows must be written
// atomically with other changes. It blocks until the statements are done; ctx bounds it.
//
// Write works in savepoints of tx: a COPY that meets a row already there, and a row the
// database rejects, cost a savepoint and leave tx usable. Rejected rows fail their message
// as in [Sink.HandleBatch]. Any other error, a [*WriteError] (a deadlock, a serialization
// failure, a lost connection), means tx is to be rolled back: the caller does so and, when
// [Retryable] says so, tries the whole transaction again. Failures marked on messages before such an error
// stand; a caller that retries the batch should retry it from its state before Write.
//
// The counts it returns are for tx: they come true only if tx commits. Write does not
// count in [Sink.Stats].
func (s *Sink[T]) Write(ctx context.Context, tx pgx.Tx, batch []pipeline.Message[T]) (Result, error) {
	var res Result
	if tx == nil {
		return res, fmt.Errorf("pgsink: Write: tx is nil")
	}
	err := s.write(ctx, tx, batch, &res)
	return res, err
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgx.Identifier{n}.Sanitize()
	}
	return out
}

func pick(names []string, at []int) []string {
	out := make([]string, len(at))
	for i, k := range at {
		out[i] = names[k]
	}
	return out
}

func isKey(keyAt []int, i int) bool {
	for _, k := range keyAt {
		if k == i {
			return true
		}
	}
	return false
}
