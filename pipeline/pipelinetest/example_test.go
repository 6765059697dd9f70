package pipelinetest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

// Push messages, await how each ended, end the input. In a test, run the pipeline with
// pipelinetest.Start(t, p), which stops it and waits for it when the test ends.
func Example() {
	prod := pipelinetest.NewProducer[string]()
	p, err := pipeline.New(pipeline.Options[string]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[string]{{
			Handler: pipeline.HandlerFunc[string](func(_ context.Context, m *pipeline.Message[string]) error {
				if m.Data == "" {
					return pipeline.Permanent(errors.New("empty")) // bad data
				}
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

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := prod.Push("a", "", "c").Wait(ctx)
	fmt.Println(res.Successful, len(res.Failed), res.Failed[0].Index, res.Failed[0].Err, err)

	prod.Close() // end of input: the pipeline drains and Run returns
	fmt.Println(<-done)
	// Output:
	// [a c] 1 1 empty <nil>
	// <nil>
}
