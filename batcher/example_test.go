package batcher_test

import (
	"fmt"
	"time"

	"github.com/sluice-go/sluice/batcher"
)

// An Accumulator is driven step by step with explicit times: here batches of 3 per key, or
// whatever a key has 5 seconds after its first item.
func Example() {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	acc := batcher.New[string](batcher.Config{Size: 3, Timeout: 5 * time.Second}, nil)
	for i, ev := range []string{"eu:1", "us:2", "eu:3", "eu:4", "us:5", "eu:6"} {
		key := ev[:2]
		acc.Add(key, &ev, 0, start.Add(time.Duration(i)*time.Second))
	}
	deadline, _ := acc.NextDeadline() // us: 5s after its first item; the stage arms its one timer for it
	fmt.Println("next deadline:", deadline.Sub(start))
	acc.Expire(deadline)
	acc.Flush()
	for _, b := range acc.TakeReady(nil) {
		fmt.Println(b.Key, b.Items, b.Trigger)
	}
	// Output:
	// next deadline: 6s
	// eu [eu:1 eu:3 eu:4] size
	// us [us:2 us:5] timeout
	// eu [eu:6] flush
}
