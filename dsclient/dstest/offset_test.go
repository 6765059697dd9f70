package dstest

import (
	"math"
	"testing"
)

func TestOffsetFormatParse(t *testing.T) {
	for _, p := range []uint64{0, 1, 9, 10, 1234567, 9999999999999999} {
		s := formatOffset(p)
		if len(s) != 33 || s == "-1" || s == "now" {
			t.Fatalf("formatOffset(%d) = %q", p, s)
		}
		got, ok := parseOffset(s)
		if !ok || got != p {
			t.Fatalf("parseOffset(%q) = %d, %v; want %d", s, got, ok, p)
		}
	}
	if formatOffset(0) != zeroOffset {
		t.Fatalf("formatOffset(0) = %q", formatOffset(0))
	}
}

func TestOffsetOrderIsPositionOrder(t *testing.T) {
	ps := []uint64{0, 1, 2, 9, 10, 11, 99, 100, 12345, 1 << 40}
	for _, a := range ps {
		for _, b := range ps {
			if (a < b) != (formatOffset(a) < formatOffset(b)) {
				t.Fatalf("order of %d and %d differs from the order of their tokens", a, b)
			}
		}
	}
}

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0_0", 0, true},
		{"0000_42", 42, true},
		{"1_0", math.MaxUint64, true}, // beyond every position
		{"0_99999999999999999999999", math.MaxUint64, true},
		{"", 0, false},
		{"_1", 0, false},
		{"1_", 0, false},
		{"12", 0, false},
		{"1_2_3", 0, false},
		{"-1", 0, false},
		{"now", 0, false},
		{"0_1 ", 0, false},
		{"0_1,2", 0, false},
		{"0/1", 0, false},
		{"0_+1", 0, false},
	} {
		got, ok := parseOffset(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseOffset(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"0_0", zeroOffset, "1_2", "", "_", "a_b", "0_18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := parseOffset(s)
		if !ok || p == math.MaxUint64 {
			return
		}
		if q, ok := parseOffset(formatOffset(p)); !ok || q != p {
			t.Fatalf("%q parsed to %d, whose token parses to %d, %v", s, p, q, ok)
		}
	})
}
