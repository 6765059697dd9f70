package pgsink

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/internal/pgerr"
)

// RejectedError is the error of a message whose row was rejected: by the database (a
// check constraint, a NOT NULL column, a foreign key, another unique constraint than the
// key's, a value out of range: SQLSTATE classes 22 and 23), by pgx (a value it cannot
// encode for the column's type) or by [Options.Values]. Only that message fails; the rest
// of its batch is written. The failure is permanent: retrying the message cannot succeed.
//
// Match it with errors.As; Err is the cause, so errors.As(err, &pgErr) finds the
// database's *pgconn.PgError when there is one.
type RejectedError struct {
	// Table is the sink's table.
	Table string
	// Stream and Position are the message's Metadata.Stream and Metadata.Position.
	Stream   string
	Position int64
	// Err is why: a *pgconn.PgError, pgx's encoding error, or the error of Options.Values.
	Err error
}

// Error names the table, the message and the cause.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("pgsink: %s rejected the row of the message at position %d of %q: %v", e.Table, e.Position, e.Stream, e.Err)
}

// Unwrap returns the cause.
func (e *RejectedError) Unwrap() error { return e.Err }

// Permanent reports true: a rejected row is bad data, which the pipeline sends to its
// failure handler (a dead-letter stream) rather than retrying.
func (e *RejectedError) Permanent() bool { return true }

// WriteError is the error of a batch the sink could not write, for any other reason than
// a rejected row: the connection was lost, the server restarted, the table is missing,
// deadlocks outlasted MaxAttempts. It is not permanent: the pipeline retries the batch, and
// never commits past it. Nothing the sink wrote in the failed attempt is kept (an attempt
// is one transaction), except parts of a batch that were committed before it while the sink
// was isolating a rejected row; those are written again as no-ops.
type WriteError struct {
	// Table is the sink's table.
	Table string
	// Rows is how many rows the failed attempt held.
	Rows int
	// Attempts is how many attempts were made at them.
	Attempts int
	// Err is the last attempt's error.
	Err error
}

// Error names the table, the rows and the cause.
func (e *WriteError) Error() string {
	return fmt.Sprintf("pgsink: write %d rows to %s (%d attempts): %v", e.Rows, e.Table, e.Attempts, e.Err)
}

// Unwrap returns the cause.
func (e *WriteError) Unwrap() error { return e.Err }

// Retryable reports whether PostgreSQL aborted a transaction in a way that trying it again
// can cure: as a deadlock victim (SQLSTATE 40P01) or on a serialization failure (40001).
// A sink retries these itself in the transactions it owns; a caller of [Sink.Write] owns
// its transaction, and retries it whole when Retryable(err).
func Retryable(err error) bool {
	return hasCode(err, "40P01") || hasCode(err, "40001")
}

func hasCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// rowClass reports whether err is a database error that a row of the attempt can cause
// (data exceptions, class 22; integrity violations, class 23; and "ON CONFLICT DO UPDATE
// cannot affect a row a second time", 21000, for keys the database deems equal and Go
// does not): splitting the attempt finds the row.
func rowClass(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") || pe.Code == "21000"
}

// encodeFailure reports whether a COPY failed because pgx could not encode a value: pgx
// then aborts the COPY with CopyFail, which the server answers with 57014 carrying pgx's
// message. The connection stays usable.
func encodeFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57014" && strings.Contains(pe.Message, "unable to encode")
}

// valueError is an attempt's failure on one row that is known: pgx could not encode it.
type valueError struct {
	row int // index in the attempt's rows
	err error
}

func (e *valueError) Error() string { return e.err.Error() }
func (e *valueError) Unwrap() error { return e.err }

// isNil reports whether db is nil, or a nil pool or connection in the interface.
func isNil(db DB) bool {
	switch d := db.(type) {
	case nil:
		return true
	case *pgxpool.Pool:
		return d == nil
	case *pgx.Conn:
		return d == nil
	}
	return false
}

// LostCreateRace reports whether err is how PostgreSQL fails a CREATE TABLE IF NOT EXISTS
// (or CREATE INDEX IF NOT EXISTS) that ran at the same time as another one creating the same
// table, which succeeded: the table is there, and the error can be ignored. Programs that
// create their table at start, several at once (a fleet of workers), need it: PostgreSQL
// checks IF NOT EXISTS before it writes the catalog rows, so the loser fails on one of them
// (42P07, 42710 or 23505) rather than doing nothing. It is a pure function of err.
func LostCreateRace(err error) bool { return pgerr.LostCreateRace(err) }
