package batcher

import "time"

// Config sets when an [Accumulator]'s batches close.
type Config struct {
	// Size is the number of items at which a batch closes. Must be > 0.
	Size int
	// MaxBytes is the byte size a batch may not exceed; 0 means no byte limit.
	MaxBytes int
	// Timeout is how long a batch stays open after its first item; 0 means no timeout.
	Timeout time.Duration
}

// Batch is a closed batch: the items of one key, in the order they were added.
type Batch[E any] struct {
	// Key is the batch key shared by every item.
	Key string
	// Items are the batch's items; the caller owns the slice once the batch is taken.
	Items []E
	// Bytes is the sum of the items' byte sizes as given to [Accumulator.Add].
	Bytes int
	// Trigger is why the batch closed.
	Trigger Trigger
}

// open is a batch being filled.
type open[E any] struct {
	key      string
	items    []E
	bytes    int
	deadline time.Time
	gen      uint64 // changes each time the struct is reused, to spot stale queue entries
}

type queued[E any] struct {
	b   *open[E]
	gen uint64
}

// Accumulator groups items into batches per key. It is not safe for concurrent use: one
// goroutine (the pipeline's batcher stage) owns it. Closed batches wait in the accumulator
// until taken with [Accumulator.TakeReady].
type Accumulator[E any] struct {
	cfg   Config
	alloc func() []E
	open  map[string]*open[E]
	last  *open[E]    // the most recently used open batch: most items share their predecessor's key
	queue []queued[E] // open batches in order of creation, which is deadline order
	head  int
	spare []*open[E]
	ready []Batch[E]
	gen   uint64
	items int
}

// New returns an empty Accumulator. alloc returns an empty slice for a new batch's items (with
// capacity cfg.Size, ideally recycled); nil means make([]E, 0, cfg.Size). New panics if
// cfg.Size <= 0.
func New[E any](cfg Config, alloc func() []E) *Accumulator[E] {
	if cfg.Size <= 0 {
		panic("batcher: Config.Size must be > 0")
	}
	if alloc == nil {
		size := cfg.Size
		alloc = func() []E { return make([]E, 0, size) }
	}
	return &Accumulator[E]{cfg: cfg, alloc: alloc, open: make(map[string]*open[E])}
}

// Add appends a copy of *item, of the given byte size, to key's open batch, opening one (whose
// timeout starts at now) if the key has none. A batch that closes because of it (on size or
// bytes; possibly two with a byte limit) waits in the ready list. It does not block, and
// allocates only when it opens a batch and alloc does.
func (a *Accumulator[E]) Add(key string, item *E, bytes int, now time.Time) {
	b := a.last
	if b == nil || b.key != key {
		b = a.open[key]
		if b == nil {
			b = a.start(key, now)
		}
		a.last = b
	}
	if a.cfg.MaxBytes > 0 && len(b.items) > 0 && b.bytes+bytes > a.cfg.MaxBytes {
		a.close(b, TriggerBytes)
		b = a.start(key, now)
		a.last = b
	}
	b.items = append(b.items, *item)
	b.bytes += bytes
	a.items++
	switch {
	case len(b.items) >= a.cfg.Size:
		a.close(b, TriggerSize)
	case a.cfg.MaxBytes > 0 && b.bytes >= a.cfg.MaxBytes:
		a.close(b, TriggerBytes)
	}
}

func (a *Accumulator[E]) start(key string, now time.Time) *open[E] {
	var b *open[E]
	if n := len(a.spare); n > 0 {
		b = a.spare[n-1]
		a.spare = a.spare[:n-1]
	} else {
		b = new(open[E])
	}
	a.gen++
	b.key, b.items, b.bytes, b.gen = key, a.alloc()[:0], 0, a.gen
	a.open[key] = b
	if a.cfg.Timeout > 0 {
		b.deadline = now.Add(a.cfg.Timeout)
	}
	if len(a.queue)-a.head > 2*len(a.open)+16 {
		a.sweep()
	}
	a.queue = append(a.queue, queued[E]{b, b.gen})
	return b
}

func (a *Accumulator[E]) close(b *open[E], t Trigger) {
	a.ready = append(a.ready, Batch[E]{Key: b.key, Items: b.items, Bytes: b.bytes, Trigger: t})
	a.items -= len(b.items)
	delete(a.open, b.key)
	if a.last == b {
		a.last = nil
	}
	b.items, b.key, b.gen = nil, "", 0
	a.spare = append(a.spare, b)
}

// Expire closes every open batch whose timeout has passed at now ([TriggerTimeout]).
func (a *Accumulator[E]) Expire(now time.Time) {
	if a.cfg.Timeout <= 0 {
		return
	}
	for a.head < len(a.queue) {
		q := a.queue[a.head]
		if q.b.gen == q.gen {
			if q.b.deadline.After(now) {
				break
			}
			a.close(q.b, TriggerTimeout)
		}
		a.queue[a.head] = queued[E]{}
		a.head++
	}
	a.compact()
}

// NextDeadline returns the earliest deadline of the open batches, and false when no open batch
// has one.
func (a *Accumulator[E]) NextDeadline() (time.Time, bool) {
	if a.cfg.Timeout <= 0 {
		return time.Time{}, false
	}
	for a.head < len(a.queue) {
		q := a.queue[a.head]
		if q.b.gen == q.gen {
			return q.b.deadline, true
		}
		a.queue[a.head] = queued[E]{}
		a.head++
	}
	a.compact()
	return time.Time{}, false
}

// compact reuses the queue's storage once its dead head is at least half of it.
func (a *Accumulator[E]) compact() {
	if a.head == 0 || a.head < len(a.queue)/2 {
		return
	}
	n := copy(a.queue, a.queue[a.head:])
	clear(a.queue[n:])
	a.queue, a.head = a.queue[:n], 0
}

// sweep drops the queue entries of batches closed out of order, so that the queue stays
// proportional to the open batches whatever order they close in (amortised O(1) per batch).
func (a *Accumulator[E]) sweep() {
	live := a.queue[:0]
	for _, q := range a.queue[a.head:] {
		if q.b.gen == q.gen {
			live = append(live, q)
		}
	}
	clear(a.queue[len(live):])
	a.queue, a.head = live, 0
}

// Flush closes every open batch ([TriggerFlush]), in the order the batches were opened.
func (a *Accumulator[E]) Flush() {
	for _, q := range a.queue[a.head:] {
		if q.b.gen == q.gen {
			a.close(q.b, TriggerFlush)
		}
	}
	clear(a.queue)
	a.queue, a.head = a.queue[:0], 0
}

// TakeReady appends the closed batches, in the order they closed, to dst and returns it; the
// accumulator forgets them.
func (a *Accumulator[E]) TakeReady(dst []Batch[E]) []Batch[E] {
	dst = append(dst, a.ready...)
	clear(a.ready)
	a.ready = a.ready[:0]
	return dst
}

// Pending returns the number of items in open batches.
func (a *Accumulator[E]) Pending() int { return a.items }

// OpenBatches returns the number of open batches (keys with at least one item).
func (a *Accumulator[E]) OpenBatches() int { return len(a.open) }
