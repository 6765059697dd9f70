package batcher_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluice-go/sluice/batcher"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at returns t0 plus d, to write times as offsets.
func at(d time.Duration) time.Time { return t0.Add(d) }

type closed struct {
	key     string
	items   []int
	bytes   int
	trigger batcher.Trigger
}

func (c closed) String() string {
	return fmt.Sprintf("%s%v/%d/%v", c.key, c.items, c.bytes, c.trigger)
}

func take(a *batcher.Accumulator[int]) []closed {
	var out []closed
	for _, b := range a.TakeReady(nil) {
		out = append(out, closed{b.Key, b.Items, b.Bytes, b.Trigger})
	}
	return out
}

func add(a *batcher.Accumulator[int], key string, v, bytes int, now time.Time) {
	a.Add(key, &v, bytes, now)
}

func sameBatches(t *testing.T, got []closed, want ...closed) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("closed batches\n got %v\nwant %v", got, want)
	}
}

func TestSizeClosesABatchPerKey(t *testing.T) {
	a := batcher.New[int](batcher.Config{Size: 3}, nil)
	for i := range 7 {
		add(a, "k", i, 0, t0)
	}
	sameBatches(t, take(a),
		closed{"k", []int{0, 1, 2}, 0, batcher.TriggerSize},
		closed{"k", []int{3, 4, 5}, 0, batcher.TriggerSize},
	)
	if a.Pending() != 1 || a.OpenBatches() != 1 {
		t.Fatalf("Pending %d, OpenBatches %d; want 1 and 1", a.Pending(), a.OpenBatches())
	}
	if got := take(a); got != nil {
		t.Fatalf("TakeReady twice returned %v the second time, want nothing", got)
	}
}

func TestKeysNeverShareABatch(t *testing.T) {
	a := batcher.New[int](batcher.Config{Size: 2}, nil)
	for i, k := range []string{"a", "b", "a", "c", "b", "c", "a"} {
		add(a, k, i, 0, t0)
	}
	sameBatches(t, take(a),
		closed{"a", []int{0, 2}, 0, batcher.TriggerSize},
		closed{"b", []int{1, 4}, 0, batcher.TriggerSize},
		closed{"c", []int{3, 5}, 0, batcher.TriggerSize},
	)
	if a.Pending() != 1 || a.OpenBatches() != 1 {
		t.Fatalf("Pending %d, OpenBatches %d; want 1 and 1 (key a)", a.Pending(), a.OpenBatches())
	}
}

func TestBytesCloseBeforeTheLimitIsPassed(t *testing.T) {
	a := batcher.New[int](batcher.Config{Size: 100, MaxBytes: 10}, nil)
	add(a, "k", 0, 4, t0)
	add(a, "k", 1, 4, t0)
	add(a, "k", 2, 4, t0) // 12 > 10: closes [0 1], starts the next batch
	sameBatches(t, take(a), closed{"k", []int{0, 1}, 8, batcher.TriggerBytes})
	add(a, "k", 3, 6, t0) // exactly 10: closes at once
	sameBatches(t, take(a), closed{"k", []int{2, 3}, 10, batcher.TriggerBytes})
	add(a, "k", 4, 1, t0)
	add(a, "k", 5, 25, t0) // alone larger than the limit: closes the open batch, then its own
	sameBatches(t, take(a),
		closed{"k", []int{4}, 1, batcher.TriggerBytes},
		closed{"k", []int{5}, 25, batcher.TriggerBytes},
	)
	if a.Pending() != 0 || a.OpenBatches() != 0 {
		t.Fatalf("Pending %d, OpenBatches %d; want 0 and 0", a.Pending(), a.OpenBatches())
	}
}

func TestSizeWinsOverBytesWhenBothAreReached(t *testing.T) {
	a := batcher.New[int](batcher.Config{Size: 2, MaxBytes: 10}, nil)
	add(a, "k", 0, 5, t0)
	add(a, "k", 1, 5, t0)
	sameBatches(t, take(a), closed{"k", []int{0, 1}, 10, batcher.TriggerSize})
}

func TestTimeoutRunsFromEachBatchsFirstItem(t *testing.T) {
	a := batcher.New[int](batcher.Config{Size: 3, Timeout: 10 * time.Second}, nil)
	if _, ok := a.NextDeadline(); ok {
		t.Fatal("an empty accumulator has a deadline")
	}
	add(a, "a", 0, 0, at(0))
	add(a, "b", 1, 0, at(3*time.Second))
	add(a, "a", 2, 0, at(4*time.Second)) // does not move a's deadline
	if d, ok := a.NextDeadline(); !ok || !d.Equal(at(10*time.Second)) {
		t.Fatalf("NextDeadline = %v, %v; want t0+10s (key a's first item)", d, ok)
	}
	a.Expire(at(10*time.Second - time.Nanosecond))
	sameBatches(t, take(a))
	a.Expire(at(10 * time.Second))
	sameBatches(t, take(a), closed{"a", []int{0, 2}, 0, batcher.TriggerTimeout})
	if d, ok := a.NextDeadline(); !ok || !d.Equal(at(13*time.Second)) {
		t.Fatalf("NextDeadline = %v, %v; want t0+13s (key b)", d, ok)
	}
	add(a, "a", 3, 0, at(11*time.Second)) // a new batch of a, with a deadline of its own
	a.Expire(at(20 * time.Second))
	sameBatches(t, take(a), closed{"b", []int{1}, 0, batcher.TriggerTimeout})
	if d, ok := a.NextDeadline(); !ok || !d.Equal(at(21*time.Second)) {
		t.Fatalf("NextDeadline = %v, %v; want t0+21s (key a's second batch)", d, ok)
	}
	a.Expire(at(time.Hour))
	sameBatches(t, take(a), closed{"a", []int{3}, 0, batcher.TriggerTimeout})
	if _, ok := a.NextDeadline(); ok {
		t.Fatal("NextDeadline with no open batch")
	}
}

func TestABatchClosedBySizeTakesItsTimerWithIt(t *testing.T) {
	a := batcher.New[int](batcher.Config{Size: 2, Timeout: 10 * time.Second}, nil)
	add(a, "k", 0, 0, at(0))
	add(a, "k", 1, 0, at(time.Second)) // closes on size
	add(a, "k", 2, 0, at(5*time.Second))
	if d, ok := a.NextDeadline(); !ok || !d.Equal(at(15*time.Second)) {
		t.Fatalf("NextDeadline = %v, %v; want t0+15s, from the new batch's first item", d, ok)
	}
	a.Expire(at(14 * time.Second))
	sameBatches(t, take(a), closed{"k", []int{0, 1}, 0, batcher.TriggerSize})
}

func TestFlushClosesEveryOpenBatchInOpeningOrder(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("timeout=", timeout), func(t *testing.T) {
			a := batcher.New[int](batcher.Config{Size: 10, Timeout: timeout}, nil)
			add(a, "c", 0, 1, t0)
			add(a, "a", 1, 1, t0)
			add(a, "b", 2, 1, t0)
			add(a, "a", 3, 1, t0)
			a.Flush()
			sameBatches(t, take(a),
				closed{"c", []int{0}, 1, batcher.TriggerFlush},
				closed{"a", []int{1, 3}, 2, batcher.TriggerFlush},
				closed{"b", []int{2}, 1, batcher.TriggerFlush},
			)
			if a.Pending() != 0 || a.OpenBatches() != 0 {
				t.Fatalf("after Flush: Pending %d, OpenBatches %d", a.Pending(), a.OpenBatches())
			}
			if _, ok := a.NextDeadline(); ok {
				t.Fatal("a deadline after Flush")
			}
			a.Flush()
			sameBatches(t, take(a))
			add(a, "a", 4, 1, t0) // usable after a flush
			a.Flush()
			sameBatches(t, take(a), closed{"a", []int{4}, 1, batcher.TriggerFlush})
		})
	}
}

func TestAddCopiesTheItem(t *testing.T) {
	a := batcher.New[int](batcher.Config{Size: 2}, nil)
	v := 1
	a.Add("k", &v, 0, t0)
	v = 2
	a.Add("k", &v, 0, t0)
	sameBatches(t, take(a), closed{"k", []int{1, 2}, 0, batcher.TriggerSize})
}

func TestAllocUsedForEachNewBatch(t *testing.T) {
	calls := 0
	a := batcher.New(batcher.Config{Size: 2}, func() []int {
		calls++
		return make([]int, 5, 8) // a recycled slice that still has a length
	})
	for i := range 5 {
		add(a, "k", i, 0, t0)
	}
	a.Flush()
	sameBatches(t, take(a),
		closed{"k", []int{0, 1}, 0, batcher.TriggerSize},
		closed{"k", []int{2, 3}, 0, batcher.TriggerSize},
		closed{"k", []int{4}, 0, batcher.TriggerFlush},
	)
	if calls != 3 {
		t.Fatalf("alloc called %d times for 3 batches", calls)
	}
}

func TestNewRefusesANonPositiveSize(t *testing.T) {
	for _, size := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with Size %d did not panic", size)
				}
			}()
			batcher.New[int](batcher.Config{Size: size}, nil)
		}()
	}
}

func TestTriggerString(t *testing.T) {
	for tr, want := range map[batcher.Trigger]string{
		batcher.TriggerSize: "size", batcher.TriggerBytes: "bytes", batcher.TriggerTimeout: "timeout",
		batcher.TriggerFlush: "flush", 0: "Trigger(0)", 42: "Trigger(42)",
	} {
		if got := tr.String(); got != want {
			t.Errorf("Trigger(%d).String() = %q, want %q", uint8(tr), got, want)
		}
	}
}

func TestPartition(t *testing.T) {
	if got := batcher.Partition("", 8); got != 0 {
		t.Errorf("Partition(\"\", 8) = %d, want 0", got)
	}
	if got := batcher.Partition("x", 1); got != 0 {
		t.Errorf("Partition(\"x\", 1) = %d, want 0", got)
	}
	seen := make([]int, 8)
	for i := range 1000 {
		k := fmt.Sprint("key-", i)
		p := batcher.Partition(k, 8)
		if p < 0 || p >= 8 {
			t.Fatalf("Partition(%q, 8) = %d, out of range", k, p)
		}
		if again := batcher.Partition(k, 8); again != p {
			t.Fatalf("Partition(%q, 8) = %d then %d", k, p, again)
		}
		seen[p]++
	}
	if slices.Contains(seen, 0) {
		t.Errorf("1000 keys over 8 partitions left one empty: %v", seen)
	}
}

// TestWarmAccumulatorAllocatesNothing checks the hot path: once batches are recycled and
// the accumulator's own structures have grown, adding, closing and taking batches
// allocates nothing.
func TestWarmAccumulatorAllocatesNothing(t *testing.T) {
	free := make(chan []int, 16)
	a := batcher.New(batcher.Config{Size: 100, MaxBytes: 1000, Timeout: time.Second}, func() []int {
		select {
		case s := <-free:
			return s
		default:
			return make([]int, 0, 100)
		}
	})
	keys := []string{"a", "b", "c", "d"}
	var ready []batcher.Batch[int]
	now := t0
	round := func() {
		for i := range 1000 {
			v := i
			a.Add(keys[i%len(keys)], &v, 3, now)
		}
		now = now.Add(2 * time.Second)
		a.Expire(now)
		a.NextDeadline()
		ready = a.TakeReady(ready[:0])
		for _, b := range ready {
			select {
			case free <- b.Items[:0]:
			default:
			}
		}
	}
	round()
	if n := testing.AllocsPerRun(20, round); n != 0 {
		t.Fatalf("%v allocations per 1000 items", n)
	}
}

func BenchmarkAdd(b *testing.B) {
	free := make(chan []int, 16)
	a := batcher.New(batcher.Config{Size: 100, Timeout: time.Second}, func() []int {
		select {
		case s := <-free:
			return s
		default:
			return make([]int, 0, 100)
		}
	})
	var ready []batcher.Batch[int]
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.Add("k", &i, 0, t0)
		if i%100 == 99 {
			ready = a.TakeReady(ready[:0])
			for _, rb := range ready {
				free <- rb.Items[:0]
			}
		}
	}
}
