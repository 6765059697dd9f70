package main

import (
	"context"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// prepareSluice builds the workload as a Sluice pipeline: a producer that
// makes the orders in the message slice the pipeline hands it (the checker is
// every message's acknowledger, the id its ack.Ref), a pool of 4 processors,
// and one batcher of 100 / 50 ms whose handler sums each batch. Everything
// else is at its default.
func prepareSluice(n int, work workFunc, chk *checker) (func(context.Context) error, error) {
	p, err := pipeline.New(pipeline.Options[Event]{
		Name:     "core",
		Producer: &sluiceProducer{n: int64(n), chk: chk},
		Processors: []pipeline.ProcessorOptions[Event]{{
			Name:        "work",
			Concurrency: processors,
			Handler: pipeline.HandlerFunc[Event](func(_ context.Context, m *pipeline.Message[Event]) error {
				if !process(&m.Data, work) {
					return errBadOrder
				}
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[Event]{
			"sum": {
				BatchSize:    batchSize,
				BatchTimeout: batchTimeout,
				Handler: pipeline.BatchHandlerFunc[Event](func(_ context.Context, b []pipeline.Message[Event], _ pipeline.BatchInfo) error {
					var sum int64
					for i := range b {
						sum += b[i].Data.Cents
					}
					chk.batch(len(b), sum)
					return nil
				}),
			},
		},
		DefaultBatcher: "sum",
	})
	if err != nil {
		return nil, err
	}
	return p.Run, nil
}

// sluiceProducer makes the orders on demand, in the pipeline's slice.
// Produce is called from one goroutine at a time (producer concurrency 1).
type sluiceProducer struct {
	next, n int64
	chk     *checker
}

func (p *sluiceProducer) Produce(_ context.Context, msgs []pipeline.Message[Event]) (int, error) {
	i := 0
	for ; i < len(msgs) && p.next < p.n; i++ {
		id := p.next
		p.next++
		msgs[i] = pipeline.NewMessage(Event{ID: id, Payload: payload(id)}, ack.Acknowledger(p.chk), ack.Ref{N: uint64(id)})
	}
	if p.next == p.n {
		return i, pipeline.ErrEndOfInput
	}
	return i, nil
}
