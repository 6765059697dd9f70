package dsclient

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// scanTrace returns what a scanner yields for a body: its items and its final error (type,
// message and position), one per line.
func scanTrace(next func() ([]byte, error), pos func() int64) string {
	var b strings.Builder
	for range 1 << 20 {
		item, err := next()
		if err != nil {
			at := int64(-1)
			if se, ok := err.(*scanError); ok {
				at = se.pos
			}
			fmt.Fprintf(&b, "error %T %v at %d, position %d\n", err, err, at, pos())
			return b.String()
		}
		fmt.Fprintf(&b, "item %q\n", item)
	}
	return b.String() + "too many items\n"
}

// checkSameAsRef checks that the scanner and refScanner (the scanner before its fast paths)
// yield the same items and the same error for in, read whole, a byte at a time and in
// halves, with a generous and a small size limit.
func checkSameAsRef(t *testing.T, in []byte) {
	t.Helper()
	readers := []func() io.Reader{
		func() io.Reader { return bytes.NewReader(in) },
		func() io.Reader { return iotest.OneByteReader(bytes.NewReader(in)) },
		func() io.Reader { return iotest.HalfReader(bytes.NewReader(in)) },
	}
	for _, max := range []int{1 << 20, 24} {
		for k, r := range readers {
			s := newItemScanner(r(), max, nil)
			ref := newRefScanner(r(), max)
			got, want := scanTrace(s.next, s.position), scanTrace(ref.next, ref.position)
			if got != want {
				t.Fatalf("%q (reader %d, max %d):\n got %s\nwant %s", truncate(in, 200), k, max, got, want)
			}
		}
	}
}

// FuzzScannerSame checks that the scanner accepts and rejects exactly what it did before its
// fast paths for short strings (refScanner), with the same items, errors and positions.
func FuzzScannerSame(f *testing.F) {
	for _, s := range []string{`[]`, `[1,"a",{"b":[true,null]}]`, `["\\\"",-0.5e+3]`, `[[],{}]`, `[1,]`, `["x`,
		`[{"a\\":"b\\\\","c":"\"\"\"\\"}]`, `["0123456789abcdef0123456789abcdef\"x"]`, `[{"k":"0123456789abcdef0123456789abcde\\"}]`,
		`[{"k":"01234567890123456789012345678901234"}, "\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\"]`, `[{"x":"]`, `[{"x":"\\"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) { checkSameAsRef(t, []byte(in)) })
}

// TestScannerSameLarge compares the scanner with refScanner on arrays of strings with
// escapes and lengths around the fast paths' bound, larger than the scan buffer, so that
// strings are cut by reads and carried across buffer moves.
func TestScannerSameLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	str := func(b *bytes.Buffer) {
		b.WriteByte('"')
		for range rng.IntN(2 * shortLen) {
			switch rng.IntN(12) {
			case 0:
				b.WriteString(`\\`)
			case 1:
				b.WriteString(`\"`)
			case 2:
				b.WriteByte('\\')
			default:
				b.WriteByte('a' + byte(rng.IntN(26)))
			}
		}
		b.WriteByte('"')
	}
	for round := range 20 {
		var b bytes.Buffer
		b.WriteByte('[')
		for i := range 3000 {
			if i > 0 {
				b.WriteByte(',')
			}
			if rng.IntN(2) == 0 {
				str(&b)
				continue
			}
			b.WriteString(`{`)
			for k := range 1 + rng.IntN(4) {
				if k > 0 {
					b.WriteByte(',')
				}
				str(&b)
				b.WriteByte(':')
				str(&b)
			}
			b.WriteString(`}`)
		}
		b.WriteByte(']')
		in := b.Bytes()
		if round%4 == 3 {
			in = in[:len(in)-rng.IntN(len(in)/2)] // truncated, or cut inside a string
		}
		checkSameAsRef(t, in)
	}
}
