package dstest

import "sort"

// A recordLog holds a stream's records: one per append (a JSON append's values share it).
// Records are stored back to back in segments whose byte arrays are never reallocated, so a
// reader may keep slices of the bytes that existed when it looked, and write them to the
// network after releasing the stream's lock, while appends go on. Each record costs four
// bytes of index.
type recordLog struct {
	tail uint64 // position after the last record
	segs []*segment
}

// A segment is a run of whole records. data only grows within its capacity.
type segment struct {
	base uint64   // position of data[0]
	data []byte   // the records' bytes
	ends []uint32 // end of each record, relative to data
}

const (
	minSegment = 4 << 10
	maxSegment = 1 << 20
)

// newRecordLog returns an empty log whose first record will start at position base.
func newRecordLog(base uint64) recordLog { return recordLog{tail: base} }

// append stores rec (not empty) as one record and returns the position after it.
func (l *recordLog) append(rec []byte) uint64 {
	var s *segment
	if n := len(l.segs); n > 0 {
		s = l.segs[n-1]
		if cap(s.data)-len(s.data) < len(rec) {
			s = nil
		}
	}
	if s == nil {
		size := minSegment
		if n := len(l.segs); n > 0 {
			size = min(2*cap(l.segs[n-1].data), maxSegment)
		}
		size = max(size, len(rec))
		s = &segment{base: l.tail, data: make([]byte, 0, size)}
		l.segs = append(l.segs, s)
	}
	s.data = append(s.data, rec...)
	s.ends = append(s.ends, uint32(len(s.data)))
	l.tail += uint64(len(rec))
	return l.tail
}

// A readPlan gathers the byte runs of the records a read returns, in order, without copying
// them.
type readPlan struct {
	parts  [][]byte
	size   int    // total bytes in parts
	n      int    // records taken
	next   uint64 // position after the last record taken
	budget int    // most bytes to take; 0 means no limit
	full   bool   // the budget stopped the read
}

// collect adds to r the records whose end lies in (from, limit], stopping when r's budget is
// reached (a plan always takes at least one record). A record that starts before from is
// taken whole.
func (l *recordLog) collect(from, limit uint64, r *readPlan) {
	if r.full || from >= l.tail {
		return
	}
	i := sort.Search(len(l.segs), func(i int) bool {
		s := l.segs[i]
		return s.base+uint64(len(s.data)) > from
	})
	for ; i < len(l.segs); i++ {
		s := l.segs[i]
		j := sort.Search(len(s.ends), func(j int) bool { return s.base+uint64(s.ends[j]) > from })
		if j == len(s.ends) {
			continue
		}
		start := uint32(0)
		if j > 0 {
			start = s.ends[j-1]
		}
		// The last record k with end <= limit and within the budget.
		maxEnd := uint64(0)
		if limit > s.base {
			maxEnd = limit - s.base
		}
		if r.budget > 0 {
			maxEnd = min(maxEnd, uint64(start)+uint64(max(r.budget-r.size, 0)))
		}
		k := sort.Search(len(s.ends), func(k int) bool { return uint64(s.ends[k]) > maxEnd }) - 1
		if k < j {
			if r.n == 0 && s.base+uint64(s.ends[j]) <= limit {
				k = j // an empty plan takes one record whatever its size
			} else {
				r.full = s.base+uint64(s.ends[j]) <= limit
				return
			}
		}
		end := s.ends[k]
		r.parts = append(r.parts, s.data[start:end:end])
		r.size += int(end - start)
		r.n += k - j + 1
		r.next = s.base + uint64(end)
		if k < len(s.ends)-1 {
			r.full = s.base+uint64(s.ends[k+1]) <= limit
			return
		}
		if r.next >= limit {
			return
		}
	}
}
