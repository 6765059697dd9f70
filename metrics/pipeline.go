package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/pipeline"
)

var _ pipeline.Observer = (*Metrics)(nil)

// maxTrigger and maxDrainStep bound the pre-resolved arrays; other values take a slow path.
const (
	maxTrigger   = int(pipeline.TriggerFlush)
	maxDrainStep = int(pipeline.DrainDone)
)

type pipelineMetrics struct {
	produced        prometheus.Counter
	produceDuration prometheus.Histogram
	inFlight        prometheus.Gauge
	acked           prometheus.Counter
	ackFailed       prometheus.Counter
	halted          prometheus.Counter

	processed       *prometheus.CounterVec
	failed          *prometheus.CounterVec
	handlerDuration *prometheus.HistogramVec
	retried         *prometheus.CounterVec
	retries         *prometheus.CounterVec

	batches       *prometheus.CounterVec
	batchSize     *prometheus.HistogramVec
	batchBytes    *prometheus.CounterVec
	batchDuration *prometheus.HistogramVec

	drainSteps   *prometheus.CounterVec
	drainElapsed *prometheus.GaugeVec
	drain        [maxDrainStep + 1]drainStepMetrics

	processors *children[string, *processorMetrics]
	batchers   *children[string, *batcherMetrics]
	stages     *children[string, *retryMetrics]
}

type processorMetrics struct {
	processed prometheus.Counter
	failed    prometheus.Counter
	duration  prometheus.Observer
}

type batcherMetrics struct {
	processed prometheus.Counter
	failed    prometheus.Counter
	size      prometheus.Observer
	bytes     prometheus.Counter
	duration  prometheus.Observer
	triggers  [maxTrigger + 1]prometheus.Counter
	name      string
}

type retryMetrics struct {
	messages prometheus.Counter
	retries  prometheus.Counter
}

type drainStepMetrics struct {
	count   prometheus.Counter
	elapsed prometheus.Gauge
}

func newPipelineMetrics(f *factory) *pipelineMetrics {
	m := &pipelineMetrics{
		produced: f.counter("sluice_messages_produced_total",
			"Messages returned by the pipeline's producer."),
		produceDuration: f.histogram("sluice_produce_duration_seconds",
			"Duration of the producer's Produce calls that returned messages, waits for input included.", f.durations),
		inFlight: f.gauge("sluice_messages_in_flight",
			"Messages fetched from the producer and not yet acknowledged."),
		acked: f.counter("sluice_messages_acked_total",
			"Messages acknowledged, successful or failed."),
		ackFailed: f.counter("sluice_messages_acked_failed_total",
			"Messages acknowledged as failed."),
		halted: f.counter("sluice_messages_halted_total",
			"Failed messages acknowledged with Halt set (they stop the committed offset)."),

		processed: f.counterVec("sluice_messages_processed_total",
			"Messages handled by a stage: a processor pool or a batcher's batch processors.", "stage"),
		failed: f.counterVec("sluice_messages_failed_total",
			"Messages that failed in a stage (after retries), not counting those that arrived failed.", "stage"),
		handlerDuration: f.histogramVec("sluice_handler_duration_seconds",
			"Duration of a processor handling one chunk of messages, retries and backoff included.", f.durations, "stage"),
		retried: f.counterVec("sluice_messages_retried_total",
			"Failed messages sent through their handler again.", "stage"),
		retries: f.counterVec("sluice_retries_total",
			"Retries: groups of failed messages sent through their handler again.", "stage"),

		batches: f.counterVec("sluice_batches_total",
			"Batches handled, by batcher and by what closed them (size, bytes, timeout, flush).", "stage", "trigger"),
		batchSize: f.histogramVec("sluice_batch_size_messages",
			"Number of messages in each handled batch.", f.sizes, "stage"),
		batchBytes: f.counterVec("sluice_batch_bytes_total",
			"Sum of the batches' byte sizes as measured by the batcher's SizeOf (0 without one).", "stage"),
		batchDuration: f.histogramVec("sluice_batch_duration_seconds",
			"Duration of a batch handler call, retries and backoff included.", f.durations, "stage"),

		drainSteps: f.counterVec("sluice_drain_steps_total",
			"Steps reached by the pipeline's drains.", "step"),
		drainElapsed: f.gaugeVec("sluice_drain_step_elapsed_seconds",
			"Time from the start of the last drain to each of its steps.", "step"),
	}
	for s := 1; s <= maxDrainStep; s++ {
		name := stepLabel(pipeline.DrainStep(s))
		m.drain[s] = drainStepMetrics{count: m.drainSteps.WithLabelValues(name), elapsed: m.drainElapsed.WithLabelValues(name)}
	}
	m.processors = newChildren(func(stage string) *processorMetrics {
		return &processorMetrics{
			processed: m.processed.WithLabelValues(stage),
			failed:    m.failed.WithLabelValues(stage),
			duration:  m.handlerDuration.WithLabelValues(stage),
		}
	})
	m.batchers = newChildren(func(stage string) *batcherMetrics {
		b := &batcherMetrics{
			processed: m.processed.WithLabelValues(stage),
			failed:    m.failed.WithLabelValues(stage),
			size:      m.batchSize.WithLabelValues(stage),
			bytes:     m.batchBytes.WithLabelValues(stage),
			duration:  m.batchDuration.WithLabelValues(stage),
			name:      stage,
		}
		for t := 1; t <= maxTrigger; t++ {
			b.triggers[t] = m.batches.WithLabelValues(stage, pipeline.Trigger(t).String())
		}
		return b
	})
	m.stages = newChildren(func(stage string) *retryMetrics {
		return &retryMetrics{messages: m.retried.WithLabelValues(stage), retries: m.retries.WithLabelValues(stage)}
	})
	return m
}

// stepLabel turns a drain step's name into a label value: "producers stopped" becomes
// "producers_stopped".
func stepLabel(s pipeline.DrainStep) string {
	b := []byte(s.String())
	for i, c := range b {
		if c == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Produced implements pipeline.Observer: it counts the messages and the call's duration,
// and adds the messages to the in-flight gauge.
func (m *Metrics) Produced(e pipeline.ProducedEvent) {
	p := m.pipeline
	p.produced.Add(float64(e.Messages))
	p.produceDuration.Observe(e.Duration.Seconds())
	p.inFlight.Add(float64(e.Messages))
}

// Processed implements pipeline.Observer: it counts the chunk's messages and failures under
// the processor pool's name, and observes the chunk's duration.
func (m *Metrics) Processed(e pipeline.ProcessedEvent) {
	s := m.pipeline.processors.get(e.Processor)
	s.processed.Add(float64(e.Messages))
	if e.Failed > 0 {
		s.failed.Add(float64(e.Failed))
	}
	s.duration.Observe(e.Duration.Seconds())
}

// BatchHandled implements pipeline.Observer: it counts the batch by batcher and trigger,
// its messages, failures and bytes, and observes its size and duration.
func (m *Metrics) BatchHandled(e pipeline.BatchEvent) {
	b := m.pipeline.batchers.get(e.Info.Batcher)
	if t := int(e.Info.Trigger); t >= 1 && t <= maxTrigger {
		b.triggers[t].Inc()
	} else {
		m.pipeline.batches.WithLabelValues(b.name, e.Info.Trigger.String()).Inc()
	}
	b.processed.Add(float64(e.Info.Size))
	if e.Failed > 0 {
		b.failed.Add(float64(e.Failed))
	}
	if e.Info.Bytes > 0 {
		b.bytes.Add(float64(e.Info.Bytes))
	}
	b.size.Observe(float64(e.Info.Size))
	b.duration.Observe(e.Duration.Seconds())
}

// Retried implements pipeline.Observer: it counts the retry and its messages under the
// stage's name.
func (m *Metrics) Retried(e pipeline.RetryEvent) {
	s := m.pipeline.stages.get(e.Stage)
	s.retries.Inc()
	s.messages.Add(float64(e.Messages))
}

// Acked implements pipeline.Observer: it counts acknowledged, failed and halted messages,
// and takes them out of the in-flight gauge.
func (m *Metrics) Acked(e pipeline.AckEvent) {
	p := m.pipeline
	n := e.Successful + e.Failed
	p.acked.Add(float64(n))
	if e.Failed > 0 {
		p.ackFailed.Add(float64(e.Failed))
	}
	if e.Halted > 0 {
		p.halted.Add(float64(e.Halted))
	}
	p.inFlight.Sub(float64(n))
}

// Drain implements pipeline.Observer: it counts the step and records the time since the
// drain started. At the last step (done) the in-flight gauge is set to the pipeline's own
// count, which is above zero only when a timed-out drain abandoned messages.
func (m *Metrics) Drain(e pipeline.DrainEvent) {
	p := m.pipeline
	if s := int(e.Step); s >= 1 && s <= maxDrainStep {
		p.drain[s].count.Inc()
		p.drain[s].elapsed.Set(e.Elapsed.Seconds())
	} else {
		step := strconv.Itoa(s)
		p.drainSteps.WithLabelValues(step).Inc()
		p.drainElapsed.WithLabelValues(step).Set(e.Elapsed.Seconds())
	}
	if e.Step == pipeline.DrainDone {
		p.inFlight.Set(float64(e.InFlight))
	}
}
