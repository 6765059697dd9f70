package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/dsclient"
)

var (
	_ dsclient.Observer       = (*Metrics)(nil)
	_ dsclient.OffsetObserver = (*Metrics)(nil)
)

type clientMetrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	inFlight        *prometheus.GaugeVec
	retries         *prometheus.CounterVec
	reconnects      *prometheus.CounterVec
	offsetsRejected *prometheus.CounterVec
	rejectedModes   *children[dsclient.LiveMode, prometheus.Counter]

	chunks      prometheus.Counter
	readItems   prometheus.Counter
	readBytes   prometheus.Counter
	readResumes prometheus.Counter

	consumerBatches  *prometheus.CounterVec
	consumerItems    prometheus.Counter
	consumerBytes    prometheus.Counter
	consumerDuration prometheus.Histogram
	consumerOK       prometheus.Counter
	consumerErr      prometheus.Counter

	writerBatches   *prometheus.CounterVec
	writerItems     prometheus.Counter
	writerBytes     prometheus.Counter
	writerDuration  prometheus.Histogram
	writerAcked     prometheus.Counter
	writerDuplicate prometheus.Counter
	writerErr       prometheus.Counter

	ops       *children[dsclient.Op, *opMetrics]
	liveModes *children[dsclient.LiveMode, prometheus.Counter]
}

// opMetrics are one operation's pre-bound collectors.
type opMetrics struct {
	duration prometheus.Observer
	inFlight prometheus.Gauge
	retries  prometheus.Counter
	statuses *children[int, prometheus.Counter]
}

func newClientMetrics(f *factory) *clientMetrics {
	m := &clientMetrics{
		requests: f.counterVec("sluice_ds_requests_total",
			`Durable Streams HTTP attempts, by operation and status ("none" when no response was received).`, "op", "status"),
		requestDuration: f.histogramVec("sluice_ds_request_duration_seconds",
			"Duration of Durable Streams HTTP attempts until their response headers (or failure).", f.durations, "op"),
		inFlight: f.gaugeVec("sluice_ds_requests_in_flight",
			"Durable Streams HTTP attempts sent and not yet answered.", "op"),
		retries: f.counterVec("sluice_ds_retries_total",
			"Durable Streams requests sent again after a transient failure.", "op"),
		reconnects: f.counterVec("sluice_ds_reconnects_total",
			"Reads that reconnected: an SSE response ended, a body was cut or went silent, and the read resumed.", "live"),
		offsetsRejected: f.counterVec("sluice_ds_offsets_rejected_total",
			"Responses (or SSE control events) whose next offset went backwards or did not advance while carrying data: never followed, the read asked again.", "live"),

		chunks: f.counter("sluice_ds_chunks_total",
			"Chunks (responses, or SSE data batches) that readers finished."),
		readItems: f.counter("sluice_ds_read_items_total",
			"JSON items read from chunks."),
		readBytes: f.counter("sluice_ds_read_bytes_total",
			"Body bytes read from chunks, after decompression."),
		readResumes: f.counter("sluice_ds_read_resumes_total",
			"Times a chunk's body was cut and its read resumed."),

		consumerBatches: f.counterVec("sluice_ds_consumer_batches_total",
			`Calls of a Consumer's handler, by result ("ok" or "error").`, "result"),
		consumerItems: f.counter("sluice_ds_consumer_items_total",
			"Items handed to a Consumer's handler."),
		consumerBytes: f.counter("sluice_ds_consumer_bytes_total",
			"Bytes handed to a Consumer's handler."),
		consumerDuration: f.histogram("sluice_ds_consumer_batch_duration_seconds",
			"Duration of a Consumer's handler calls.", f.durations),

		writerBatches: f.counterVec("sluice_ds_writer_batches_total",
			`Writer batches by outcome: "acked", "duplicate" (an earlier attempt of the writer's own batch was stored and its answer lost) or "error".`, "result"),
		writerItems: f.counter("sluice_ds_writer_items_total",
			"Items the Writer stored, once each (a duplicate's items were stored by its lost attempt; failures are not counted)."),
		writerBytes: f.counter("sluice_ds_writer_bytes_total",
			"Body bytes of the batches the Writer stored, once each (failures are not counted)."),
		writerDuration: f.histogram("sluice_ds_writer_batch_duration_seconds",
			"Duration of Writer batches from the first send to their outcome, retries included.", f.durations),
	}
	m.consumerOK = m.consumerBatches.WithLabelValues("ok")
	m.consumerErr = m.consumerBatches.WithLabelValues("error")
	m.writerAcked = m.writerBatches.WithLabelValues("acked")
	m.writerDuplicate = m.writerBatches.WithLabelValues("duplicate")
	m.writerErr = m.writerBatches.WithLabelValues("error")
	m.ops = newChildren(func(op dsclient.Op) *opMetrics {
		name := string(op)
		if name == "" {
			name = "unknown"
		}
		return &opMetrics{
			duration: m.requestDuration.WithLabelValues(name),
			inFlight: m.inFlight.WithLabelValues(name),
			retries:  m.retries.WithLabelValues(name),
			statuses: newChildren(func(status int) prometheus.Counter {
				return m.requests.WithLabelValues(name, statusLabel(status))
			}),
		}
	})
	m.liveModes = newChildren(func(l dsclient.LiveMode) prometheus.Counter {
		return m.reconnects.WithLabelValues(l.String())
	})
	m.rejectedModes = newChildren(func(l dsclient.LiveMode) prometheus.Counter {
		return m.offsetsRejected.WithLabelValues(l.String())
	})
	return m
}

func statusLabel(status int) string {
	if status == 0 {
		return "none"
	}
	return strconv.Itoa(status)
}

// RequestStart implements dsclient.Observer: the attempt counts as in flight.
func (m *Metrics) RequestStart(e dsclient.RequestStartEvent) {
	m.client.ops.get(e.Op).inFlight.Inc()
}

// RequestDone implements dsclient.Observer: it counts the attempt by operation and
// status and observes its duration.
func (m *Metrics) RequestDone(e dsclient.RequestDoneEvent) {
	o := m.client.ops.get(e.Op)
	o.inFlight.Dec()
	o.statuses.get(e.Status).Inc()
	o.duration.Observe(e.Duration.Seconds())
}

// Retry implements dsclient.Observer: it counts the retry by operation.
func (m *Metrics) Retry(e dsclient.RetryEvent) {
	m.client.ops.get(e.Op).retries.Inc()
}

// Reconnect implements dsclient.Observer: it counts the reconnect by live mode.
func (m *Metrics) Reconnect(e dsclient.ReconnectEvent) {
	m.client.liveModes.get(e.Live).Inc()
}

// OffsetRejected implements dsclient.OffsetObserver: it counts a response whose next offset a
// read refused to follow.
func (m *Metrics) OffsetRejected(e dsclient.OffsetRejectedEvent) {
	m.client.rejectedModes.get(e.Live).Inc()
}

// Chunk implements dsclient.Observer: it counts the chunk, its items, bytes and
// resumes.
func (m *Metrics) Chunk(e dsclient.ChunkEvent) {
	c := m.client
	c.chunks.Inc()
	if e.Items > 0 {
		c.readItems.Add(float64(e.Items))
	}
	if e.Bytes > 0 {
		c.readBytes.Add(float64(e.Bytes))
	}
	if e.Resumed > 0 {
		c.readResumes.Add(float64(e.Resumed))
	}
}

// ConsumerBatch implements dsclient.Observer: it counts the handler call by result,
// its items and bytes, and observes its duration.
func (m *Metrics) ConsumerBatch(e dsclient.ConsumerBatchEvent) {
	c := m.client
	if e.Err != nil {
		c.consumerErr.Inc()
	} else {
		c.consumerOK.Inc()
	}
	if e.Items > 0 {
		c.consumerItems.Add(float64(e.Items))
	}
	if e.Bytes > 0 {
		c.consumerBytes.Add(float64(e.Bytes))
	}
	c.consumerDuration.Observe(e.Duration.Seconds())
}

// WriterBatch implements dsclient.Observer: it counts the batch by outcome, the items
// and bytes of those the server stored as new, and observes its duration.
func (m *Metrics) WriterBatch(e dsclient.WriterBatchEvent) {
	c := m.client
	switch {
	case e.Err != nil:
		c.writerErr.Inc()
	case e.Duplicate:
		c.writerDuplicate.Inc()
	default:
		c.writerAcked.Inc()
	}
	if e.Err == nil { // a duplicate is a batch of this writer stored by an attempt whose answer was lost
		if e.Items > 0 {
			c.writerItems.Add(float64(e.Items))
		}
		if e.Bytes > 0 {
			c.writerBytes.Add(float64(e.Bytes))
		}
	}
	c.writerDuration.Observe(e.Duration.Seconds())
}
