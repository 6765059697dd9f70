package ack_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/sluice-go/sluice/ack"
)

const (
	o10 = "0000000000000000_0000000000000010"
	o20 = "0000000000000000_0000000000000020"
)

func TestPositionRoundTrip(t *testing.T) {
	for _, c := range []struct {
		p    ack.Position
		text string
	}{
		{ack.Position{Offset: o10, Skip: 0, Seq: -1}, o10}, // the form older versions saved
		{ack.Position{Offset: "-1", Skip: 0, Seq: -1}, "-1"},
		{ack.Position{Offset: "now", Skip: 0, Seq: -1}, "now"},
		{ack.Position{Offset: o10, Skip: 250, Seq: 1250}, o10 + ",250,1250"},
		{ack.Position{Offset: o10, Skip: 250, Seq: -1}, o10 + ",250,-1"},
		{ack.Position{Offset: o10, Skip: 0, Seq: 7}, o10 + ",0,7"},
		{ack.Position{Offset: "-1", Skip: 3, Seq: 3}, "-1,3,3"},
		{ack.Position{Offset: "-1", Skip: 0, Seq: 0}, "-1,0,0"},
		{ack.Position{Offset: o10, Skip: math.MaxInt64, Seq: math.MaxInt64}, o10 + ",9223372036854775807,9223372036854775807"},
		{ack.Position{Offset: `any "opaque" text & more`, Skip: 0, Seq: -1}, `any "opaque" text & more`},
	} {
		if got := c.p.String(); got != c.text {
			t.Errorf("%#v.String() = %q, want %q", c.p, got, c.text)
		}
		got, err := ack.ParsePosition(c.text)
		if err != nil || got != c.p {
			t.Errorf("ParsePosition(%q) = %#v, %v; want %#v", c.text, got, err, c.p)
		}
	}
}

func TestParsePositionErrors(t *testing.T) {
	for _, bad := range []string{
		"",
		",1,1",                           // empty offset
		o10 + ",",                        // one field
		o10 + ",1",                       // two fields
		o10 + ",1,2,3",                   // four fields
		o10 + ",x,1",                     // not a number
		o10 + ",1,y",                     // not a number
		o10 + ",-1,5",                    // negative skip
		o10 + ",1,-2",                    // seq below -1
		o10 + ",5,4",                     // seq below skip
		o10 + ",01,5",                    // leading zero
		o10 + ",+1,5",                    // sign
		o10 + ",1,-0",                    // negative zero
		o10 + ", 1,5",                    // space
		o10 + ",0,-1",                    // not canonical: the bare offset
		"now,1,-1",                       // "now" is no place to skip from
		"now,0,5",                        // nor to count from
		o10 + ",99999999999999999999,-1", // overflow
	} {
		_, err := ack.ParsePosition(bad)
		var pe *ack.PositionError
		if !errors.As(err, &pe) {
			t.Errorf("ParsePosition(%q) = %v, want a *PositionError", bad, err)
			continue
		}
		if pe.Value != bad || !strings.Contains(err.Error(), `"`+bad+`"`) || pe.Reason == "" {
			t.Errorf("ParsePosition(%q): error %q (value %q, reason %q) does not name the value and the reason", bad, err, pe.Value, pe.Reason)
		}
	}
}

// The order of the documentation: "now", then "-1", then real offsets byte-wise, each by
// skip; seq plays no part.
func TestPositionCompare(t *testing.T) {
	ordered := []ack.Position{
		{Offset: "now", Seq: -1},
		{Offset: "-1", Seq: -1},
		{Offset: "-1", Skip: 1, Seq: 1},
		{Offset: "-1", Skip: 1000, Seq: 1000},
		{Offset: "!", Seq: -1}, // sorts before "-1" byte-wise, but "-1" is the beginning
		{Offset: o10, Seq: -1},
		{Offset: o10, Skip: 2, Seq: -1},
		{Offset: o10, Skip: 10, Seq: 30},
		{Offset: o20, Seq: 30},
		{Offset: o20 + "0", Seq: -1}, // a longer offset sharing a prefix
		{Offset: "a", Seq: -1},
		{Offset: "nov", Seq: -1}, // sorts after "now" byte-wise, but "now" is no place
		{Offset: "z", Skip: 1, Seq: -1},
	}
	for i, p := range ordered {
		for j, q := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := p.Compare(q); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", p, q, got, want)
			}
		}
	}
	a := ack.Position{Offset: o10, Skip: 4, Seq: 9}
	b := ack.Position{Offset: o10, Skip: 4, Seq: -1}
	if a.Compare(b) != 0 {
		t.Errorf("positions differing only in seq compare %d, want 0", a.Compare(b))
	}
	var cmp func(a, b ack.Position) int = ack.Position.Compare // fits SaverOptions.Compare
	if cmp(a, ordered[0]) != 1 {
		t.Error("ack.Position.Compare as a function")
	}
}

// The never-backwards rule stores apply, in both encodings.
func TestSupersedes(t *testing.T) {
	for _, c := range []struct {
		next, saved string
		want        bool
	}{
		{o20, o10, true},
		{o10, o20, false},           // backwards
		{o10, o10, true},            // the same place
		{o10 + ",5,-1", o10, true},  // further inside the same response
		{o10, o10 + ",5,-1", false}, // a legacy save of the response's start, late
		{o10 + ",4,9", o10 + ",5,10", false},
		{o10 + ",5,10", o10 + ",5,-1", true}, // the same place, now with its number
		{o20, o10 + ",999,999", true},
		{o10 + ",999,999", o20, false},
		{"-1,3,3", "-1", true},
		{"-1", "-1,3,3", false}, // "-1,3,3" is a place reached
		{"-1,2,2", "-1,3,3", false},
		{o10, "-1,3,3", true},
		{"-1,3,3", o10, false},
		{"-1", o10, false},  // a sentinel never replaces a real position
		{"now", o10, false}, // nor "now"
		{"now", o10 + ",5,10", false},
		{o10, "now", true}, // a saved sentinel is always replaceable
		{o10, "-1", true},
		{"now", "-1", true},
		{"-1", "now", true},
		{"-1,0,0", "now", true},
		{"now", "-1,0,0", true},
		{"now", "-1,1,1", false},
		{"not,a,position", o10, true}, // values that do not parse are replaced
		{o10, "not,a,position", true},
		{"", o10, true},
	} {
		if got := ack.Supersedes(c.next, c.saved); got != c.want {
			t.Errorf("Supersedes(next %q, saved %q) = %v, want %v", c.next, c.saved, got, c.want)
		}
	}
}

func FuzzPositionRoundTrip(f *testing.F) {
	f.Add(o10, int64(0), int64(-1))
	f.Add(o10, int64(5), int64(20))
	f.Add("-1", int64(3), int64(3))
	f.Add("now", int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, off string, skip, seq int64) {
		p := ack.Position{Offset: off, Skip: skip, Seq: seq}
		s := p.String()
		got, err := ack.ParsePosition(s)
		if err != nil {
			if valid(p) {
				t.Fatalf("valid %#v encodes as %q, which does not parse: %v", p, s, err)
			}
			return
		}
		if !valid(p) {
			t.Fatalf("invalid %#v encodes as %q, which parses as %#v", p, s, got)
		}
		if got != p {
			t.Fatalf("ParsePosition(%q) = %#v, want %#v", s, got, p)
		}
	})
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"", o10, o10 + ",1,2", "-1,0,0", "now", "a,b,c", ",,", "x,0,-1", "x,01,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ack.ParsePosition(s)
		if err != nil {
			var pe *ack.PositionError
			if !errors.As(err, &pe) || pe.Value != s {
				t.Fatalf("ParsePosition(%q): %v, want a *PositionError naming the value", s, err)
			}
			return
		}
		if !valid(p) {
			t.Fatalf("ParsePosition(%q) = %#v, which is not valid", s, p)
		}
		if p.String() != s {
			t.Fatalf("ParsePosition(%q) = %#v, which encodes as %q: the encoding is not canonical", s, p, p.String())
		}
	})
}

// FuzzPositionOrder checks that Compare is a total order consistent with equality of
// (Offset, Skip); that on bare real offsets it is the byte-wise order older versions saved
// by, so that existing checkpoints keep their order; and that Supersedes, the rule stores
// apply to encoded values, agrees with it.
func FuzzPositionOrder(f *testing.F) {
	f.Add(o10, int64(0), int64(-1), o20, int64(0), int64(-1), "-1", int64(2), int64(2))
	f.Add(o10, int64(5), int64(7), o10, int64(3), int64(-1), "now", int64(0), int64(-1))
	f.Add("-1", int64(0), int64(-1), "now", int64(0), int64(-1), "!", int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, ao string, as, aq int64, bo string, bs, bq int64, co string, cs, cq int64) {
		a := ack.Position{Offset: ao, Skip: as, Seq: aq}
		b := ack.Position{Offset: bo, Skip: bs, Seq: bq}
		c := ack.Position{Offset: co, Skip: cs, Seq: cq}
		ab, ba := a.Compare(b), b.Compare(a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("Compare not antisymmetric: %v vs %v: %d, %d", a, b, ab, ba)
		}
		if (ab == 0) != (a.Offset == b.Offset && a.Skip == b.Skip) {
			t.Fatalf("%v.Compare(%v) = %d, but (Offset, Skip) equal is %v", a, b, ab, a.Offset == b.Offset && a.Skip == b.Skip)
		}
		if a.Compare(a) != 0 {
			t.Fatalf("%v.Compare(itself) != 0", a)
		}
		if ab <= 0 && b.Compare(c) <= 0 && a.Compare(c) > 0 {
			t.Fatalf("Compare not transitive: %v <= %v <= %v but %v > %v", a, b, c, a, c)
		}
		if isReal(ao) && isReal(bo) && as == 0 && bs == 0 {
			if ab != strings.Compare(ao, bo) {
				t.Fatalf("bare offsets %q and %q: Compare %d, byte-wise %d", ao, bo, ab, strings.Compare(ao, bo))
			}
		}
		if !valid(a) || !valid(b) {
			return
		}
		na, nb := ack.Supersedes(a.String(), b.String()), ack.Supersedes(b.String(), a.String())
		if !na && !nb {
			t.Fatalf("neither %q nor %q may replace the other", a, b)
		}
		if isReal(ao) && isReal(bo) && na != (ab >= 0) {
			t.Fatalf("Supersedes(%q, %q) = %v, but Compare = %d", a, b, na, ab)
		}
	})
}

func isReal(o string) bool { return o != "-1" && o != "now" && o != "" && !strings.Contains(o, ",") }

// valid is the rule of ParsePosition, written independently of it.
func valid(p ack.Position) bool {
	if p.Offset == "" || strings.Contains(p.Offset, ",") || p.Skip < 0 || p.Seq < -1 || (p.Seq >= 0 && p.Seq < p.Skip) {
		return false
	}
	return p.Offset != "now" || p.Skip == 0 && p.Seq == -1
}
