package ack_test

import (
	"context"
	"testing"

	"github.com/sluice-go/sluice/ack"
)

// FuzzTracker drives a tracker with arbitrary sequences of tracking, adding, sealing,
// marking and halting, and checks after every step that the committed offset is exactly
// the offset after the longest finished prefix (so it never passes an unfinished message),
// that it never moves backwards, and that pending returns to zero once everything is done.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 3, 1, 0, 2, 2, 4, 0, 3, 0, 4, 1, 4, 0})
	f.Add([]byte{1, 0, 2, 0, 2, 0, 0, 0, 4, 1, 3, 0, 4, 0, 4, 0})
	f.Add([]byte{0, 2, 0, 0, 5, 1, 4, 0, 4, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		ctx := context.Background()
		tr := ack.NewTracker(0, ack.TrackerOptions{})
		m := &model{}
		var chunks []*ack.Chunk[int]
		// pick returns the index of the arg-th chunk (cyclically) satisfying ok, or -1.
		pick := func(arg byte, ok func(i int) bool) int {
			var cand []int
			for i := range chunks {
				if ok(i) {
					cand = append(cand, i)
				}
			}
			if len(cand) == 0 {
				return -1
			}
			return cand[int(arg)%len(cand)]
		}
		unfinished := func(i int) bool { return m.done[i] < m.sizes[i] }
		last := 0
		for k := 0; k+1 < len(ops); k += 2 {
			op, arg := ops[k]%6, ops[k+1]
			switch op {
			case 0: // one-shot chunk
				n := int(arg % 4)
				i := m.track(n, true)
				c, err := tr.Track(ctx, n, i+1)
				if err != nil {
					t.Fatal(err)
				}
				chunks = append(chunks, c)
			case 1: // open an incremental chunk
				m.track(0, false)
				chunks = append(chunks, tr.Open())
			case 2: // add messages to an open chunk
				if i := pick(arg, func(i int) bool { return !m.sealed[i] }); i >= 0 {
					n := 1 + int(arg%3)
					if err := chunks[i].Add(ctx, n); err != nil {
						t.Fatal(err)
					}
					m.sizes[i] += n
				}
			case 3: // seal an open chunk
				if i := pick(arg, func(i int) bool { return !m.sealed[i] }); i >= 0 {
					chunks[i].Seal(i + 1)
					m.sealed[i] = true
				}
			case 4: // mark one or more messages of a chunk done
				if i := pick(arg, unfinished); i >= 0 {
					n := min(1+int(arg/64), m.sizes[i]-m.done[i])
					chunks[i].Done(n)
					m.done[i] += n
				}
			case 5: // halt one message
				if i := pick(arg, unfinished); i >= 0 {
					chunks[i].Halt()
					m.done[i]++
					m.halted[i] = true
				}
			}
			c := tr.Committed()
			if c < last {
				t.Fatalf("op %d: committed moved back from %d to %d", k/2, last, c)
			}
			last = c
			check(t, tr, m, "op "+itoa(k/2))
		}
		// Finish everything: seal open chunks, mark the rest done.
		for i, c := range chunks {
			if !m.sealed[i] {
				c.Seal(i + 1)
				m.sealed[i] = true
			}
			if n := m.sizes[i] - m.done[i]; n > 0 {
				c.Done(n)
				m.done[i] += n
			}
		}
		check(t, tr, m, "end")
		if tr.Pending() != 0 {
			t.Fatalf("Pending() = %d at the end, want 0", tr.Pending())
		}
		halted := false
		for _, h := range m.halted {
			halted = halted || h
		}
		if !halted && tr.Committed() != len(chunks) {
			t.Fatalf("Committed() = %d at the end, want %d", tr.Committed(), len(chunks))
		}
		if tr.Halted() != halted {
			t.Fatalf("Halted() = %v, want %v", tr.Halted(), halted)
		}
	})
}
