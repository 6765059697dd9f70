package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/source/durablestreams"
)

var _ durablestreams.ProducerObserver = (*Metrics)(nil)

// StatsSource is what [Metrics.WatchProducer] polls: a *durablestreams.Producer[T] of any T.
type StatsSource interface {
	// Stats returns a snapshot of the producer's progress; it must be safe for concurrent
	// use and cheap, as it is called on every scrape.
	Stats() durablestreams.ProducerStats
}

type producerMetrics struct {
	chunks         prometheus.Counter
	messages       prometheus.Counter
	decodeFailures prometheus.Counter
	commits        prometheus.Counter
	lastCommit     prometheus.Gauge
	savesOK        prometheus.Counter
	savesErr       prometheus.Counter
	saveDuration   prometheus.Histogram
	gone           prometheus.Counter
	stats          *producerStatsCollector
}

func newProducerMetrics(f *factory) *producerMetrics {
	saves := f.counterVec("sluice_ds_checkpoint_saves_total",
		`Saves of the committed offset to the checkpoint store, by result ("ok" or "error").`, "result")
	m := &producerMetrics{
		chunks: f.counter("sluice_ds_producer_chunks_total",
			"Responses (or SSE batches) the pipeline producer read and handed out in full."),
		messages: f.counter("sluice_ds_producer_messages_total",
			"Messages the pipeline producer handed to the pipeline, failed decodes included."),
		decodeFailures: f.counter("sluice_ds_producer_decode_failures_total",
			"Messages the pipeline producer could not decode (handed out as failed messages)."),
		commits: f.counter("sluice_ds_producer_commits_total",
			"Advances of the committed offset (coalesced by the checkpoint interval)."),
		lastCommit: f.gauge("sluice_ds_producer_last_commit_timestamp_seconds",
			"Unix time of the last advance of the committed offset."),
		savesOK:  saves.WithLabelValues("ok"),
		savesErr: saves.WithLabelValues("error"),
		saveDuration: f.histogram("sluice_ds_checkpoint_save_duration_seconds",
			"Duration of saves to the checkpoint store, failed ones included.", f.durations),
		gone: f.counter("sluice_ds_producer_gone_total",
			"Times a 410 Gone made the pipeline producer resume from the earliest retained offset."),
		stats: newProducerStatsCollector(f.labels),
	}
	f.add(m.stats)
	return m
}

// ProducerChunk implements durablestreams.ProducerObserver: it counts the chunk.
func (m *Metrics) ProducerChunk(durablestreams.ProducerChunkEvent) {
	m.producer.chunks.Inc()
}

// ProducerMessages implements durablestreams.ProducerObserver: it counts the messages handed
// to the pipeline and their decode failures.
func (m *Metrics) ProducerMessages(e durablestreams.ProducerMessagesEvent) {
	p := m.producer
	if e.Messages > 0 {
		p.messages.Add(float64(e.Messages))
	}
	if e.DecodeFailures > 0 {
		p.decodeFailures.Add(float64(e.DecodeFailures))
	}
}

// Committed implements durablestreams.ProducerObserver: it counts the advance and records
// its time.
func (m *Metrics) Committed(durablestreams.CommitEvent) {
	m.producer.commits.Inc()
	m.producer.lastCommit.Set(float64(time.Now().UnixNano()) / 1e9)
}

// CheckpointSaved implements durablestreams.ProducerObserver: it counts the save by result
// and observes its duration.
func (m *Metrics) CheckpointSaved(e durablestreams.CheckpointEvent) {
	p := m.producer
	if e.Err != nil {
		p.savesErr.Inc()
	} else {
		p.savesOK.Inc()
	}
	p.saveDuration.Observe(e.Duration.Seconds())
}

// Gone implements durablestreams.ProducerObserver: it counts the resume.
func (m *Metrics) Gone(durablestreams.GoneEvent) {
	m.producer.gone.Inc()
}

// WatchProducer makes every scrape poll s.Stats() for the producer's lag gauges:
// sluice_ds_producer_at_tail, sluice_ds_producer_pending_messages and
// sluice_ds_producer_oldest_pending_seconds. Until it is called those gauges are absent. A
// later call replaces s; nil stops the polling. It is safe for concurrent use and does not
// block; s.Stats runs on the scraping goroutine.
func (m *Metrics) WatchProducer(s StatsSource) {
	m.producer.stats.set(s)
}

// producerStatsCollector reads a producer's Stats at scrape time.
type producerStatsCollector struct {
	src     atomic.Pointer[StatsSource]
	atTail  *prometheus.Desc
	pending *prometheus.Desc
	oldest  *prometheus.Desc
}

func newProducerStatsCollector(labels prometheus.Labels) *producerStatsCollector {
	return &producerStatsCollector{
		atTail: prometheus.NewDesc("sluice_ds_producer_at_tail",
			"1 when the pipeline producer's last chunk reached the stream's tail, else 0.", nil, labels),
		pending: prometheus.NewDesc("sluice_ds_producer_pending_messages",
			"Messages the pipeline producer fetched that are not yet finished.", nil, labels),
		oldest: prometheus.NewDesc("sluice_ds_producer_oldest_pending_seconds",
			"Age of the oldest chunk not yet committed; 0 when every chunk read is committed.", nil, labels),
	}
}

func (c *producerStatsCollector) set(s StatsSource) {
	if s == nil {
		c.src.Store(nil)
		return
	}
	c.src.Store(&s)
}

// Describe implements prometheus.Collector.
func (c *producerStatsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.atTail
	ch <- c.pending
	ch <- c.oldest
}

// Collect implements prometheus.Collector.
func (c *producerStatsCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.src.Load()
	if src == nil {
		return
	}
	st := (*src).Stats()
	var tail float64
	if st.AtTail {
		tail = 1
	}
	ch <- prometheus.MustNewConstMetric(c.atTail, prometheus.GaugeValue, tail)
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, st.OldestPending.Seconds())
}
