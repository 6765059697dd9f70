package pipeline

import (
	"strconv"
	"time"
)

// Observer receives a pipeline's events: what was produced, processed, batched, retried and
// acknowledged, and the steps of a drain. Package metrics implements it with Prometheus
// collectors; tests implement it to count. Embed [NopObserver] to implement only some methods.
//
// Events are per group of messages, never per message: one per Produce call, one per chunk a
// processor handled, one per batch, one per acknowledgement group. Methods are called
// synchronously on the pipeline's goroutines, several at once, so they must be safe for
// concurrent use and fast (no I/O, no blocking). Events are passed by value and the pipeline
// allocates nothing to report them. Durations are measured only when an Observer is set.
type Observer interface {
	// Produced is called after each Produce call that returned messages.
	Produced(ProducedEvent)
	// Processed is called after a processor handled a chunk of messages.
	Processed(ProcessedEvent)
	// BatchHandled is called after a batch handler returned (retries included).
	BatchHandled(BatchEvent)
	// Retried is called before a group of transiently failed messages goes through its
	// handler again under [RetryTransient] or [RetryThenFail].
	Retried(RetryEvent)
	// Acked is called after a group of messages was acknowledged (all their acknowledgers
	// told).
	Acked(AckEvent)
	// Drain is called as a drain goes through its steps.
	Drain(DrainEvent)
}

// NopObserver implements [Observer] with methods that do nothing; embed it to implement only
// the events you need.
type NopObserver struct{}

// Produced does nothing.
func (NopObserver) Produced(ProducedEvent) {}

// Processed does nothing.
func (NopObserver) Processed(ProcessedEvent) {}

// BatchHandled does nothing.
func (NopObserver) BatchHandled(BatchEvent) {}

// Retried does nothing.
func (NopObserver) Retried(RetryEvent) {}

// Acked does nothing.
func (NopObserver) Acked(AckEvent) {}

// Drain does nothing.
func (NopObserver) Drain(DrainEvent) {}

// ProducedEvent describes one Produce call that returned messages.
type ProducedEvent struct {
	Pipeline string
	// Messages is how many messages the call returned; Demand how many it was asked for.
	Messages, Demand int
	// Duration is how long the call took (including any wait for input).
	Duration time.Duration
	// InFlight is the number of messages fetched and not yet acknowledged, these included.
	InFlight int
}

// ProcessedEvent describes a chunk of messages handled by one processor.
type ProcessedEvent struct {
	Pipeline  string
	Processor string
	// Messages is the chunk's size; Failed how many of them failed in this processor (after
	// retries), not counting those that arrived failed.
	Messages, Failed int
	// Duration is how long the chunk's handlers took, retries and backoff included.
	Duration time.Duration
}

// BatchEvent describes a handled batch.
type BatchEvent struct {
	Pipeline string
	// Info is the batch's: batcher, key, size, bytes, trigger, partition.
	Info BatchInfo
	// Failed is how many of the batch's messages failed (after retries).
	Failed int
	// Duration is how long the batch handler took, retries and backoff included.
	Duration time.Duration
}

// RetryEvent describes failed messages about to go through their handler again.
type RetryEvent struct {
	Pipeline string
	// Stage is the processor pool's or the batcher's name.
	Stage string
	// Messages is how many messages are retried; Attempt is the attempt about to be made (2
	// for the first retry).
	Messages, Attempt int
	// Backoff is the wait before the attempt.
	Backoff time.Duration
	// Err is the error of the first of the messages: why they are retried.
	Err error
}

// AckEvent describes a group of messages acknowledged at once (one batch, or the messages a
// processor finished at once).
type AckEvent struct {
	Pipeline string
	// Successful and Failed count the group's messages by outcome.
	Successful, Failed int
	// Halted is how many of the failures were reported with Halt set.
	Halted int
	// InFlight is the number of messages still fetched and not acknowledged after this group.
	InFlight int
}

// DrainStep is a step of a drain, in the order they happen.
type DrainStep int

const (
	// DrainStarted: the pipeline starts draining; the producer is told.
	DrainStarted DrainStep = iota + 1
	// DrainProducersStopped: no Produce call is running or will be made.
	DrainProducersStopped
	// DrainProcessorsFinished: every processor pool finished its queue.
	DrainProcessorsFinished
	// DrainBatchersFlushed: every batcher flushed its partial batches.
	DrainBatchersFlushed
	// DrainBatchProcessorsFinished: every batch was handled and acknowledged.
	DrainBatchProcessorsFinished
	// DrainTimedOut: the shutdown timeout passed; the rest is abandoned.
	DrainTimedOut
	// DrainDone: every goroutine ended; the producer's Close (if any) is next.
	DrainDone
)

// String returns the step's name, such as "producers stopped".
func (s DrainStep) String() string {
	switch s {
	case DrainStarted:
		return "started"
	case DrainProducersStopped:
		return "producers stopped"
	case DrainProcessorsFinished:
		return "processors finished"
	case DrainBatchersFlushed:
		return "batchers flushed"
	case DrainBatchProcessorsFinished:
		return "batch processors finished"
	case DrainTimedOut:
		return "timed out"
	case DrainDone:
		return "done"
	}
	return "DrainStep(" + strconv.Itoa(int(s)) + ")"
}

// DrainEvent describes a step of a drain.
type DrainEvent struct {
	Pipeline string
	Step     DrainStep
	// Elapsed is the time since the drain started.
	Elapsed time.Duration
	// InFlight is the number of messages fetched and not yet acknowledged at this step.
	InFlight int
}
