package pgsink_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/pgsink"
)

// fakeDB is a DB that is never called: option validation does no I/O.
type fakeDB struct{}

func (fakeDB) Begin(context.Context) (pgx.Tx, error) { panic("no I/O expected") }
func (fakeDB) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	panic("no I/O expected")
}

func TestOptionsValidation(t *testing.T) {
	apply := func(context.Context, pgx.Tx, pgsink.Fresh[Event]) error { return nil }
	valid := pgsink.Options[Event]{DB: fakeDB{}, Table: "events", Columns: eventCols, Values: eventValues}
	for _, tc := range []struct {
		name   string
		change func(o *pgsink.Options[Event])
		fields []string // the fields reported, in order; none: valid
	}{
		{"valid InsertOnce", func(o *pgsink.Options[Event]) {}, nil},
		{"valid InsertOnce by key", func(o *pgsink.Options[Event]) { o.Key = []string{"id"} }, nil},
		{"valid schema-qualified table", func(o *pgsink.Options[Event]) { o.Table = "sales.Events 2026" }, nil},
		{"valid Upsert by position", func(o *pgsink.Options[Event]) { o.Mode, o.Key = pgsink.Upsert, []string{"id"} }, nil},
		{"valid Upsert by version", func(o *pgsink.Options[Event]) {
			o.Mode, o.Key, o.Version = pgsink.Upsert, []string{"id"}, "amount"
		}, nil},
		{"valid ApplyOnce", func(o *pgsink.Options[Event]) {
			o.Mode, o.Apply, o.ColumnTypes = pgsink.ApplyOnce, apply, []string{"bigint", "text", "bigint"}
		}, nil},
		{"valid ApplyOnce without columns", func(o *pgsink.Options[Event]) {
			o.Mode, o.Apply, o.Columns, o.Values = pgsink.ApplyOnce, apply, nil, nil
		}, nil},
		{"nothing", func(o *pgsink.Options[Event]) { *o = pgsink.Options[Event]{} },
			[]string{"Options.DB", "Options.Table", "Options.Columns"}},
		{"typed nil pool", func(o *pgsink.Options[Event]) { o.DB = (*pgxpool.Pool)(nil) }, []string{"Options.DB"}},
		{"bad mode", func(o *pgsink.Options[Event]) { o.Mode = 7 }, []string{"Options.Mode"}},
		{"table with two dots", func(o *pgsink.Options[Event]) { o.Table = "a.b.c" }, []string{"Options.Table"}},
		{"table with an empty part", func(o *pgsink.Options[Event]) { o.Table = "a." }, []string{"Options.Table"}},
		{"long table name", func(o *pgsink.Options[Event]) { o.Table = strings.Repeat("t", 64) }, []string{"Options.Table"}},
		{"bad columns", func(o *pgsink.Options[Event]) { o.Columns = []string{"id", "", "id", "pgsink_ord"} },
			[]string{"Options.Columns[1]", "Options.Columns[2]", "Options.Columns[3]"}},
		{"no Values", func(o *pgsink.Options[Event]) { o.Values = nil }, []string{"Options.Values"}},
		{"key not a column", func(o *pgsink.Options[Event]) { o.Key = []string{"id", "nope", "id"} },
			[]string{"Options.Key[1]", "Options.Key[2]"}},
		{"metadata column among Columns", func(o *pgsink.Options[Event]) { o.PositionColumn = "id" },
			[]string{"Options.PositionColumn"}},
		{"metadata columns alike", func(o *pgsink.Options[Event]) { o.StreamColumn, o.PositionColumn = "pos", "pos" },
			[]string{"Options.PositionColumn"}},
		{"metadata columns unused", func(o *pgsink.Options[Event]) {
			o.Key, o.StreamColumn, o.PositionColumn = []string{"id"}, "s", "p"
		}, []string{"Options.StreamColumn", "Options.PositionColumn"}},
		{"Upsert without key", func(o *pgsink.Options[Event]) { o.Mode = pgsink.Upsert }, []string{"Options.Key"}},
		{"Upsert version in key", func(o *pgsink.Options[Event]) {
			o.Mode, o.Key, o.Version = pgsink.Upsert, []string{"id"}, "id"
		}, []string{"Options.Version"}},
		{"Upsert version not a column", func(o *pgsink.Options[Event]) {
			o.Mode, o.Key, o.Version = pgsink.Upsert, []string{"id"}, "v"
		}, []string{"Options.Version"}},
		{"Upsert stream column", func(o *pgsink.Options[Event]) {
			o.Mode, o.Key, o.StreamColumn = pgsink.Upsert, []string{"id"}, "s"
		}, []string{"Options.StreamColumn"}},
		{"version outside Upsert", func(o *pgsink.Options[Event]) { o.Version = "amount" }, []string{"Options.Version"}},
		{"ApplyOnce without Apply and types", func(o *pgsink.Options[Event]) { o.Mode = pgsink.ApplyOnce },
			[]string{"Options.Apply", "Options.ColumnTypes"}},
		{"ApplyOnce with a bad type", func(o *pgsink.Options[Event]) {
			o.Mode, o.Apply, o.ColumnTypes = pgsink.ApplyOnce, apply, []string{"bigint", " ", "int; DROP TABLE x"}
		}, []string{"Options.ColumnTypes[1]", "Options.ColumnTypes[2]"}},
		{"ApplyOnce Values without columns", func(o *pgsink.Options[Event]) {
			o.Mode, o.Apply, o.Columns = pgsink.ApplyOnce, apply, nil
		}, []string{"Options.Values"}},
		{"Apply and types outside ApplyOnce", func(o *pgsink.Options[Event]) {
			o.Apply, o.ColumnTypes = apply, []string{"bigint", "text", "bigint"}
		}, []string{"Options.Apply", "Options.ColumnTypes"}},
		{"negative retries", func(o *pgsink.Options[Event]) { o.MaxAttempts, o.RetryBackoff, o.MaxRetryBackoff = -1, -1, -1 },
			[]string{"Options.MaxAttempts", "Options.RetryBackoff", "Options.MaxRetryBackoff"}},
		{"max backoff below backoff", func(o *pgsink.Options[Event]) { o.RetryBackoff, o.MaxRetryBackoff = 2, 1 },
			[]string{"Options.MaxRetryBackoff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := valid
			tc.change(&o)
			s, err := pgsink.New(o)
			if tc.fields == nil {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			var oe *pipeline.OptionsError
			if !errors.As(err, &oe) {
				t.Fatalf("New: %v (%T), want a *pipeline.OptionsError", err, err)
			}
			var got []string
			for _, p := range oe.Problems {
				got = append(got, p.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %q, want %q (%v)", got, tc.fields, err)
			}
			if !strings.HasPrefix(err.Error(), "pgsink: ") {
				t.Fatalf("error %q does not name the package", err)
			}
		})
	}
}

// The columns a sink copies: the program's, then the metadata ones it fills.
func TestSinkColumns(t *testing.T) {
	for _, tc := range []struct {
		opts pgsink.Options[Event]
		want []string
	}{
		{pgsink.Options[Event]{Columns: eventCols}, []string{"id", "user_id", "amount", "stream", "position"}},
		{pgsink.Options[Event]{Columns: eventCols, StreamColumn: "src", PositionColumn: "pos"}, []string{"id", "user_id", "amount", "src", "pos"}},
		{pgsink.Options[Event]{Columns: eventCols, Key: []string{"id"}}, []string{"id", "user_id", "amount"}},
		{pgsink.Options[Event]{Mode: pgsink.Upsert, Columns: eventCols, Key: []string{"id"}}, []string{"id", "user_id", "amount", "position"}},
		{pgsink.Options[Event]{Mode: pgsink.Upsert, Columns: eventCols, Key: []string{"id"}, Version: "amount"}, []string{"id", "user_id", "amount"}},
	} {
		tc.opts.DB, tc.opts.Table, tc.opts.Values = fakeDB{}, "t", eventValues
		s, err := pgsink.New(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Columns(); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: columns %q, want %q", tc.opts, got, tc.want)
		}
	}
}

// A Values that returns the wrong number of values is a bug of the program's: the batch
// fails with a plain error (retried, holding the pipeline back) rather than every message
// being rejected as bad data.
func TestValuesCountMismatch(t *testing.T) {
	s, err := pgsink.New(pgsink.Options[Event]{DB: fakeDB{}, Table: "t", Columns: eventCols,
		Values: func(row []any, m *pipeline.Message[Event]) ([]any, error) { return append(row, m.Data.ID), nil }})
	if err != nil {
		t.Fatal(err)
	}
	batch := events(stream, 0, 3)
	err = s.HandleBatch(context.Background(), batch, pipeline.BatchInfo{})
	if err == nil || permanent(err) || !strings.Contains(err.Error(), "returned 1 values for the 3 Columns") {
		t.Fatalf("HandleBatch: %v", err)
	}
	if batch[0].Failed() {
		t.Fatalf("message failed: %v", batch[0].Err())
	}
}
