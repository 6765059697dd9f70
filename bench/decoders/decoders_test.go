package main

import (
	stdjson "encoding/json"
	"testing"
	"unsafe"

	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/bench/internal/dsload"
)

// Every decoder built into the binary decodes the workload with the right sums, and passes
// or fails the checks as a whole (the table's verdict is computed, not assumed).
func TestDecodersOnTheWorkload(t *testing.T) {
	w := newWorkload(2000)
	for _, d := range decoders.All() {
		if r := w.decode(d); r.err != nil || r.mallocs == 0 {
			t.Errorf("%s: %v (%d allocations)", d.Name, r.err, r.mallocs)
		}
	}
	std, _ := decoders.ByName("std")
	if v := check(std, w.first(100), false); !v.correct() || v.UTF8 != "as std (U+FFFD)" {
		t.Fatalf("encoding/json judged against itself: %+v", v)
	}
}

// The checks catch each way a decoder can be wrong.
func TestChecksCatchBadDecoders(t *testing.T) {
	w := newWorkload(100)
	items := w.first(100)
	lax := decoders.Decoder{Name: "lax", Unmarshal: func(data []byte, v any) error {
		_ = stdjson.Unmarshal(data, v) // errors dropped
		return nil
	}}
	if v := check(lax, items, false); v.correct() || v.Rejected != 0 || v.Mismatch != 0 {
		t.Errorf("a decoder without errors judged correct: %+v", v)
	}
	aliasing := decoders.Decoder{Name: "aliasing", Unmarshal: func(data []byte, v any) error {
		if err := stdjson.Unmarshal(data, v); err != nil {
			return err
		}
		e := v.(*dsload.Event)
		if n := len(e.User); n > 0 { // point the string into the caller's bytes
			for i := 0; i+n <= len(data); i++ {
				if string(data[i:i+n]) == e.User {
					e.User = unsafe.String(&data[i], n)
					break
				}
			}
		}
		return nil
	}}
	if v := check(aliasing, items, false); v.correct() || !v.Aliases {
		t.Errorf("a decoder keeping the input bytes judged correct: %+v", v)
	}
	wrong := decoders.Decoder{Name: "wrong", Unmarshal: func(data []byte, v any) error {
		err := stdjson.Unmarshal(data, v)
		v.(*dsload.Event).ID++
		return err
	}}
	if v := check(wrong, items, false); v.correct() || v.Same != 0 || v.FirstDiff == "" {
		t.Errorf("a decoder of wrong values judged correct: %+v", v)
	}
	if r := w.decode(wrong); r.err == nil {
		t.Error("wrong sums not reported")
	}
}

func TestParse(t *testing.T) {
	ds, err := decoders.Parse("sonic,std")
	if err != nil || len(ds) != 2 || ds[0].Name != "sonic" || ds[1].Name != "std" {
		t.Fatalf("Parse: %v, %v", ds, err)
	}
	if _, err := decoders.Parse("std,nope"); err == nil {
		t.Fatal("unknown decoder accepted")
	}
	if all, _ := decoders.Parse("all"); len(all) != len(decoders.Names()) {
		t.Fatalf("all: %d decoders", len(all))
	}
}
