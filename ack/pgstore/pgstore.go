package pgstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/internal/pgerr"
)

// DB is what a Store needs of a database handle: *pgxpool.Pool, *pgx.Conn and pgx.Tx all
// have it. A *pgx.Conn or a pgx.Tx is not safe for concurrent use, so a Store over one must
// not be used concurrently either; a pool is.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Options configures a Store.
type Options struct {
	// Table is the table's name, optionally qualified by a schema ("sluice.checkpoints"):
	// letters, digits and underscores, not starting with a digit. Default:
	// "sluice_checkpoints".
	Table string
	// NoCreate, when true, does not create the table: it must exist, with the columns shown
	// in the package documentation. Default: false, the table is created if missing.
	NoCreate bool
}

// DefaultTable is the table a Store uses when Options.Table is empty.
const DefaultTable = "sluice_checkpoints"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Store is an [ack.CheckpointStore] keeping checkpoints in a PostgreSQL table. It is safe
// for concurrent use when its DB is (a pool is).
type Store struct {
	db     DB
	table  string // quoted
	load   string
	insert string
	update string

	insertBefore, updateBefore string // insert and update, fenced by a save deadline
}

var _ ack.CheckpointStore = (*Store)(nil)

// New returns a store over db, creating its table if it is missing (unless
// Options.NoCreate). It blocks for the CREATE TABLE round trip; ctx bounds it. An invalid
// table name is reported naming Options.Table.
func New(ctx context.Context, db DB, opts Options) (*Store, error) {
	if isNil(db) {
		return nil, errors.New("pgstore: db is nil")
	}
	name := opts.Table
	if name == "" {
		name = DefaultTable
	}
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("pgstore: Options.Table: %q has more than one '.': want table or schema.table", name)
	}
	for _, p := range parts {
		if !identRE.MatchString(p) || len(p) > 63 {
			return nil, fmt.Errorf("pgstore: Options.Table: %q is not a valid name: want letters, digits and underscores, not starting with a digit, at most 63 bytes per part", name)
		}
	}
	s := &Store{db: db, table: pgx.Identifier(parts).Sanitize()}
	s.load = `SELECT "offset" FROM ` + s.table + ` WHERE key = $1`
	s.insert = `INSERT INTO ` + s.table + ` (key, pipeline, source, "offset") VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO NOTHING`
	// Compare and swap: the value replaces the one Save compared it with, and only that.
	s.update = `UPDATE ` + s.table + ` SET "offset" = $2, updated_at = now() WHERE key = $1 AND "offset" = $3`
	// The same, taking effect only before a save deadline ($5 and $4), by the database's
	// clock: see ack.WithSaveDeadline.
	s.insertBefore = `INSERT INTO ` + s.table + ` (key, pipeline, source, "offset")
		SELECT $1, $2, $3, $4 WHERE statement_timestamp() < $5
		ON CONFLICT (key) DO NOTHING`
	s.updateBefore = s.update + ` AND statement_timestamp() < $4`
	if !opts.NoCreate {
		create := `CREATE TABLE IF NOT EXISTS ` + s.table + ` (
			key        text PRIMARY KEY,
			pipeline   text NOT NULL,
			source     text NOT NULL,
			"offset"   text COLLATE "C" NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now()
		)`
		if _, err := db.Exec(ctx, create); err != nil && !pgerr.LostCreateRace(err) {
			return nil, fmt.Errorf("pgstore: create table %s: %w", s.table, err)
		}
	}
	return s, nil
}

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

// Table returns the table's quoted name.
func (s *Store) Table() string { return s.table }

// Load returns the offset saved for key. It blocks for one query; when ctx ends first, the
// error wraps ctx's error.
func (s *Store) Load(ctx context.Context, key string) (string, bool, error) {
	if key == "" {
		return "", false, fmt.Errorf("pgstore: load: %w", ack.ErrEmptyKey)
	}
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	off, found, err := s.read(ctx, key)
	if err != nil {
		return "", false, withCtxErr(ctx, fmt.Errorf("pgstore: load %q from %s: %w", key, s.table, err))
	}
	return off, found, nil
}

// read returns key's value, found false when there is no row, and the driver's error.
func (s *Store) read(ctx context.Context, key string) (string, bool, error) {
	var off string
	err := s.db.QueryRow(ctx, s.load, key).Scan(&off)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return off, true, nil
}

// Save records offset as key's committed position unless the saved value is a later
// position ([ack.Supersedes]; see "Positions never move backwards" in the package
// documentation), in which case it changes nothing and returns nil. It blocks for two
// statements (a SELECT, then an INSERT or a conditional UPDATE), each of which PostgreSQL
// commits durably before it returns, and for more only while other saves of the same key
// change the row in between.
//
// With a save deadline on ctx ([ack.WithSaveDeadline]), each statement takes effect only if
// the database starts it before that time (by the database's clock); a save that reaches it
// later changes nothing and returns an error wrapping [ack.ErrSaveDeadline].
//
// With a context that has already ended, Save returns its error and changes nothing. When
// ctx ends while a statement runs, Save returns an error wrapping ctx's error, and whether
// the statement still takes effect depends on the connection: see "Cancellation" in the
// package documentation.
func (s *Store) Save(ctx context.Context, key, offset string) error {
	if key == "" {
		return fmt.Errorf("pgstore: save: %w", ack.ErrEmptyKey)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pipeline, source, ok := strings.Cut(key, "|")
	if !ok {
		pipeline, source = "", key
	}
	deadline, fenced := ack.SaveDeadline(ctx)
	for {
		var tag pgconn.CommandTag
		saved, found, err := s.read(ctx, key)
		switch {
		case err != nil:
		case !found && fenced:
			tag, err = s.db.Exec(ctx, s.insertBefore, key, pipeline, source, offset, deadline)
		case !found:
			tag, err = s.db.Exec(ctx, s.insert, key, pipeline, source, offset)
		case saved == offset || !ack.Supersedes(offset, saved):
			return nil // there already, or behind what is there
		case fenced:
			tag, err = s.db.Exec(ctx, s.updateBefore, key, offset, saved, deadline)
		default:
			tag, err = s.db.Exec(ctx, s.update, key, offset, saved)
		}
		if err != nil {
			return withCtxErr(ctx, fmt.Errorf("pgstore: save %q to %s: %w", key, s.table, err))
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		if fenced {
			// No row changed: either another save changed the row since we read it, or the
			// statement ran after the deadline. Read again: the row as it was means the latter.
			again, foundAgain, err := s.read(ctx, key)
			if err != nil {
				return withCtxErr(ctx, fmt.Errorf("pgstore: save %q to %s: %w", key, s.table, err))
			}
			if again == saved && foundAgain == found {
				return fmt.Errorf("pgstore: save %q to %s: %w (%s)", key, s.table, ack.ErrSaveDeadline, deadline.Format(time.RFC3339Nano))
			}
		}
		// Another save inserted or changed the row since we read it: compare again.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// withCtxErr makes err wrap ctx's error too when ctx has ended, whatever error the driver
// reported (a server's "canceling statement" error, a closed connection), so that callers
// can test for cancellation with errors.Is.
func withCtxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}
