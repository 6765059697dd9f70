package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

// TestAttemptCountsPerHandler: a message that needed a retry in a processor starts again at
// attempt 1 in the next handler; the attempts of one handler are not carried into another.
func TestAttemptCountsPerHandler(t *testing.T) {
	var seenByPool2, seenByBatch []int
	prod := pipelinetest.NewProducer[int]()
	p := mustNew(t, pipeline.Options[int]{
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[int]{
			{Name: "first", Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				if m.Attempt() < 3 {
					return errors.New("not yet")
				}
				return nil
			})},
			{Name: "second", Concurrency: 1, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				seenByPool2 = append(seenByPool2, m.Attempt())
				if m.Attempt() < 2 {
					return errors.New("not yet")
				}
				return nil
			})},
		},
		Batchers: map[string]pipeline.BatcherOptions[int]{"b": {BatchSize: 1, Handler: pipeline.BatchHandlerFunc[int](
			func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
				seenByBatch = append(seenByBatch, b[0].Attempt())
				return nil
			})}},
		DefaultBatcher: "b",
		Failure:        pipeline.FailureOptions[int]{Policy: pipeline.RetryThenFail, RetryBackoff: time.Microsecond},
	})
	run := pipelinetest.Start(t, p)
	res := wait(t, prod.Push(7))
	prod.Close()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(res.Successful) != 1 {
		t.Fatalf("result %+v, want the message successful", res)
	}
	if len(seenByPool2) != 2 || seenByPool2[0] != 1 || seenByPool2[1] != 2 {
		t.Errorf("second pool saw attempts %v, want [1 2]", seenByPool2)
	}
	if len(seenByBatch) != 1 || seenByBatch[0] != 1 {
		t.Errorf("batch handler saw attempts %v, want [1]", seenByBatch)
	}
}
