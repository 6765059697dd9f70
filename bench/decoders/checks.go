package main

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"time"

	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/bench/internal/dsload"
)

// verdict is the outcome of the correctness checks of one decoder.
type verdict struct {
	// Same counts the items decoded to the same value as encoding/json, of Items.
	Same, Items int
	// FirstDiff describes the first item that decoded differently.
	FirstDiff string
	// Rejected counts the malformed inputs rejected with an error, of Malformed.
	Rejected, Malformed int
	// Accepted lists malformed inputs decoded without an error.
	Accepted []string
	// Mismatch counts the type mismatches reported as errors, of Mismatches.
	Mismatch, Mismatches int
	// Aliases reports that a decoded string changed when the input buffer was overwritten
	// after the call (the decoder kept a reference to data it was lent).
	Aliases bool
	// UTF8 says what the decoder does with invalid UTF-8 in a string: "as std" (replaced by
	// U+FFFD), "error", or what it decoded.
	UTF8 string
	// Big is what a 64 MiB item does: "ok 0.21s, +128 MiB" or the error.
	Big string
}

// correct reports whether the decoder gives encoding/json's results on every check that the
// library's decode tests make: same values, malformed input and type mismatches are errors,
// no reference kept to the input. (Invalid UTF-8 and the 64 MiB item are only noted.)
func (v verdict) correct() bool {
	return v.Same == v.Items && v.Rejected == v.Malformed && v.Mismatch == v.Mismatches && !v.Aliases
}

// edgeItems are items of the workload's type that exercise more of JSON than the workload
// does; each must decode as encoding/json decodes it.
var edgeItems = []string{
	`{"id":1,"user":"u\"1\\n\/","type":"purchase","amount":42.5,"currency":"EUR","ts":"2024-01-01T00:00:00Z"}`,
	`{"id":2,"user":"\u00e9\u4e2d\ud83d\ude00","type":"p","amount":1.25e2,"currency":"€","ts":""}`,
	`{"id":-3,"amount":-0.0,"user":null,"extra":{"nested":[1,2,{"a":"b"}],"n":null},"type":"refund"}`,
	`{"amount":1e-7,"id":9007199254740993,"currency":"USD","more":[true,false,null]}`,
	` {"id" : 4 ,	"amount" : 0.1 }` + "\n",
	`{"ID":5,"User":"mixed case names","AMOUNT":2.5}`,
	`{"id":6,"user":"dup","user":"last wins"}`,
	`{}`,
	`null`,
}

// malformed are inputs that are not one JSON value: every one must be an error.
var malformed = []string{
	``,
	`   `,
	`{"id":1,"user":"u1"`,
	`{"id":1,}`,
	`{"id":01}`,
	`{"id":1.}`,
	`{"id":-}`,
	`{"id":1e}`,
	`{"id":tru}`,
	`{id:1}`,
	`{"id":1} x`,
	`{"id":1}{"id":2}`,
	`{"user":"a\qb"}`,
	"{\"user\":\"a\x01b\"}",
	`{"user":"abc}`,
	`{"amount":1.5.5}`,
	`{"id":1 "user":"u"}`,
	`[`,
}

// mismatches are well-formed JSON that does not fit the workload's type: errors for
// encoding/json.
var mismatches = []string{
	`{"id":"7"}`,
	`{"id":1.5}`,
	`{"id":9223372036854775808}`,
	`{"amount":"1"}`,
	`{"user":12}`,
	`[1,2]`,
	`"a string"`,
}

// check runs the correctness checks of d over the workload's first items and the edge
// items. big enables the 64 MiB item.
func check(d decoders.Decoder, items [][]byte, big bool) verdict {
	var v verdict
	inputs := make([][]byte, 0, len(items)+len(edgeItems))
	inputs = append(inputs, items...)
	for _, s := range edgeItems {
		inputs = append(inputs, []byte(s))
	}
	for _, in := range inputs {
		v.Items++
		var want, got dsload.Event
		werr := stdjson.Unmarshal(in, &want)
		gerr := d.Unmarshal(append([]byte(nil), in...), &got)
		if (werr == nil) == (gerr == nil) && reflect.DeepEqual(want, got) {
			v.Same++
		} else if v.FirstDiff == "" {
			v.FirstDiff = fmt.Sprintf("%s: std %+v (err %v), got %+v (err %v)", in, want, werr, got, gerr)
		}
	}
	for _, in := range malformed {
		v.Malformed++
		var e dsload.Event
		if d.Unmarshal([]byte(in), &e) != nil {
			v.Rejected++
		} else {
			v.Accepted = append(v.Accepted, fmt.Sprintf("%q", in))
		}
	}
	for _, in := range mismatches {
		v.Mismatches++
		var e dsload.Event
		if d.Unmarshal([]byte(in), &e) != nil {
			v.Mismatch++
		} else {
			v.Accepted = append(v.Accepted, fmt.Sprintf("%q (type mismatch)", in))
		}
	}
	// The producer lends each item's bytes for the call only: the decoded value must not
	// point into them.
	buf := []byte(`{"id":8,"user":"abcdefgh","type":"purchase","currency":"EUR","ts":"2024-01-01T00:00:00Z"}`)
	var e dsload.Event
	if err := d.Unmarshal(buf, &e); err == nil {
		for i := range buf {
			buf[i] = 'X'
		}
		v.Aliases = e.User != "abcdefgh" || e.Type != "purchase" || e.Currency != "EUR" || e.TS != "2024-01-01T00:00:00Z"
	}
	v.UTF8 = checkUTF8(d)
	if big {
		v.Big = checkBig(d)
	}
	return v
}

// checkUTF8 decodes a string with an invalid byte and compares with encoding/json, which
// replaces it by U+FFFD.
func checkUTF8(d decoders.Decoder) string {
	in := []byte("{\"user\":\"a\xffb\"}")
	var want, got dsload.Event
	_ = stdjson.Unmarshal(in, &want)
	if err := d.Unmarshal(in, &got); err != nil {
		return "error"
	}
	if got.User == want.User {
		return "as std (U+FFFD)"
	}
	return fmt.Sprintf("kept %q", got.User)
}

// bigItemBytes is the size of the big item: the library's default MaxBytes.
const bigItemBytes = 64 << 20

// checkBig decodes one 64 MiB item (a 64 MiB string field) and returns the time, the bytes
// allocated by the call, and whether it decoded the value.
func checkBig(d decoders.Decoder) string {
	var b bytes.Buffer
	b.Grow(bigItemBytes + 64)
	b.WriteString(`{"id":9,"user":"`)
	b.WriteString(strings.Repeat("a", bigItemBytes-len(`{"id":9,"user":""}`)))
	b.WriteString(`"}`)
	in := b.Bytes()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	var e dsload.Event
	err := d.Unmarshal(in, &e)
	el := time.Since(start)
	runtime.ReadMemStats(&m1)
	alloc := float64(m1.TotalAlloc-m0.TotalAlloc) / (1 << 20)
	switch {
	case err != nil:
		return fmt.Sprintf("error after %.2fs: %.60s", el.Seconds(), err)
	case e.ID != 9 || len(e.User) != bigItemBytes-len(`{"id":9,"user":""}`):
		return fmt.Sprintf("wrong value after %.2fs", el.Seconds())
	}
	return fmt.Sprintf("ok %.2fs, %.0f MiB allocated", el.Seconds(), alloc)
}
