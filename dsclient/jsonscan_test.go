package dsclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func scanAll(r io.Reader) ([]string, error) {
	s := newItemScanner(r, 1<<20, nil)
	var out []string
	for {
		b, err := s.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(b))
	}
}

func TestScannerItems(t *testing.T) {
	in := ` [ {"a":"x\"]}","b":[1,{"c":null}]} , "s\\" ,12.5e3,-1, true,false,null,[],{} , "\\\""] `
	want := []string{`{"a":"x\"]}","b":[1,{"c":null}]}`, `"s\\"`, `12.5e3`, `-1`, `true`, `false`, `null`, `[]`, `{}`, `"\\\""`}
	for _, r := range []io.Reader{bytes.NewReader([]byte(in)), iotest.OneByteReader(bytes.NewReader([]byte(in)))} {
		got, err := scanAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %q", got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("item %d: %q want %q", i, got[i], want[i])
			}
		}
	}
}

func TestScannerErrors(t *testing.T) {
	for _, in := range []string{``, `{}`, `[1,]`, `[1 2]`, `[{"a":1]`, `[{"a":"x}]`, `[1,2`, `[1]x`, `[}`, `XY"a"]`} {
		_, err := scanAll(bytes.NewReader([]byte(in)))
		var se *scanError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a scan error", in, err)
		}
	}
	s := newItemScanner(bytes.NewReader([]byte(`["`+string(bytes.Repeat([]byte("x"), 200<<10))+`"]`)), 100<<10, nil)
	var tl *tooLargeError
	if _, err := s.next(); !errors.As(err, &tl) {
		t.Fatalf("oversized item: %v", err)
	}
	// A cut connection is reported as the read error itself, for the chunk to resume.
	s = newItemScanner(io.MultiReader(bytes.NewReader([]byte(`[1,{"a"`)), iotest.ErrReader(io.ErrUnexpectedEOF)), 1<<20, nil)
	if _, err := s.next(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut: %v", err)
	}
}

// FuzzScanner checks the scanner against encoding/json: on valid input it yields exactly the
// array's elements; it never panics or loops on invalid input.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`[]`, `[1,"a",{"b":[true,null]}]`, `["\\\"",-0.5e+3]`, `[[],{}]`, `[1,]`, `["x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := scanAll(iotest.HalfReader(bytes.NewReader([]byte(in))))
		var want []json.RawMessage
		if json.Unmarshal([]byte(in), &want) != nil || want == nil {
			return // invalid JSON, or null (no array): any error (or a structural pass) is acceptable
		}
		if err != nil {
			t.Fatalf("valid %q: %v", in, err)
		}
		if len(got) != len(want) {
			t.Fatalf("valid %q: %d items, want %d", in, len(got), len(want))
		}
		for i := range want {
			if got[i] != string(want[i]) {
				t.Fatalf("valid %q: item %d %q want %q", in, i, got[i], want[i])
			}
		}
	})
}

// genArray streams a JSON array of n small objects without holding it.
type genArray struct {
	n, i int
	buf  []byte
}

func (g *genArray) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i <= g.n {
		switch {
		case g.i == g.n:
			g.buf = append(g.buf, ']')
		case g.i == 0:
			g.buf = append(g.buf, `[{"id":0,"s":"x"}`...)
		default:
			g.buf = append(g.buf, `,{"id":1234567,"s":"some text"}`...)
		}
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// A caller reading a 9 MB array item by item holds one read buffer, however large the body.
func TestScannerBoundedMemory(t *testing.T) {
	s := newItemScanner(&genArray{n: 300_000}, 1<<20, nil)
	n := 0
	for {
		_, err := s.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 300_000 || s.read < 9_000_000 || cap(s.buf) > scanBufSize {
		t.Fatalf("items %d, read %d bytes, buffer %d bytes", n, s.read, cap(s.buf))
	}
}
