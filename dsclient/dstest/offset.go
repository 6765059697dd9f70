package dstest

import (
	"math"
	"strconv"
)

// Offsets are positions in a stream's record log: the number of stored bytes before the
// position. They are minted as "%016d_%016d" (the first field is always zero), so that the
// lexicographic order of two tokens is the order of their positions; zero is the start of a
// stream and is written 0000000000000000_0000000000000000.

// zeroOffset is the token of position 0, the start of every stream.
const zeroOffset = "0000000000000000_0000000000000000"

// formatOffset returns the token of position p.
func formatOffset(p uint64) string {
	var b [33]byte
	return string(appendOffset(b[:0], p))
}

// appendOffset appends the token of position p to dst.
func appendOffset(dst []byte, p uint64) []byte {
	dst = append(dst, "0000000000000000_"...)
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], p, 10)
	for i := len(d); i < 16; i++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// parseOffset parses a token of the form digits_digits. A token whose first field is not
// zero, or whose number does not fit, lies beyond every position and parses as MaxUint64.
func parseOffset(s string) (uint64, bool) {
	us := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' && us < 0:
			us = i
		case c < '0' || c > '9':
			return 0, false
		}
	}
	if us <= 0 || us == len(s)-1 {
		return 0, false
	}
	for i := 0; i < us; i++ {
		if s[i] != '0' {
			return math.MaxUint64, true
		}
	}
	p, err := strconv.ParseUint(s[us+1:], 10, 64)
	if err != nil {
		return math.MaxUint64, true
	}
	return p, true
}
