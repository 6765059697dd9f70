package pipelinetest

import (
	"sync"

	"github.com/sluice-go/sluice/pipeline"
)

// Observer is a [pipeline.Observer] that counts every event, for tests. It is safe for
// concurrent use; read it with [Observer.Snapshot].
type Observer struct {
	mu sync.Mutex
	s  Counts
}

// Counts is what an [Observer] has counted.
type Counts struct {
	// Produced messages, and Produce calls that returned some.
	Produced, ProduceCalls int
	// Processed messages (per pool name), and those that failed in a processor.
	Processed       map[string]int
	ProcessedFailed int
	// Batches handled, their messages, failures, and batches per trigger.
	Batches, Batched, BatchFailed int
	Triggers                      map[pipeline.Trigger]int
	// BatchSizes lists every batch's size, in the order handled.
	BatchSizes []int
	// Retried messages (each retry counts).
	Retried int
	// Acked messages by outcome, with how many failures were halting, and acknowledgement
	// groups.
	Successful, Failed, Halted, AckGroups int
	// MaxInFlight is the largest in-flight count reported.
	MaxInFlight int
	// Drain lists the drain steps, in order.
	Drain []pipeline.DrainStep
}

var _ pipeline.Observer = (*Observer)(nil)

// Snapshot returns a copy of the counts so far.
func (o *Observer) Snapshot() Counts {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.s
	c.Processed = make(map[string]int, len(o.s.Processed))
	for k, v := range o.s.Processed {
		c.Processed[k] = v
	}
	c.Triggers = make(map[pipeline.Trigger]int, len(o.s.Triggers))
	for k, v := range o.s.Triggers {
		c.Triggers[k] = v
	}
	c.BatchSizes = append([]int(nil), o.s.BatchSizes...)
	c.Drain = append([]pipeline.DrainStep(nil), o.s.Drain...)
	return c
}

// Produced counts a Produce call.
func (o *Observer) Produced(e pipeline.ProducedEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.s.Produced += e.Messages
	o.s.ProduceCalls++
	o.s.MaxInFlight = max(o.s.MaxInFlight, e.InFlight)
}

// Processed counts a processed chunk.
func (o *Observer) Processed(e pipeline.ProcessedEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.s.Processed == nil {
		o.s.Processed = map[string]int{}
	}
	o.s.Processed[e.Processor] += e.Messages
	o.s.ProcessedFailed += e.Failed
}

// BatchHandled counts a batch.
func (o *Observer) BatchHandled(e pipeline.BatchEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.s.Triggers == nil {
		o.s.Triggers = map[pipeline.Trigger]int{}
	}
	o.s.Batches++
	o.s.Batched += e.Info.Size
	o.s.BatchFailed += e.Failed
	o.s.Triggers[e.Info.Trigger]++
	o.s.BatchSizes = append(o.s.BatchSizes, e.Info.Size)
}

// Retried counts retried messages.
func (o *Observer) Retried(e pipeline.RetryEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.s.Retried += e.Messages
}

// Acked counts an acknowledgement group.
func (o *Observer) Acked(e pipeline.AckEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.s.Successful += e.Successful
	o.s.Failed += e.Failed
	o.s.Halted += e.Halted
	o.s.AckGroups++
}

// Drain records a drain step.
func (o *Observer) Drain(e pipeline.DrainEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.s.Drain = append(o.s.Drain, e.Step)
}
