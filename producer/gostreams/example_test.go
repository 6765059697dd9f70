package gostreams_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer/gostreams"
)

// A go-streams flow ends in a Sink, and a pipeline consumes the sink with demand and
// acknowledgements. To returns once the pipeline has finished every element.
func ExampleSink() {
	in := make(chan any, 4)
	for _, v := range []int{1, 2, 3, 4} {
		in <- v
	}
	close(in)

	sink := gostreams.NewSink[int](0, nil)
	var sum atomic.Int64
	p, err := pipeline.New(pipeline.Options[int]{
		Producer: sink,
		Processors: []pipeline.ProcessorOptions[int]{{
			Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				sum.Add(int64(m.Data))
				return nil
			}),
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error)
	go func() { done <- p.Run(context.Background()) }()

	extension.NewChanSource(in).Via(flow.NewMap(func(x int) int { return 10 * x }, 1)).To(sink)
	fmt.Println(sum.Load(), <-done)
	// Output: 100 <nil>
}

// Any go-streams Source or Flow can be a pipeline's producer.
func ExampleNewSource() {
	in := make(chan any, 3)
	in <- "a"
	in <- "b"
	in <- "c"
	close(in)

	var n atomic.Int64
	p, err := pipeline.New(pipeline.Options[string]{
		Producer: gostreams.NewSource[string](extension.NewChanSource(in), nil),
		Processors: []pipeline.ProcessorOptions[string]{{
			Handler: pipeline.HandlerFunc[string](func(_ context.Context, m *pipeline.Message[string]) error {
				n.Add(int64(len(m.Data)))
				return nil
			}),
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Run(context.Background()), n.Load())
	// Output: <nil> 3
}
