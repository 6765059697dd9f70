package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer"
)

// A real pipeline: ten messages; the processor fails 0 and 5 on every attempt, the batcher
// fails 7 on every attempt, each failure is retried once; batches of 3.
func TestPipelineMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	errBad := errors.New("bad")
	p, err := pipeline.New(pipeline.Options[int]{
		Name:     "orders",
		Producer: producer.Slice(ids, nil),
		Processors: []pipeline.ProcessorOptions[int]{{
			Name:        "parse",
			Concurrency: 2,
			Handler: pipeline.HandlerFunc[int](func(_ context.Context, msg *pipeline.Message[int]) error {
				if msg.Data%5 == 0 {
					return errBad
				}
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[int]{
			"db": {
				BatchSize:    3,
				BatchTimeout: time.Hour, // only size and the final flush close batches
				Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, batch []pipeline.Message[int], _ pipeline.BatchInfo) error {
					for i := range batch {
						if batch[i].Data == 7 {
							batch[i].Fail(errBad)
						}
					}
					return nil
				}),
			},
		},
		DefaultBatcher: "db",
		Failure:        pipeline.FailureOptions[int]{Policy: pipeline.RetryThenFail, MaxRetries: 1, RetryBackoff: time.Millisecond},
		Observer:       m,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := scrape(t, reg)
	expect(t, got, map[string]float64{
		"sluice_messages_produced_total":                           10,
		"sluice_messages_processed_total{stage=parse}":             10,
		"sluice_messages_failed_total{stage=parse}":                2,
		"sluice_messages_retried_total{stage=parse}":               2,
		"sluice_messages_processed_total{stage=db}":                8,
		"sluice_messages_failed_total{stage=db}":                   1,
		"sluice_messages_retried_total{stage=db}":                  1,
		"sluice_retries_total{stage=db}":                           1,
		"sluice_batches_total{stage=db,trigger=size}":              2,
		"sluice_batches_total{stage=db,trigger=flush}":             1,
		"sluice_batches_total{stage=db,trigger=timeout}":           0,
		"sluice_batches_total{stage=db,trigger=bytes}":             0,
		"sluice_batch_size_messages_count{stage=db}":               3,
		"sluice_batch_size_messages_sum{stage=db}":                 8,
		"sluice_batch_duration_seconds_count{stage=db}":            3,
		"sluice_messages_acked_total":                              10,
		"sluice_messages_acked_failed_total":                       3,
		"sluice_messages_halted_total":                             0,
		"sluice_messages_in_flight":                                0,
		"sluice_drain_steps_total{step=started}":                   1,
		"sluice_drain_steps_total{step=producers_stopped}":         1,
		"sluice_drain_steps_total{step=processors_finished}":       1,
		"sluice_drain_steps_total{step=batchers_flushed}":          1,
		"sluice_drain_steps_total{step=batch_processors_finished}": 1,
		"sluice_drain_steps_total{step=done}":                      1,
		"sluice_drain_steps_total{step=timed_out}":                 0,
	})
	// Chunking depends on scheduling: only bounds can be checked.
	if n := got["sluice_retries_total{stage=parse}"]; n < 1 || n > 2 {
		t.Errorf("sluice_retries_total{stage=parse} = %v, want 1 or 2", n)
	}
	if n := got["sluice_handler_duration_seconds_count{stage=parse}"]; n < 1 || n > 10 {
		t.Errorf("sluice_handler_duration_seconds_count{stage=parse} = %v, want 1..10 chunks", n)
	}
	if n := got["sluice_produce_duration_seconds_count"]; n < 1 || n > 10 {
		t.Errorf("sluice_produce_duration_seconds_count = %v, want 1..10 calls", n)
	}
	// Every drain step after the start happens no earlier than the one before it.
	if a, b := got["sluice_drain_step_elapsed_seconds{step=started}"], got["sluice_drain_step_elapsed_seconds{step=done}"]; a > b {
		t.Errorf("drain elapsed: started %v > done %v", a, b)
	}
}

// A halting pipeline counts its halted messages.
func TestPipelineMetricsHalt(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "halt"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Options[int]{
		Name:     "halt",
		Producer: producer.Slice([]int{1}, nil),
		Processors: []pipeline.ProcessorOptions[int]{{
			Handler: pipeline.HandlerFunc[int](func(context.Context, *pipeline.Message[int]) error { return errors.New("poison") }),
		}},
		Failure:  pipeline.FailureOptions[int]{Policy: pipeline.HaltOnFailure},
		Observer: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	var he *pipeline.HaltError
	if err := p.Run(context.Background()); !errors.As(err, &he) {
		t.Fatalf("Run: %v, want a *HaltError", err)
	}
	expect(t, scrape(t, reg), map[string]float64{
		"sluice_messages_produced_total":              1,
		"sluice_messages_failed_total{stage=default}": 1,
		"sluice_messages_acked_total":                 1,
		"sluice_messages_acked_failed_total":          1,
		"sluice_messages_halted_total":                1,
		"sluice_messages_in_flight":                   0,
		"sluice_drain_steps_total{step=done}":         1,
	})
}
