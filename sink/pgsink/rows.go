package pgsink

import (
	"bytes"
	"cmp"
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sluice-go/sluice/pipeline"
)

// row is one message's row: the values of cfg.cols, with room for one more (the staging
// tables' ordinal).
type row[T any] struct {
	m    *pipeline.Message[T]
	vals []any
}

// prepare makes the rows of batch's messages that have not failed, sorted by key, one per
// key: duplicates of a key within the batch are dropped (for Upsert, all but the newest
// one), counted in res.Skipped, and succeed with the row kept. A message whose Values
// fails is rejected. An error means Values broke its contract.
func (s *Sink[T]) prepare(batch []pipeline.Message[T], res *Result) ([]row[T], error) {
	w := len(s.cfg.cols)
	nUser := len(s.cfg.Columns)
	slab := make([]any, len(batch)*(w+1))
	rows := make([]row[T], 0, len(batch))
	var stream string
	var boxed any // stream, boxed once per distinct stream
	for i := range batch {
		m := &batch[i]
		if m.Failed() {
			continue
		}
		vals := slab[len(rows)*(w+1) : len(rows)*(w+1)+w+1]
		if nUser > 0 {
			got, err := s.cfg.Values(vals[:0:nUser], m)
			if err != nil {
				s.reject(m, res, err)
				continue
			}
			if len(got) != nUser {
				return nil, fmt.Errorf("pgsink: Options.Values returned %d values for the %d Columns %q", len(got), nUser, s.cfg.Columns)
			}
			if &got[0] != &vals[0] {
				copy(vals, got)
			}
		}
		if s.cfg.streamAt >= 0 {
			if boxed == nil || m.Metadata.Stream != stream {
				stream, boxed = m.Metadata.Stream, m.Metadata.Stream
			}
			vals[s.cfg.streamAt] = boxed
		}
		if s.cfg.posAt >= 0 {
			vals[s.cfg.posAt] = m.Metadata.Position
		}
		rows = append(rows, row[T]{m: m, vals: vals[:w]})
	}
	if !slices.IsSortedFunc(rows, s.compareKey) {
		slices.SortStableFunc(rows, s.compareKey)
	}
	return s.dedupe(rows, res), nil
}

// compareKey orders rows by key: by position (stream byte-wise, then position), or by the
// key columns' values (see compareValues). Every writer orders rows the same way, so
// writers of the same keys take their locks in the same order and never deadlock.
func (s *Sink[T]) compareKey(a, b row[T]) int {
	if s.cfg.byPosition {
		if c := strings.Compare(a.m.Metadata.Stream, b.m.Metadata.Stream); c != 0 {
			return c
		}
		return cmp.Compare(a.m.Metadata.Position, b.m.Metadata.Position)
	}
	for _, k := range s.cfg.keyAt {
		if c := compareValues(a.vals[k], b.vals[k]); c != 0 {
			return c
		}
	}
	return 0
}

// dedupe keeps one row per key of sorted rows: the first, or for Upsert the one with the
// greatest version (the first of equals). It reuses rows' array.
func (s *Sink[T]) dedupe(rows []row[T], res *Result) []row[T] {
	if len(rows) < 2 {
		return rows
	}
	out := rows[:1]
	for _, r := range rows[1:] {
		last := &out[len(out)-1]
		if s.compareKey(*last, r) != 0 {
			out = append(out, r)
			continue
		}
		res.Skipped++
		if s.cfg.Mode == Upsert && compareValues(r.vals[s.cfg.verAt], last.vals[s.cfg.verAt]) > 0 {
			*last = r
		}
	}
	return out
}

// compareValues orders the values Values returns: nil first, then by kind: numbers (of any
// Go numeric type, compared by value), strings and byte slices (byte-wise), booleans,
// times; a driver.Valuer by its value, a pointer by what it points to; values of other
// types by their type's name and then by fmt's %v. It is a total order that every process
// computes the same way, which is all that deadlock freedom and deduplication need; it
// matches PostgreSQL's order for numbers and times, and for text under the "C" collation.
func compareValues(a, b any) int {
	if x, ok := a.(int64); ok { // the common case first
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	}
	a, b = normalize(a), normalize(b)
	ka, kb := kindOf(a), kindOf(b)
	if ka != kb {
		return cmp.Compare(ka, kb)
	}
	switch ka {
	case kNil:
		return 0
	case kNumber:
		return compareNumbers(a, b)
	case kString:
		return strings.Compare(a.(string), b.(string))
	case kBytes:
		return bytes.Compare(a.([]byte), b.([]byte))
	case kBool:
		return cmp.Compare(boolInt(a.(bool)), boolInt(b.(bool)))
	case kTime:
		return a.(time.Time).Compare(b.(time.Time))
	}
	if c := strings.Compare(reflect.TypeOf(a).String(), reflect.TypeOf(b).String()); c != 0 {
		return c
	}
	return strings.Compare(fmt.Sprintf("%v", a), fmt.Sprintf("%v", b))
}

// normalize returns the value a driver.Valuer stands for, and what a pointer points to
// (nil for a nil pointer); other values as they are.
func normalize(v any) any {
	for range 8 { // a Valuer's value is a plain type; the bound guards against odd types
		switch x := v.(type) {
		case nil, int64, string, []byte, bool, time.Time, float64, int, int32:
			return v
		case driver.Valuer:
			dv, err := x.Value()
			if err != nil {
				return v
			}
			v = dv
			continue
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer {
			return v
		}
		if rv.IsNil() {
			return nil
		}
		v = rv.Elem().Interface()
	}
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const (
	kNil = iota
	kNumber
	kString
	kBytes
	kBool
	kTime
	kOther
)

func kindOf(v any) int {
	switch v.(type) {
	case nil:
		return kNil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr, float32, float64:
		return kNumber
	case string:
		return kString
	case []byte:
		return kBytes
	case bool:
		return kBool
	case time.Time:
		return kTime
	}
	return kOther
}

// compareNumbers compares two numbers of any Go numeric types by value: integers exactly,
// floats as float64.
func compareNumbers(a, b any) int {
	ai, aInt, au, aUint, af := number(a)
	bi, bInt, bu, bUint, bf := number(b)
	switch {
	case aInt && bInt:
		return cmp.Compare(ai, bi)
	case aUint && bUint:
		return cmp.Compare(au, bu)
	case aInt && bUint:
		if ai < 0 {
			return -1
		}
		return cmp.Compare(uint64(ai), bu)
	case aUint && bInt:
		if bi < 0 {
			return 1
		}
		return cmp.Compare(au, uint64(bi))
	}
	return cmp.Compare(af, bf) // NaN first, as cmp.Compare orders it
}

// number returns v as an int64 (isInt), as a uint64 (isUint), and always as a float64.
func number(v any) (i int64, isInt bool, u uint64, isUint bool, f float64) {
	switch x := v.(type) {
	case int:
		return int64(x), true, 0, false, float64(x)
	case int8:
		return int64(x), true, 0, false, float64(x)
	case int16:
		return int64(x), true, 0, false, float64(x)
	case int32:
		return int64(x), true, 0, false, float64(x)
	case int64:
		return x, true, 0, false, float64(x)
	case uint:
		return 0, false, uint64(x), true, float64(x)
	case uint8:
		return 0, false, uint64(x), true, float64(x)
	case uint16:
		return 0, false, uint64(x), true, float64(x)
	case uint32:
		return 0, false, uint64(x), true, float64(x)
	case uint64:
		return 0, false, x, true, float64(x)
	case uintptr:
		return 0, false, uint64(x), true, float64(x)
	case float32:
		return 0, false, 0, false, float64(x)
	case float64:
		return 0, false, 0, false, x
	}
	return 0, false, 0, false, math.NaN()
}
