package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

var (
	nopHandler = pipeline.HandlerFunc[int](func(context.Context, *pipeline.Message[int]) error { return nil })
	nopBatch   = pipeline.BatchHandlerFunc[int](func(context.Context, []pipeline.Message[int], pipeline.BatchInfo) error { return nil })
)

// validOptions returns options that pass validation, for the table to break one way at a time.
func validOptions() pipeline.Options[int] {
	return pipeline.Options[int]{
		Producer:   pipelinetest.NewProducer[int](),
		Processors: []pipeline.ProcessorOptions[int]{{Handler: nopHandler}},
		Batchers:   map[string]pipeline.BatcherOptions[int]{"db": {Handler: nopBatch}},
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name   string
		modify func(o *pipeline.Options[int])
		want   []string // every problem, by field path and message
	}{
		{"valid", func(o *pipeline.Options[int]) {}, nil},
		{"no producer", func(o *pipeline.Options[int]) { o.Producer = nil }, []string{"Producer: required"}},
		{"negative producer concurrency", func(o *pipeline.Options[int]) { o.ProducerConcurrency = -1 }, []string{"ProducerConcurrency: must be >= 0, got -1"}},
		{"rate limit", func(o *pipeline.Options[int]) { o.RateLimit = pipeline.RateLimit{Messages: -1, Interval: -time.Second} },
			[]string{"RateLimit.Messages: must be >= 0", "RateLimit.Interval: must be >= 0"}},
		{"rate interval without messages", func(o *pipeline.Options[int]) { o.RateLimit.Interval = time.Second },
			[]string{"RateLimit.Messages: must be > 0 when Interval is set"}},
		{"no processors", func(o *pipeline.Options[int]) { o.Processors = nil }, []string{"Processors: at least one processor pool is required"}},
		{"bad processor", func(o *pipeline.Options[int]) {
			o.Processors = []pipeline.ProcessorOptions[int]{{Concurrency: -2, MaxDemand: -1, MinDemand: -1}}
		}, []string{
			"Processors[0].Handler: required",
			"Processors[0].Concurrency: must be >= 0, got -2",
			"Processors[0].MaxDemand: must be >= 0, got -1",
			"Processors[0].MinDemand: must be >= 0, got -1",
		}},
		{"min demand not below max", func(o *pipeline.Options[int]) { o.Processors[0].MaxDemand, o.Processors[0].MinDemand = 10, 10 },
			[]string{"Processors[0].MinDemand: must be < MaxDemand (10), got 10"}},
		{"pool names", func(o *pipeline.Options[int]) {
			o.Processors = []pipeline.ProcessorOptions[int]{{Handler: nopHandler}, {Name: "b", Handler: nopHandler}, {Name: "b", Handler: nopHandler}}
		}, []string{
			"Processors[0].Name: required when there are several processor pools",
			`Processors[2].Name: "b" is also the name of Processors[1]`,
		}},
		{"bad batcher", func(o *pipeline.Options[int]) {
			o.Batchers["db"] = pipeline.BatcherOptions[int]{BatchSize: -1, MaxBatchBytes: -1, BatchTimeout: -time.Second, Concurrency: -1}
		}, []string{
			`Batchers["db"].Handler: required`,
			`Batchers["db"].BatchSize: must be > 0, got -1`,
			`Batchers["db"].MaxBatchBytes: must be >= 0, got -1`,
			`Batchers["db"].BatchTimeout: must be > 0, got -1s`,
			`Batchers["db"].Concurrency: must be >= 0, got -1`,
		}},
		{"bytes without size function", func(o *pipeline.Options[int]) {
			o.Batchers["db"] = pipeline.BatcherOptions[int]{Handler: nopBatch, MaxBatchBytes: 10}
		},
			[]string{`Batchers["db"].SizeOf: required when MaxBatchBytes is set`}},
		{"empty batcher name", func(o *pipeline.Options[int]) { o.Batchers[""] = pipeline.BatcherOptions[int]{Handler: nopBatch} },
			[]string{`Batchers[""]: a batcher's name must not be empty`}},
		{"unknown default batcher", func(o *pipeline.Options[int]) { o.DefaultBatcher = "dv" },
			[]string{`DefaultBatcher: "dv" is not one of Batchers ["db"]`}},
		{"negative max in flight", func(o *pipeline.Options[int]) { o.MaxInFlight = -5 }, []string{"MaxInFlight: must be >= 0, got -5"}},
		{"retry fields without retry", func(o *pipeline.Options[int]) {
			o.Failure = pipeline.FailureOptions[int]{Policy: pipeline.HaltOnFailure, MaxRetries: 2, RetryBackoff: time.Second, MaxRetryBackoff: time.Second}
		}, []string{
			"Failure.MaxRetries: only with Policy RetryThenFail (Policy is HaltOnFailure)",
			"Failure.RetryBackoff: only with Policy RetryTransient or RetryThenFail (Policy is HaltOnFailure)",
			"Failure.MaxRetryBackoff: only with Policy RetryTransient or RetryThenFail (Policy is HaltOnFailure)",
		}},
		{"a retry limit under the default policy, which has none", func(o *pipeline.Options[int]) {
			o.Failure = pipeline.FailureOptions[int]{MaxRetries: 5, RetryBackoff: time.Second}
		}, []string{
			"Failure.MaxRetries: only with Policy RetryThenFail (Policy is RetryTransient)",
		}},
		{"backoff without retries", func(o *pipeline.Options[int]) {
			o.Failure = pipeline.FailureOptions[int]{Policy: pipeline.FailWithoutRetry, MaxRetryBackoff: time.Second}
		}, []string{
			"Failure.MaxRetryBackoff: only with Policy RetryTransient or RetryThenFail (Policy is FailWithoutRetry)",
		}},
		{"bad backoff under the default policy", func(o *pipeline.Options[int]) {
			o.Failure = pipeline.FailureOptions[int]{RetryBackoff: -time.Second}
		}, []string{
			"Failure.RetryBackoff: must be >= 0, got -1s",
		}},
		{"bad retry", func(o *pipeline.Options[int]) {
			o.Failure = pipeline.FailureOptions[int]{Policy: pipeline.RetryThenFail, MaxRetries: -1, RetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond}
		}, []string{
			"Failure.MaxRetries: must be >= 0, got -1",
			"Failure.MaxRetryBackoff: must be >= RetryBackoff (1s), got 1ms",
		}},
		{"unknown policy", func(o *pipeline.Options[int]) { o.Failure.Policy = 7 }, []string{"Failure.Policy: unknown policy 7"}},
		{"negative shutdown timeout", func(o *pipeline.Options[int]) { o.ShutdownTimeout = -time.Second }, []string{"ShutdownTimeout: must be >= 0, got -1s"}},
		{"everything at once", func(o *pipeline.Options[int]) {
			o.Producer = nil
			o.Processors[0].Handler = nil
			o.Batchers["db"] = pipeline.BatcherOptions[int]{Handler: nopBatch, BatchTimeout: -1}
			o.ShutdownTimeout = -1
		}, []string{
			"Producer: required",
			"Processors[0].Handler: required",
			`Batchers["db"].BatchTimeout: must be > 0, got -1ns`,
			"ShutdownTimeout: must be >= 0, got -1ns",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.modify(&o)
			p, err := pipeline.New(o)
			if tt.want == nil {
				if err != nil || p == nil {
					t.Fatalf("New: %v, want no error", err)
				}
				return
			}
			if p != nil {
				t.Errorf("New returned a pipeline along with the error")
			}
			var oe *pipeline.OptionsError
			if !errors.As(err, &oe) {
				t.Fatalf("New: %v (%T), want *OptionsError", err, err)
			}
			var got []string
			for _, p := range oe.Problems {
				got = append(got, p.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n got  %q\n want %q", got, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error text %q lacks %q", err, w)
				}
			}
			if err2 := o.Validate(); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Validate: %v, want the same as New: %v", err2, err)
			}
		})
	}
}

func TestSetRateLimitRejectsBadLimits(t *testing.T) {
	p, err := pipeline.New(validOptions())
	if err != nil {
		t.Fatal(err)
	}
	err = p.SetRateLimit(pipeline.RateLimit{Messages: -3})
	var oe *pipeline.OptionsError
	if !errors.As(err, &oe) || len(oe.Problems) != 1 || oe.Problems[0].Field != "RateLimit.Messages" {
		t.Fatalf("SetRateLimit(-3): %v, want an OptionsError about RateLimit.Messages", err)
	}
	if got := p.RateLimit(); got != (pipeline.RateLimit{}) {
		t.Errorf("rate limit after a rejected change: %+v, want none", got)
	}
	if err := p.SetRateLimit(pipeline.RateLimit{Messages: 5}); err != nil {
		t.Fatal(err)
	}
	if got := p.RateLimit(); got != (pipeline.RateLimit{Messages: 5, Interval: time.Second}) {
		t.Errorf("rate limit: %+v, want 5 per 1s (the default interval)", got)
	}
}
