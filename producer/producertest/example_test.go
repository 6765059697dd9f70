package producertest_test

import (
	"context"
	"sync"
	"testing"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer/producertest"
)

// countdown is a trivial producer: start-1, start-2, …, 0, then the end of input. It is
// safe for concurrent use.
type countdown struct {
	mu   sync.Mutex
	next int
	a    ack.Acknowledger
}

// Produce gives the next numbers, up to len(msgs).
func (c *countdown) Produce(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(msgs) && c.next > 0 {
		c.next--
		msgs[n].Data = c.next
		msgs[n].SetAcknowledger(c.a, ack.Ref{N: uint64(c.next)})
		n++
	}
	if c.next == 0 {
		return n, pipeline.ErrEndOfInput
	}
	return n, nil
}

// countdownFixture is a fresh countdown from 10, acknowledging to the suite's acknowledger.
func countdownFixture(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
	return producertest.Fixture[int]{
		Producer: &countdown{next: 10, a: a},
		Input:    []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
}

// A producer's test runs the suite with the producer's features and a constructor of
// fresh fixtures. The suite needs a *testing.T, so this example shows the call only;
// TestCountdownConformance below makes it.
func ExampleTestProducer() {
	testCountdown := func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Ordered: true, Concurrent: true}, countdownFixture)
	}
	_ = testCountdown
}

func TestCountdownConformance(t *testing.T) {
	producertest.TestProducer(t, producertest.Features{Ordered: true, Concurrent: true}, countdownFixture)
}
