package pgsink

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-go/sluice/internal/optcheck"
	"github.com/sluice-go/sluice/pipeline"
)

// Mode is what a [Sink] does with the rows of a batch.
type Mode int

const (
	// InsertOnce inserts each message's row once: a row whose key is in the table already
	// (a redelivered message) changes nothing. Rows are keyed by the message's stable
	// position (Metadata.Stream, Metadata.Position) unless [Options.Key] names columns.
	InsertOnce Mode = iota
	// Upsert keeps the latest state per key: a row replaces the one with its key only when
	// its version ([Options.Version], by default the message's position) is greater, so
	// an older record never overwrites a newer one, whatever order batches arrive in.
	Upsert
	// ApplyOnce applies each message to aggregates once: the keys of the messages a
	// transaction applies are recorded in [Options.Table] by that same transaction, and
	// [Options.Apply] sees only the messages not applied before.
	ApplyOnce
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case InsertOnce:
		return "InsertOnce"
	case Upsert:
		return "Upsert"
	case ApplyOnce:
		return "ApplyOnce"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DB is what a [Sink] needs of a database: *pgxpool.Pool and *pgx.Conn have it. A sink
// whose batches run concurrently (a batcher's Concurrency above 1) needs a pool: a
// *pgx.Conn is not safe for concurrent use. The sink begins and commits its own
// transactions on it; to write within a transaction of the program's, use [Sink.Write].
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// ValuesFunc appends the column values of m's row to row, in the order of
// [Options.Columns], and returns the extended slice, as append does:
//
//	func(row []any, m *pipeline.Message[Order]) ([]any, error) {
//		return append(row, m.Data.ID, m.Data.Customer, m.Data.Amount), nil
//	}
//
// row is empty, with room for the values; the values are encoded by pgx (any type pgx
// encodes for the column's type). An error rejects the message: it fails with a
// [*RejectedError] wrapping the error, and the rest of the batch is written. The function
// may be called several times for one message and from several goroutines at once: it
// must depend on m only, and must not keep row or m.
type ValuesFunc[T any] func(row []any, m *pipeline.Message[T]) ([]any, error)

// ApplyFunc applies the messages of a batch that were not applied before, within tx, the
// transaction that records them as applied (see [ApplyOnce]). fresh.Table names a
// temporary table holding their rows, for SQL; fresh.Messages are the messages
// themselves, for Go. When ApplyFunc returns an error the transaction is rolled back: none
// of the messages counts as applied. It must not commit or roll back tx.
//
// ApplyFunc may be called several times for one batch (after a deadlock, or on parts of a
// batch with a rejected row), each time in a new transaction; it is called from several
// goroutines at once when batches run concurrently. To keep concurrent writers free of
// deadlocks, update aggregate rows in a fixed order (an ORDER BY on the aggregate's key in
// an INSERT … SELECT … ON CONFLICT DO UPDATE).
type ApplyFunc[T any] func(ctx context.Context, tx pgx.Tx, fresh Fresh[T]) error

// Fresh is what an [ApplyFunc] applies: the messages of a batch that were not applied
// before, in key order.
type Fresh[T any] struct {
	// Table is the quoted name of a temporary table, ready to put into SQL, holding one row
	// per message of Messages: Options.Columns (typed by Options.ColumnTypes), then, when the
	// messages are keyed by position, Options.StreamColumn and Options.PositionColumn, and
	// the sink's own pgsink_ord (the row's place in the batch). Select the columns by name.
	// It lives until the transaction ends.
	Table string
	// Messages are the messages, in key order. They belong to the batch: do not keep them.
	Messages []*pipeline.Message[T]
}

// Options configures a [Sink]. Zero values mean the documented defaults; [New] reports
// every invalid field at once.
type Options[T any] struct {
	// DB is the database: a *pgxpool.Pool (or a *pgx.Conn when batches never run
	// concurrently). Required.
	DB DB

	// Mode is [InsertOnce], [Upsert] or [ApplyOnce]. Default: InsertOnce.
	Mode Mode

	// Table is the table the sink writes: "name" or "schema.name", used as written (it is
	// quoted, so "Orders" and "orders" are different tables). For InsertOnce and Upsert it
	// is the target table, which must exist with a unique index or constraint on the key
	// columns. For ApplyOnce it is the table of applied keys, created if missing (see the
	// package documentation). Required.
	Table string

	// Columns are the columns Values fills, in order. Required for InsertOnce and Upsert;
	// for ApplyOnce, the columns of the rows Fresh.Table holds (none: Fresh.Table holds
	// the keys only). Default: none.
	Columns []string

	// Values makes a message's row. Required when Columns is not empty.
	Values ValuesFunc[T]

	// Key names the columns, among Columns, that identify a row. Required for Upsert.
	// Default (InsertOnce, ApplyOnce): the message's stable position, written to
	// StreamColumn and PositionColumn.
	Key []string

	// StreamColumn receives Metadata.Stream when rows are keyed by position (Key empty).
	// Default: "stream".
	StreamColumn string

	// PositionColumn receives Metadata.Position when rows are keyed by position (Key
	// empty), and, for Upsert without Version, is the version. Default: "position".
	PositionColumn string

	// Version names the column, among Columns and not in Key, whose greater value wins
	// (Upsert only): a number or a timestamp, never NULL in the rows Values makes. Default:
	// the message's position, written to PositionColumn (which orders the records of a
	// key when they all come from one stream).
	Version string

	// ColumnTypes are the SQL types of Columns ("bigint", "numeric(12,2)", "date"), for the
	// temporary table of ApplyOnce (ApplyOnce only; InsertOnce and Upsert take the types
	// of Table's columns). They are SQL written by the program, never input. Required
	// with Columns for ApplyOnce.
	ColumnTypes []string

	// Apply applies the messages not applied before (ApplyOnce only). Required for
	// ApplyOnce.
	Apply ApplyFunc[T]

	// MaxAttempts bounds the attempts at one batch (or part of one) when PostgreSQL aborts
	// it as a deadlock victim (40P01) or on a serialization failure (40001); after the last
	// one, the batch fails with a plain error, which the pipeline retries. Default: 5.
	MaxAttempts int

	// RetryBackoff is the first wait before another attempt; it doubles up to
	// MaxRetryBackoff, with jitter. Default: 10ms.
	RetryBackoff time.Duration

	// MaxRetryBackoff caps the wait between attempts. Default: 1s.
	MaxRetryBackoff time.Duration
}

// Defaults of [Options].
const (
	DefaultStreamColumn    = "stream"
	DefaultPositionColumn  = "position"
	DefaultMaxAttempts     = 5
	DefaultRetryBackoff    = 10 * time.Millisecond
	DefaultMaxRetryBackoff = time.Second
)

// ordColumn is the staging tables' column holding a row's place in the batch.
const ordColumn = "pgsink_ord"

// config is the validated form of Options.
type config[T any] struct {
	Options[T]
	table      pgx.Identifier
	byPosition bool     // rows keyed by (stream, position)
	cols       []string // the columns of a row: Columns, then the metadata columns written
	types      []string // ApplyOnce: the SQL type of each of cols
	streamAt   int      // index in cols of StreamColumn, or -1
	posAt      int      // index in cols of PositionColumn, or -1
	keyAt      []int    // indexes in cols of the key columns
	verAt      int      // Upsert: index in cols of the version column
}

func (o Options[T]) check() (config[T], error) {
	c := optcheck.New("pgsink", nil)
	cfg := config[T]{Options: o, streamAt: -1, posAt: -1, verAt: -1}
	if isNil(o.DB) {
		c.Bad("Options.DB", "required")
	}
	if o.Mode < InsertOnce || o.Mode > ApplyOnce {
		c.Bad("Options.Mode", "unknown mode %d", int(o.Mode))
	}
	if o.Table == "" {
		c.Bad("Options.Table", "required")
	} else {
		parts := strings.Split(o.Table, ".")
		if len(parts) > 2 {
			c.Bad("Options.Table", "%q has more than one '.': want name or schema.name", o.Table)
		}
		for _, p := range parts {
			if why := badIdent(p); why != "" {
				c.Bad("Options.Table", "%q: %s", o.Table, why)
				break
			}
		}
		cfg.table = pgx.Identifier(parts)
	}

	// Columns and the values that fill them.
	seen := map[string]bool{}
	for i, col := range o.Columns {
		field := fmt.Sprintf("Options.Columns[%d]", i)
		switch {
		case badIdent(col) != "":
			c.Bad(field, "%q: %s", col, badIdent(col))
		case col == ordColumn:
			c.Bad(field, "%q is the sink's own staging column", col)
		case seen[col]:
			c.Bad(field, "%q is listed twice", col)
		}
		seen[col] = true
	}
	if len(o.Columns) == 0 && o.Mode != ApplyOnce {
		c.Bad("Options.Columns", "required for %v", o.Mode)
	}
	if len(o.Columns) > 0 && o.Values == nil {
		c.Bad("Options.Values", "required with Columns")
	}
	if len(o.Columns) == 0 && o.Values != nil && o.Mode == ApplyOnce {
		c.Bad("Options.Values", "only with Columns")
	}

	// The key.
	cfg.byPosition = len(o.Key) == 0 && o.Mode != Upsert
	if len(o.Key) == 0 && o.Mode == Upsert {
		c.Bad("Options.Key", "required for Upsert: the columns whose latest state the table keeps")
	}
	keySeen := map[string]bool{}
	for i, k := range o.Key {
		field := fmt.Sprintf("Options.Key[%d]", i)
		switch {
		case !seen[k]:
			c.Bad(field, "%q is not one of Columns", k)
		case keySeen[k]:
			c.Bad(field, "%q is listed twice", k)
		}
		keySeen[k] = true
	}

	// The version (Upsert).
	if o.Version != "" {
		switch {
		case o.Mode != Upsert:
			c.Bad("Options.Version", "only with Mode Upsert (Mode is %v)", o.Mode)
		case !seen[o.Version]:
			c.Bad("Options.Version", "%q is not one of Columns", o.Version)
		case keySeen[o.Version]:
			c.Bad("Options.Version", "%q is part of Key: a version must not be", o.Version)
		}
	}

	// The metadata columns.
	cfg.StreamColumn, cfg.PositionColumn = o.StreamColumn, o.PositionColumn
	if cfg.StreamColumn == "" {
		cfg.StreamColumn = DefaultStreamColumn
	}
	if cfg.PositionColumn == "" {
		cfg.PositionColumn = DefaultPositionColumn
	}
	writeStream := cfg.byPosition
	writePos := cfg.byPosition || (o.Mode == Upsert && o.Version == "")
	metaCol := func(field, name, given string, used bool, when string) {
		switch {
		case given != "" && !used:
			c.Bad(field, "only %s", when)
		case !used:
		case badIdent(name) != "":
			c.Bad(field, "%q: %s", name, badIdent(name))
		case seen[name]:
			c.Bad(field, "%q is one of Columns too: the sink fills it from the message's metadata", name)
		case name == ordColumn:
			c.Bad(field, "%q is the sink's own staging column", name)
		}
	}
	metaCol("Options.StreamColumn", cfg.StreamColumn, o.StreamColumn, writeStream, "when rows are keyed by position (Key empty)")
	metaCol("Options.PositionColumn", cfg.PositionColumn, o.PositionColumn, writePos, "when rows are keyed by position (Key empty) or, for Upsert, versioned by it (Version empty)")
	if writeStream && writePos && cfg.StreamColumn == cfg.PositionColumn {
		c.Bad("Options.PositionColumn", "%q is StreamColumn too", cfg.PositionColumn)
	}

	// ApplyOnce's types and function.
	if o.Mode == ApplyOnce {
		if o.Apply == nil {
			c.Bad("Options.Apply", "required for ApplyOnce")
		}
		if len(o.ColumnTypes) != len(o.Columns) {
			c.Bad("Options.ColumnTypes", "want one SQL type per column of Columns (%d), got %d", len(o.Columns), len(o.ColumnTypes))
		}
		for i, t := range o.ColumnTypes {
			if strings.TrimSpace(t) == "" || strings.ContainsAny(t, ";\x00") {
				c.Bad(fmt.Sprintf("Options.ColumnTypes[%d]", i), "%q is not a type name", t)
			}
		}
	} else {
		if o.Apply != nil {
			c.Bad("Options.Apply", "only with Mode ApplyOnce (Mode is %v)", o.Mode)
		}
		if len(o.ColumnTypes) > 0 {
			c.Bad("Options.ColumnTypes", "only with Mode ApplyOnce (Mode is %v): the sink takes the types of Table's columns", o.Mode)
		}
	}

	// Retries.
	if o.MaxAttempts < 0 {
		c.Bad("Options.MaxAttempts", "must be >= 0, got %d", o.MaxAttempts)
	}
	if o.RetryBackoff < 0 {
		c.Bad("Options.RetryBackoff", "must be >= 0, got %v", o.RetryBackoff)
	}
	if o.MaxRetryBackoff < 0 {
		c.Bad("Options.MaxRetryBackoff", "must be >= 0, got %v", o.MaxRetryBackoff)
	}
	if o.RetryBackoff > 0 && o.MaxRetryBackoff > 0 && o.MaxRetryBackoff < o.RetryBackoff {
		c.Bad("Options.MaxRetryBackoff", "%v is less than RetryBackoff (%v)", o.MaxRetryBackoff, o.RetryBackoff)
	}
	if err := c.Err(); err != nil {
		return cfg, err
	}

	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.MaxRetryBackoff == 0 {
		cfg.MaxRetryBackoff = max(DefaultMaxRetryBackoff, cfg.RetryBackoff)
	}
	cfg.cols = slices.Clone(o.Columns)
	cfg.types = slices.Clone(o.ColumnTypes)
	if writeStream {
		cfg.streamAt = len(cfg.cols)
		cfg.cols = append(cfg.cols, cfg.StreamColumn)
		cfg.types = append(cfg.types, "text")
	}
	if writePos {
		cfg.posAt = len(cfg.cols)
		cfg.cols = append(cfg.cols, cfg.PositionColumn)
		cfg.types = append(cfg.types, "bigint")
	}
	if cfg.byPosition {
		cfg.keyAt = []int{cfg.streamAt, cfg.posAt}
	} else {
		for _, k := range o.Key {
			cfg.keyAt = append(cfg.keyAt, slices.Index(cfg.cols, k))
		}
	}
	switch {
	case o.Version != "":
		cfg.verAt = slices.Index(cfg.cols, o.Version)
	case o.Mode == Upsert:
		cfg.verAt = cfg.posAt
	}
	return cfg, nil
}

// badIdent says what is wrong with name as an identifier, or "" when nothing is.
func badIdent(name string) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > 63:
		return "longer than 63 bytes (PostgreSQL would truncate it)"
	case strings.ContainsRune(name, 0):
		return "contains a NUL byte"
	}
	return ""
}
