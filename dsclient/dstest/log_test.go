package dstest

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// model is the plain list of records a recordLog must behave like.
type model struct {
	base uint64
	recs [][]byte
}

func (m *model) ends() []uint64 {
	var out []uint64
	p := m.base
	for _, r := range m.recs {
		p += uint64(len(r))
		out = append(out, p)
	}
	return out
}

// collect is the specification of recordLog.collect on an empty plan.
func (m *model) collect(from, limit uint64, budget int) (data []byte, n int, next uint64, full bool) {
	next = from
	ends := m.ends()
	for i, r := range m.recs {
		if ends[i] <= from {
			continue
		}
		if ends[i] > limit {
			return data, n, next, false
		}
		if budget > 0 && n > 0 && len(data)+len(r) > budget {
			return data, n, next, true
		}
		data = append(data, r...)
		n++
		next = ends[i]
	}
	return data, n, next, false
}

func checkCollect(t *testing.T, l *recordLog, m *model, from, limit uint64, budget int) {
	t.Helper()
	r := readPlan{budget: budget, next: from}
	l.collect(from, limit, &r)
	data, n, next, full := m.collect(from, limit, budget)
	got := bytes.Join(r.parts, nil)
	if !bytes.Equal(got, data) || r.n != n || r.next != next || r.full != full || r.size != len(got) {
		t.Fatalf("collect(from %d, limit %d, budget %d) = %q n=%d next=%d full=%v size=%d; want %q n=%d next=%d full=%v",
			from, limit, budget, got, r.n, r.next, r.full, r.size, data, n, next, full)
	}
}

func TestRecordLogCollect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, base := range []uint64{0, 1000} {
		l := newRecordLog(base)
		m := &model{base: base}
		for i := range 3000 {
			size := 1 + rng.IntN(40)
			var rec []byte
			switch i {
			case 7, 1500:
				rec = bytes.Repeat([]byte{'L'}, maxSegment+1+rng.IntN(100)) // larger than any segment
			case 100, 2000:
				rec = bytes.Repeat([]byte{'M'}, 5000+rng.IntN(20000)) // larger than a segment's room
			default:
				rec = make([]byte, size)
				for j := range rec {
					rec[j] = byte('a' + rng.IntN(26))
				}
			}
			size = len(rec)
			if got := l.append(rec); got != m.base+uint64(sumLen(m.recs))+uint64(size) {
				t.Fatalf("append returned %d", got)
			}
			m.recs = append(m.recs, rec)
		}
		if l.tail != m.ends()[len(m.recs)-1] {
			t.Fatalf("tail %d", l.tail)
		}
		ends := m.ends()
		for range 300 {
			var from uint64
			switch rng.IntN(3) {
			case 0:
				from = ends[rng.IntN(len(ends))] // a record boundary
			case 1:
				from = base + rng.Uint64N(l.tail-base+10) // anywhere, also past the tail
			default:
				from = base
			}
			limit := l.tail
			if rng.IntN(3) == 0 {
				limit = base + rng.Uint64N(l.tail-base+1)
			}
			budget := 0
			if rng.IntN(2) == 0 {
				budget = 1 + rng.IntN(200000)
			}
			checkCollect(t, &l, m, from, limit, budget)
		}
	}
}

func sumLen(recs [][]byte) int {
	n := 0
	for _, r := range recs {
		n += len(r)
	}
	return n
}

func TestRecordLogSegmentsNeverMove(t *testing.T) {
	l := newRecordLog(0)
	l.append([]byte("first"))
	r := readPlan{}
	l.collect(0, l.tail, &r)
	before := r.parts[0]
	for range 10000 {
		l.append([]byte("more data"))
	}
	if string(before) != "first" || &before[0] != &l.segs[0].data[0] {
		t.Fatal("a slice taken before appends no longer shows the stored bytes")
	}
}

func FuzzRecordLogCollect(f *testing.F) {
	f.Add([]byte{3, 1, 4, 1, 5, 9, 2, 6}, uint16(3), uint16(40), uint16(0))
	f.Fuzz(func(t *testing.T, sizes []byte, from, limit, budget uint16) {
		l := newRecordLog(0)
		m := &model{}
		for i, s := range sizes {
			rec := bytes.Repeat([]byte{byte('a' + i%26)}, int(s)%64+1)
			l.append(rec)
			m.recs = append(m.recs, rec)
		}
		checkCollect(t, &l, m, uint64(from), uint64(limit), int(budget))
	})
}
