package gostreams_test

import (
	"testing"
	"time"

	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"
	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/producer/gostreams"
	"github.com/sluice-go/sluice/producer/producertest"
)

// conformanceFlow returns the input of the conformance fixtures (distinct values) and a
// go-streams source of them: a channel source through a one-goroutine map, which keeps
// their order. The channel is closed (a finite flow) unless endless; end closes an endless
// flow's channel, which ends the flow.
func conformanceFlow(endless bool) (in []int, m *flow.Map[int, int], end func()) {
	in = make([]int, 20)
	ch := make(chan any, len(in))
	for i := range in {
		in[i] = 1000 + i
		ch <- i
	}
	end = func() {}
	if endless {
		end = func() { close(ch) }
	} else {
		close(ch)
	}
	m = flow.NewMap(func(i int) int { return 1000 + i }, 1)
	extension.NewChanSource(ch).Via(m)
	return in, m, end
}

func TestSourceConformance(t *testing.T) {
	fixture := func(endless bool) func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
		return func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
			in, m, end := conformanceFlow(endless)
			t.Cleanup(func() { // end the flow, and read what the producer left, so that its goroutines end
				end()
				for range m.Out() {
				}
			})
			return producertest.Fixture[int]{Producer: gostreams.NewSource[int](m, a), Input: in}
		}
	}
	t.Run("Finite", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Ordered: true, Concurrent: true}, fixture(false))
	})
	t.Run("Endless", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Endless: true, Ordered: true, Concurrent: true}, fixture(true))
	})
}

func TestSinkConformance(t *testing.T) {
	fixture := func(endless bool) func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
		return func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
			in, m, end := conformanceFlow(endless)
			// The inlet holds the whole input, so that the flow never waits on a pipeline
			// that stopped before the end.
			sink := gostreams.NewSink[int](len(in), a)
			done := make(chan struct{})
			go func() {
				m.To(sink) // returns once the flow ended and the pipeline closed the sink
				close(done)
			}()
			t.Cleanup(func() { // after the suite's Close of the sink
				end()
				select {
				case <-done:
				case <-time.After(producertest.LeakTimeout):
					t.Errorf("the go-streams flow into the sink did not end")
				}
			})
			return producertest.Fixture[int]{Producer: sink, Input: in}
		}
	}
	t.Run("Finite", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Ordered: true, Closer: true, Concurrent: true}, fixture(false))
	})
	t.Run("Endless", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Endless: true, Ordered: true, Closer: true, Concurrent: true}, fixture(true))
	})
}
