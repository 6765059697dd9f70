package producer_test

import (
	"slices"
	"testing"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
	"github.com/sluice-go/sluice/producer"
	"github.com/sluice-go/sluice/producer/producertest"
)

// conformanceInput is the input of the conformance fixtures: distinct values.
func conformanceInput() []int {
	in := make([]int, 20)
	for i := range in {
		in[i] = 1000 + i
	}
	return in
}

func TestChanConformance(t *testing.T) {
	t.Run("Closed", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Ordered: true, Concurrent: true},
			func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
				in := conformanceInput()
				ch := make(chan int, len(in))
				for _, v := range in {
					ch <- v
				}
				close(ch)
				return producertest.Fixture[int]{Producer: producer.FromChan(ch, a), Input: in}
			})
	})
	t.Run("Open", func(t *testing.T) { // endless: nothing more ever arrives, nothing closes it
		producertest.TestProducer(t, producertest.Features{Endless: true, Ordered: true, Concurrent: true},
			func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
				in := conformanceInput()
				ch := make(chan int, len(in))
				for _, v := range in {
					ch <- v
				}
				return producertest.Fixture[int]{Producer: producer.FromChan(ch, a), Input: in}
			})
	})
}

func TestSeqConformance(t *testing.T) {
	producertest.TestProducer(t, producertest.Features{Ordered: true, Closer: true, Concurrent: true},
		func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
			in := conformanceInput()
			return producertest.Fixture[int]{Producer: producer.Seq(slices.Values(in), a), Input: in}
		})
}

func TestSliceConformance(t *testing.T) {
	t.Run("Acknowledged", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Ordered: true, Concurrent: true},
			func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
				in := conformanceInput()
				return producertest.Fixture[int]{Producer: producer.Slice(in, a), Input: in}
			})
	})
	t.Run("NoAcknowledger", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Ordered: true, Acks: producertest.AcksNone, Concurrent: true},
			func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
				in := conformanceInput()
				return producertest.Fixture[int]{Producer: producer.Slice(in, nil), Input: in}
			})
	})
}

func TestGenerateConformance(t *testing.T) {
	producertest.TestProducer(t, producertest.Features{Ordered: true, Concurrent: true},
		func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
			const n = 20
			var in []int
			for i := range n {
				in = append(in, i*i)
			}
			g := producer.Generate(func(i int) (int, bool) { return i * i, i < n }, a)
			return producertest.Fixture[int]{Producer: g, Input: in}
		})
}

// The test kit's producer is a producer of the project too: the one package pipelinetest
// keeps for tests. Its messages are acknowledged to each push's Delivery.
func TestPipelinetestProducerConformance(t *testing.T) {
	fixture := func(close bool) func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
		return func(t testing.TB, a ack.Acknowledger) producertest.Fixture[int] {
			in := conformanceInput()
			p := pipelinetest.NewProducer[int]()
			d := p.Push(in...)
			if close {
				p.Close()
			}
			return producertest.Fixture[int]{Producer: p, Input: in, Acknowledged: func() int {
				r := d.Result()
				return len(r.Successful) + len(r.Failed) + r.Duplicates
			}}
		}
	}
	t.Run("Closed", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Ordered: true, Acks: producertest.AcksOwn, Concurrent: true}, fixture(true))
	})
	t.Run("Open", func(t *testing.T) {
		producertest.TestProducer(t, producertest.Features{Endless: true, Ordered: true, Acks: producertest.AcksOwn, Concurrent: true}, fixture(false))
	})
}
