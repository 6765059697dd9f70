//go:build !race

package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// Once a stage name, trigger, operation and status have been seen, events allocate nothing.
func TestEventsAllocateNothing(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry(), metrics.Options{Pipeline: "alloc"})
	if err != nil {
		t.Fatal(err)
	}
	errX := errors.New("x")
	events := func() {
		m.Produced(pipeline.ProducedEvent{Messages: 10, Demand: 10, Duration: time.Millisecond, InFlight: 10})
		m.Processed(pipeline.ProcessedEvent{Processor: "parse", Messages: 10, Failed: 1, Duration: time.Millisecond})
		m.BatchHandled(pipeline.BatchEvent{Info: pipeline.BatchInfo{Batcher: "db", Size: 9, Bytes: 90, Trigger: pipeline.TriggerSize}, Failed: 1, Duration: time.Millisecond})
		m.Retried(pipeline.RetryEvent{Stage: "parse", Messages: 1, Attempt: 2})
		m.Acked(pipeline.AckEvent{Successful: 8, Failed: 2, Halted: 0})
		m.Drain(pipeline.DrainEvent{Step: pipeline.DrainStarted, Elapsed: time.Millisecond})
		m.RequestStart(dsclient.RequestStartEvent{Op: dsclient.OpRead, Method: "GET", Attempt: 1})
		m.RequestDone(dsclient.RequestDoneEvent{Op: dsclient.OpRead, Method: "GET", Attempt: 1, Status: 200, Duration: time.Millisecond})
		m.Retry(dsclient.RetryEvent{Op: dsclient.OpAppend, Attempt: 2, Err: errX})
		m.Reconnect(dsclient.ReconnectEvent{Live: dsclient.LiveSSE})
		m.Chunk(dsclient.ChunkEvent{Items: 3, Bytes: 30})
		m.ConsumerBatch(dsclient.ConsumerBatchEvent{Items: 3, Bytes: 30, Duration: time.Millisecond})
		m.WriterBatch(dsclient.WriterBatchEvent{Items: 3, Bytes: 30, Duration: time.Millisecond})
		m.ProducerChunk(ds.ProducerChunkEvent{Messages: 3, DecodeFailures: 1})
		m.Committed(ds.CommitEvent{Position: ack.Position{Offset: "1", Seq: -1}})
		m.CheckpointSaved(ds.CheckpointEvent{Position: ack.Position{Offset: "1", Seq: -1}, Duration: time.Millisecond})
		m.Gone(ds.GoneEvent{})
	}
	events() // first sight of each label value
	if n := testing.AllocsPerRun(100, events); n != 0 {
		t.Errorf("%v allocations per round of events, want 0", n)
	}
}

// BenchmarkObserver measures the cost of the events a pipeline sends per chunk.
func BenchmarkObserver(b *testing.B) {
	m, err := metrics.New(prometheus.NewRegistry(), metrics.Options{Pipeline: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Produced(pipeline.ProducedEvent{Messages: 10, Duration: time.Millisecond})
			m.Processed(pipeline.ProcessedEvent{Processor: "parse", Messages: 10, Duration: time.Millisecond})
			m.BatchHandled(pipeline.BatchEvent{Info: pipeline.BatchInfo{Batcher: "db", Size: 10, Trigger: pipeline.TriggerSize}, Duration: time.Millisecond})
			m.Acked(pipeline.AckEvent{Successful: 10})
		}
	})
}
