package pipeline

// freeList recycles slices between stages, so that the hot path allocates nothing once warm.
// get and put never block: a miss allocates, a full list drops the slice.
type freeList[E any] struct {
	free chan []E
	size int
}

func newFreeList[E any](capacity, size int) freeList[E] {
	return freeList[E]{free: make(chan []E, capacity), size: size}
}

func (f freeList[E]) get() []E {
	select {
	case s := <-f.free:
		return s
	default:
		return make([]E, 0, f.size)
	}
}

// put clears s (dropping the references it holds) and keeps it for reuse.
func (f freeList[E]) put(s []E) {
	if cap(s) < f.size {
		return
	}
	clear(s)
	select {
	case f.free <- s[:0]:
	default:
	}
}
