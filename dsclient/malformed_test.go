package dsclient_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	ds "github.com/sluice-go/sluice/dsclient"
)

// 11.2: a malformed JSON body gives one clear, typed outcome on every way of reading items:
// an ErrParse *Error (not ErrDecode) naming the stream, the offset and the byte position;
// the chunk's later calls return that same error, never a stream of fresh failures.
func TestMalformedBodyOneError(t *testing.T) {
	const body = `[{"n":0},{"n":1} {"n":2}]` // no comma before the third item
	fault := strings.Index(body, ` {"n":2}`) + 1
	bodies := map[string]string{
		"array": body,
		// Inside an item: only decoding sees it; raw items are not validated.
		"item": `[{"n":0},{"n":1},{"n":tru},{"n":3}]`,
	}
	for name, b := range bodies {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			protoHeaders(w, "application/json", "0_9", true, false)
			io.WriteString(w, b)
		})
		s := inproc(h, "/v1/stream/bad")
		check := func(t *testing.T, items []int, err error, want int) {
			t.Helper()
			var e *ds.Error
			if fmt.Sprint(items) != fmt.Sprint(ints(0, want)) || !errors.Is(err, ds.ErrParse) || errors.Is(err, ds.ErrDecode) || !errors.As(err, &e) {
				t.Fatalf("%s: items %v, error %v", name, items, err)
			}
			wantPos := int64(fault)
			if name == "item" {
				wantPos = int64(strings.Index(b, "tru}") + 3) // where "true" breaks off
			}
			if e.URL != "http://inproc.test/v1/stream/bad" || e.Offset != ds.Beginning || e.BytePos != wantPos ||
				!strings.Contains(err.Error(), fmt.Sprintf("at byte %d", wantPos)) {
				t.Fatalf("%s: error lacks its context: %v (%+v)", name, err, e)
			}
		}
		t.Run(name+"/DecodeItem", func(t *testing.T) {
			r := s.Reader(bg(), ds.ReadOptions{})
			defer r.Close()
			c, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			var items []int
			for {
				var v event
				if err = c.DecodeItem(&v); err != nil {
					break
				}
				items = append(items, v.N)
			}
			check(t, items, err, 2)
			for range 3 {
				var v event
				if again := c.DecodeItem(&v); again != err {
					t.Fatalf("later call: %v, want the same error", again)
				}
			}
		})
		t.Run(name+"/JSONItems", func(t *testing.T) {
			var items []int
			var errs []error
			for it, err := range ds.JSONItems[event](bg(), s, ds.ReadOptions{}) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				items = append(items, it.Value.N)
			}
			if len(errs) != 1 {
				t.Fatalf("%d errors, want one: %v", len(errs), errs)
			}
			check(t, items, errs[0], 2)
		})
		if name == "item" {
			continue
		}
		t.Run(name+"/NextItem", func(t *testing.T) {
			r := s.Reader(bg(), ds.ReadOptions{})
			defer r.Close()
			c, _ := r.Next()
			var items []int
			var err error
			for {
				var raw []byte
				if raw, err = c.NextItem(); err != nil {
					break
				}
				var v event
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatal(err)
				}
				items = append(items, v.N)
			}
			check(t, items, err, 2)
			if _, again := c.NextItem(); again != err {
				t.Fatalf("later call: %v", again)
			}
		})
	}
}

// An item that is well-formed but does not fit the type is ErrDecode: consumed, and the
// chunk goes on.
func TestDecodeErrorGoesOn(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protoHeaders(w, "application/json", "0_9", true, false)
		io.WriteString(w, `[{"n":0},{"n":"one"},{"n":2}]`)
	})
	var items []int
	var errs []error
	for it, err := range ds.JSONItems[event](bg(), inproc(h, "/s"), ds.ReadOptions{}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, it.Value.N)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ds.ErrDecode) || errors.Is(errs[0], ds.ErrParse) || fmt.Sprint(items) != "[0 2]" {
		t.Fatalf("items %v, errors %v", items, errs)
	}
}

// Malformed SSE: a data event with a bad element fails its chunk once, after the good
// elements (its position counts in the data of the chunk's events); Next continues the chunk
// with a plain request. A malformed control event fails Next with the event's position in
// the response. The reader stays usable throughout.
func TestMalformedSSE(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctl := func(next string, closed bool) string {
			return fmt.Sprintf("event: control\ndata:{\"streamNextOffset\":%q,\"streamCursor\":\"1\",\"streamClosed\":%v}\n\n", next, closed)
		}
		responses := []string{
			"event: data\ndata:[{\"n\":0},{\"n\":1}}]\n\n" + ctl("0_00002", false),
			ctl("0_00002", false) + "event: control\ndata:{\"streamNextOffset\":\n\n",
			ctl("0_00002", true),
		}
		var sse atomic.Int32 // the handlers of successive requests may overlap
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			switch {
			case q.Get("live") == "sse":
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, responses[sse.Add(1)-1])
			case q.Get("offset") == "-1":
				protoHeaders(w, "application/json", "0_00000", true, false)
				io.WriteString(w, "[]")
			default: // the continuation of the SSE chunk
				protoHeaders(w, "application/json", "0_00002", true, false)
				io.WriteString(w, `[{"n":0},{"n":1}]`)
			}
		})
		r := inproc(h, "/s").Reader(bg(), ds.ReadOptions{Live: ds.LiveSSE})
		defer r.Close()
		if _, err := r.Next(); err != nil { // the catch-up request
			t.Fatal(err)
		}
		c, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for {
			var v event
			if err = c.DecodeItem(&v); err != nil {
				break
			}
			got = append(got, v.N)
		}
		var e *ds.Error
		if fmt.Sprint(got) != "[0 1]" || !errors.Is(err, ds.ErrParse) || !errors.As(err, &e) ||
			e.BytePos != int64(len(`[{"n":0},{"n":1}`)) || e.Offset != "0_00000" {
			t.Fatalf("bad data event: items %v, %v", got, err)
		}
		var v event
		if again := c.DecodeItem(&v); again != err {
			t.Fatalf("later call: %v", again)
		}
		if c2, err := r.Next(); err != nil || c2 != c || c.DecodeItem(&v) != io.EOF || c.NextOffset() != "0_00002" {
			t.Fatalf("continued chunk: %v", err)
		}
		if c, err := r.Next(); err != nil || c.NextOffset() != "0_00002" {
			t.Fatalf("keep-alive: %v", err)
		}
		_, err = r.Next()
		if !errors.Is(err, ds.ErrParse) || !errors.As(err, &e) || e.BytePos != int64(len(ctl("0_00002", false))) {
			t.Fatalf("bad control event: %v", err)
		}
		if c, err := r.Next(); err != nil || !c.Closed() {
			t.Fatalf("after the bad control event: %v", err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
	})
}

// With ParseRetry, a body that a proxy corrupts is asked for again, with backoff, and every
// item is delivered once, in order, in every live mode; with ParseFail (the default) the
// error is returned once.
func TestParseRetry(t *testing.T) {
	for _, mode := range []ds.LiveMode{ds.LiveOff, ds.LiveLongPoll, ds.LiveSSE} {
		t.Run(mode.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeStream{n: 30, per: 10, closed: true, rec: newRecorder()}
				corrupted := 0
				f.body = func(req int, live string, from int, body []byte, next string) ([]byte, string) {
					if from == 10 && corrupted < 2 {
						corrupted++
						body = bytes.Replace(body, []byte(`},{"n":15`), []byte(`}X{"n":15`), 1)
					}
					return body, next
				}
				s := inproc(f, "/s", exactRetry(0))
				got, err := readInts(s.Reader(bg(), ds.ReadOptions{Live: mode, OnParseError: ds.ParseRetry}))
				if err != nil || fmt.Sprint(got) != fmt.Sprint(ints(0, 30)) || corrupted != 2 {
					t.Fatalf("read %v: %v (corrupted %d)", got, err, corrupted)
				}
				corrupted = 0
				got, err = readInts(s.Reader(bg(), ds.ReadOptions{Live: mode}))
				if !errors.Is(err, ds.ErrParse) || fmt.Sprint(got) != fmt.Sprint(ints(0, 15)) {
					t.Fatalf("ParseFail: read %v: %v", got, err)
				}
			})
		})
	}
}
