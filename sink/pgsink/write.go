package pgsink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-go/sluice/pipeline"
)

// write writes batch: in transactions of its own on the DB when outer is nil, else in
// savepoints of outer.
func (s *Sink[T]) write(ctx context.Context, outer pgx.Tx, batch []pipeline.Message[T], res *Result) error {
	rows, err := s.prepare(batch, res)
	if err != nil || len(rows) == 0 {
		return err
	}
	if err := s.ensureReady(ctx, outer); err != nil {
		return &WriteError{Table: s.table, Rows: len(rows), Attempts: 1, Err: err}
	}
	return s.writeRows(ctx, outer, rows, res)
}

// writeRows writes rows, isolating the rows the database rejects: a row pgx cannot
// encode is known at once and left out; a constraint or data error splits the rows in
// halves, each written on its own, down to the one row that fails.
func (s *Sink[T]) writeRows(ctx context.Context, outer pgx.Tx, rows []row[T], res *Result) error {
	for len(rows) > 0 {
		err := s.attempts(ctx, outer, rows, res)
		if err == nil {
			return nil
		}
		var ve *valueError
		if errors.As(err, &ve) {
			s.reject(rows[ve.row].m, res, ve.err)
			rows = append(rows[:ve.row:ve.row], rows[ve.row+1:]...) // a copy: rows may be a caller's half
			continue
		}
		if !rowClass(err) || ctx.Err() != nil {
			return err
		}
		if len(rows) == 1 {
			s.reject(rows[0].m, res, unwrapWrite(err))
			return nil
		}
		mid := len(rows) / 2
		if err := s.writeRows(ctx, outer, rows[:mid], res); err != nil {
			return err
		}
		rows = rows[mid:]
	}
	return nil
}

// attempts makes attempts at rows until one succeeds, fails other than by a deadlock or a
// serialization failure, or MaxAttempts were made. In a caller's transaction it makes one.
func (s *Sink[T]) attempts(ctx context.Context, outer pgx.Tx, rows []row[T], res *Result) error {
	backoff := s.cfg.RetryBackoff
	for n := 1; ; n++ {
		var r Result
		err := s.attempt(ctx, outer, rows, &r)
		if err == nil {
			res.add(r)
			return nil
		}
		res.Fallbacks += r.Fallbacks
		var ve *valueError
		if errors.As(err, &ve) {
			return err
		}
		if rowClass(err) || outer != nil || !Retryable(err) || n >= s.cfg.MaxAttempts {
			return &WriteError{Table: s.table, Rows: len(rows), Attempts: n, Err: err}
		}
		res.Retries++
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, s.cfg.MaxRetryBackoff)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return &WriteError{Table: s.table, Rows: len(rows), Attempts: n, Err: errors.Join(err, ctx.Err())}
		case <-t.C:
		}
	}
}

// unwrapWrite returns the cause of a *WriteError, which a rejected row's error carries
// without the batch's framing.
func unwrapWrite(err error) error {
	var we *WriteError
	if errors.As(err, &we) {
		return we.Err
	}
	return err
}

// attempt writes rows once: each transaction it commits is a complete write of rows.
func (s *Sink[T]) attempt(ctx context.Context, outer pgx.Tx, rows []row[T], res *Result) error {
	switch s.cfg.Mode {
	case InsertOnce:
		if !redelivered(rows) {
			n, err := s.copyDirect(ctx, outer, rows)
			if err == nil {
				res.Written += int(n)
				return nil
			}
			if !hasCode(err, "23505") {
				return err
			}
			// A row with a key of the batch is there already: the batch is a redelivery, or
			// another writer has some of its rows. The COPY changed nothing; insert what is
			// missing through the staging table.
			res.Fallbacks++
		}
		return s.inTx(ctx, outer, func(tx pgx.Tx) error {
			if err := s.fillStage(ctx, tx, rows); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, s.insert)
			if err != nil {
				return err
			}
			res.Written += int(tag.RowsAffected())
			res.Skipped += len(rows) - int(tag.RowsAffected())
			return s.dropStageIn(ctx, tx, outer)
		})
	case Upsert:
		return s.inTx(ctx, outer, func(tx pgx.Tx) error {
			if err := s.fillStage(ctx, tx, rows); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, s.upsert)
			if err != nil {
				return err
			}
			res.Written += int(tag.RowsAffected())
			res.Skipped += len(rows) - int(tag.RowsAffected())
			return s.dropStageIn(ctx, tx, outer)
		})
	default: // ApplyOnce
		return s.inTx(ctx, outer, func(tx pgx.Tx) error {
			if err := s.fillStage(ctx, tx, rows); err != nil {
				return err
			}
			stale := make([]bool, len(rows))
			q, err := tx.Query(ctx, s.apply)
			if err != nil {
				return err
			}
			var ord int32
			_, err = pgx.ForEachRow(q, []any{&ord}, func() error {
				if ord >= 0 && int(ord) < len(stale) {
					stale[ord] = true
				}
				return nil
			})
			if err != nil {
				return err
			}
			fresh := Fresh[T]{Table: s.stage}
			for i := range rows {
				if !stale[i] {
					fresh.Messages = append(fresh.Messages, rows[i].m)
				}
			}
			if len(fresh.Messages) > 0 {
				if err := s.cfg.Apply(ctx, tx, fresh); err != nil {
					return err
				}
			}
			res.Written += len(fresh.Messages)
			res.Skipped += len(rows) - len(fresh.Messages)
			return s.dropStageIn(ctx, tx, outer)
		})
	}
}

// redelivered reports whether a message of rows has been handled before: its batch is
// then likely to be there already, and the staging table is the shorter way.
func redelivered[T any](rows []row[T]) bool {
	for i := range rows {
		if rows[i].m.Attempt() > 1 {
			return true
		}
	}
	return false
}

// inTx runs fn in a transaction: its own (outer nil) or a savepoint of outer. It commits
// when fn succeeds, and rolls back otherwise (also when fn panics).
func (s *Sink[T]) inTx(ctx context.Context, outer pgx.Tx, fn func(tx pgx.Tx) error) (err error) {
	var tx pgx.Tx
	if outer != nil {
		tx, err = outer.Begin(ctx)
	} else {
		tx, err = s.cfg.DB.Begin(ctx)
	}
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			// Also when fn panics. A rollback after an error that broke the connection
			// fails too; the error that matters is fn's.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	done = true // a failed commit ends the transaction too
	return tx.Commit(ctx)
}

// copyDirect copies rows straight into the table: in a statement of its own (which
// commits by itself), or in a savepoint of outer.
func (s *Sink[T]) copyDirect(ctx context.Context, outer pgx.Tx, rows []row[T]) (int64, error) {
	src := &copySource[T]{rows: rows, i: -1}
	var n int64
	var err error
	if outer == nil {
		n, err = src.guard(func() (int64, error) { return s.cfg.DB.CopyFrom(ctx, s.cfg.table, s.cfg.cols, src) })
	} else {
		err = s.inTx(ctx, outer, func(tx pgx.Tx) error {
			var err error
			n, err = src.guard(func() (int64, error) { return tx.CopyFrom(ctx, s.cfg.table, s.cfg.cols, src) })
			return err
		})
	}
	return n, src.blame(err)
}

// fillStage creates the staging table in tx and copies rows into it, each with its index
// in rows as its ordinal.
func (s *Sink[T]) fillStage(ctx context.Context, tx pgx.Tx, rows []row[T]) error {
	if _, err := tx.Exec(ctx, s.createStage); err != nil {
		return err
	}
	src := &copySource[T]{rows: rows, i: -1, ord: len(s.cfg.cols)}
	_, err := src.guard(func() (int64, error) { return tx.CopyFrom(ctx, s.stageID, s.stageCols, src) })
	return src.blame(err)
}

// dropStageIn drops the staging table when tx is a savepoint: another attempt in the
// caller's transaction makes it again. A transaction of the sink's own drops it on commit.
func (s *Sink[T]) dropStageIn(ctx context.Context, tx, outer pgx.Tx) error {
	if outer == nil {
		return nil
	}
	_, err := tx.Exec(ctx, s.dropStage)
	return err
}

// ensureReady prepares the table before the sink's first write: for ApplyOnce it creates the
// applied table when it is missing; for InsertOnce and Upsert it checks that the table has a
// unique index on exactly the key's columns, without which a redelivered batch would be
// inserted twice by the fast path (and ON CONFLICT would fail). It does so once per sink, in
// outer when it is given (the table may be the caller transaction's own), else in a
// transaction of its own; until it succeeds, every write fails.
func (s *Sink[T]) ensureReady(ctx context.Context, outer pgx.Tx) error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.ready {
		return nil
	}
	var err error
	if s.cfg.Mode == ApplyOnce {
		err = s.inTx(ctx, nil, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, s.createApplied)
			return err
		})
		// Two programs creating the table at once: one of them loses the race on the
		// catalog, and the table is there.
		if LostCreateRace(err) {
			err = nil
		}
	} else {
		check := func(tx pgx.Tx) error { return s.checkKey(ctx, tx) }
		if outer != nil {
			err = check(outer)
		} else {
			err = s.inTx(ctx, nil, check)
		}
	}
	if err != nil {
		return err
	}
	s.ready = true
	return nil
}

// keyIndexQuery reports whether table $1 exists and whether it has a valid, non-partial
// unique index on plain columns whose key columns are exactly $2 (sorted byte-wise), the
// index ON CONFLICT ($2) infers.
const keyIndexQuery = `SELECT to_regclass($1) IS NOT NULL, EXISTS (
	SELECT FROM pg_index i
	WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid
		AND i.indpred IS NULL AND i.indexprs IS NULL
		AND ARRAY(SELECT a.attname::text COLLATE "C" FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE k.n <= i.indnkeyatts ORDER BY 1) = $2::text[])`

// errNoKeyIndex is the cause of a WriteError when the table has no unique index on the key.
var errNoKeyIndex = errors.New("no unique index or constraint on exactly the key's columns")

func (s *Sink[T]) checkKey(ctx context.Context, tx pgx.Tx) error {
	var exists, indexed bool
	if err := tx.QueryRow(ctx, keyIndexQuery, s.table, s.keyNames).Scan(&exists, &indexed); err != nil {
		return err
	}
	switch {
	case !exists:
		return fmt.Errorf("table %s does not exist", s.table)
	case !indexed:
		return fmt.Errorf("%w (%s): a redelivered batch would be written twice", errNoKeyIndex, strings.Join(s.keyNames, ", "))
	}
	return nil
}

// reject fails m with a *RejectedError.
func (s *Sink[T]) reject(m *pipeline.Message[T], res *Result, err error) {
	m.Fail(&RejectedError{Table: s.table, Stream: m.Metadata.Stream, Position: m.Metadata.Position, Err: err})
	res.Rejected++
}

// copySource feeds rows to a COPY and remembers which row it gave last, so that an error
// pgx met encoding a value can be put on that row.
type copySource[T any] struct {
	rows    []row[T]
	i       int
	ord     int // when > 0, the index at which to append the row's ordinal
	aborted atomic.Bool
}

func (c *copySource[T]) Next() bool {
	c.i++
	return c.i < len(c.rows) && !c.aborted.Load()
}

func (c *copySource[T]) Values() ([]any, error) {
	if c.aborted.Load() {
		return nil, errCopyAborted
	}
	v := c.rows[c.i].vals
	if c.ord > 0 {
		v = v[:c.ord+1]
		v[c.ord] = int32(c.i)
	}
	return v, nil
}

func (c *copySource[T]) Err() error {
	if c.aborted.Load() {
		return errCopyAborted
	}
	return nil
}

var errCopyAborted = errors.New("pgsink: COPY abandoned")

// guard runs a COPY, turning the panic of pgx v5.7.5 when the server ends the connection
// during a COPY (a "close of closed channel" in pgconn, jackc/pgx#2364, fixed in v5.7.6)
// into the connection error it stands for: a server restart is a transient failure, not a
// bug of the sink's. The connection is closed by then, and the pool drops it; the source
// is marked abandoned, so that pgx's encoding goroutine, which the panic left running,
// stops at its next row. Other panics go on.
func (c *copySource[T]) guard(copy func() (int64, error)) (n int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			re, ok := p.(runtime.Error)
			if !ok || !strings.Contains(re.Error(), "close of closed channel") {
				panic(p)
			}
			c.aborted.Store(true)
			n, err = 0, &connLostError{panic: re.Error()}
		}
	}()
	return copy()
}

// connLostError is the error of a COPY whose connection the server closed, as pgx v5.7.5
// reports it by a panic.
type connLostError struct{ panic string }

func (e *connLostError) Error() string {
	return "pgsink: the server closed the connection during COPY (pgx: " + e.panic + ")"
}

// blame turns a COPY's error into a *valueError on the row pgx could not encode, when that
// is what it is.
func (c *copySource[T]) blame(err error) error {
	if err == nil || !encodeFailure(err) || c.i < 0 || c.i >= len(c.rows) {
		return err
	}
	var pe *pgconn.PgError
	errors.As(err, &pe)
	return &valueError{row: c.i, err: errors.New(pe.Message)}
}
