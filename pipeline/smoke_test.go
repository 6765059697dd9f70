package pipeline_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

func TestSmoke(t *testing.T) {
	const n = 10000
	var next int
	var acked, failed, batched atomic.Int64
	acker := ack.AcknowledgerFunc(func(s []ack.Ref, f []ack.Failure) { acked.Add(int64(len(s))); failed.Add(int64(len(f))) })
	prod := pipeline.ProducerFunc[int](func(ctx context.Context, msgs []pipeline.Message[int]) (int, error) {
		i := 0
		for ; i < len(msgs) && next < n; i++ {
			msgs[i] = pipeline.NewMessage(next, acker, ack.Ref{N: uint64(next)})
			next++
		}
		if next == n {
			return i, pipeline.ErrEndOfInput
		}
		return i, nil
	})
	p, err := pipeline.New(pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{{Handler: pipeline.HandlerFunc[int](func(ctx context.Context, m *pipeline.Message[int]) error {
			m.Data *= 2
			return nil
		})}},
		Batchers: map[string]pipeline.BatcherOptions[int]{"sum": {Handler: pipeline.BatchHandlerFunc[int](func(ctx context.Context, b []pipeline.Message[int], info pipeline.BatchInfo) error {
			batched.Add(int64(len(b)))
			return nil
		})}},
		DefaultBatcher: "sum",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Log(acked.Load(), failed.Load(), batched.Load())
	if acked.Load() != n || batched.Load() != n {
		t.Fatal("mismatch")
	}
}
