package pgsink

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// compareValues is a total order: antisymmetric and transitive over values of mixed kinds,
// and by value within numbers, strings, bytes, booleans and times.
func TestCompareValues(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := "b"
	// In increasing order; values on one line are equal.
	ordered := [][]any{
		{nil, (*string)(nil), pgtype.Int8{}},
		{math.Inf(-1)},
		{int64(-1 << 62)},
		{int8(-3), -3.0, float32(-3)},
		{uint(0), int64(0), 0.0},
		{int64(1), uint64(1), int32(1), pgtype.Int8{Int64: 1, Valid: true}},
		{uint64(math.MaxUint64)},
		{math.Inf(1)},
		{""},
		{"a"},
		{"b", &s, pgtype.Text{String: "b", Valid: true}},
		{"ba"},
		{[]byte{}},
		{[]byte{0}},
		{false},
		{true},
		{t0, t0.In(time.FixedZone("x", 3600))},
		{t0.Add(time.Nanosecond)},
		{[2]int{1, 2}},
		{[2]int{1, 3}},
		{struct{ A int }{1}},
	}
	var flat []any
	rank := map[int]int{}
	for r, vs := range ordered {
		for _, v := range vs {
			rank[len(flat)] = r
			flat = append(flat, v)
		}
	}
	for i, a := range flat {
		for j, b := range flat {
			want := 0
			switch {
			case rank[i] < rank[j]:
				want = -1
			case rank[i] > rank[j]:
				want = 1
			}
			if got := compareValues(a, b); got != want {
				t.Errorf("compareValues(%#v, %#v) = %d, want %d", a, b, got, want)
			}
		}
	}
	// Sorting a shuffle gives the order back.
	shuffled := slices.Clone(flat)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	slices.SortStableFunc(shuffled, compareValues)
	for i := 1; i < len(shuffled); i++ {
		if compareValues(shuffled[i-1], shuffled[i]) > 0 {
			t.Fatalf("sorted out of order at %d: %#v > %#v", i, shuffled[i-1], shuffled[i])
		}
	}
}
