package metrics

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sluice-go/sluice/internal/optcheck"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrAlreadyRegistered is wrapped by the error [New] returns when the registry already holds
// the collectors of a [Metrics] with the same pipeline name and constant labels.
var ErrAlreadyRegistered = errors.New("metrics: already registered")

// DefaultDurationBuckets are the buckets of every duration histogram unless
// [Options.DurationBuckets] is set, in seconds: from half a millisecond to a minute (reads
// that long-poll can wait tens of seconds for their response headers).
var DefaultDurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// DefaultSizeBuckets are the buckets of the batch size histogram unless
// [Options.SizeBuckets] is set, in messages.
var DefaultSizeBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

// Options configures [New]. The zero value is valid.
type Options struct {
	// Pipeline is the value of the constant label "pipeline" on every metric: the name the
	// pipeline was given in pipeline.Options.Name. Default: "pipeline" (the pipeline's
	// default name).
	Pipeline string
	// ConstLabels are further constant labels on every metric, such as the stream's name.
	// They must not be named "pipeline". Default: none.
	ConstLabels prometheus.Labels
	// DurationBuckets are the upper bounds, in seconds, of every duration histogram.
	// Default: [DefaultDurationBuckets].
	DurationBuckets []float64
	// SizeBuckets are the upper bounds, in messages, of the batch size histogram.
	// Default: [DefaultSizeBuckets].
	SizeBuckets []float64
}

// validate returns every problem of o at once, each naming its Go field path, as a
// *pipeline.OptionsError (the project's one vocabulary of option errors).
func (o *Options) validate() error {
	c := optcheck.New("metrics", nil)
	if !utf8.ValidString(o.Pipeline) {
		c.Bad("Options.Pipeline", "must be valid UTF-8")
	}
	for _, name := range slices.Sorted(maps.Keys(o.ConstLabels)) {
		field := fmt.Sprintf("Options.ConstLabels[%q]", name)
		switch value := o.ConstLabels[name]; {
		case !utf8.ValidString(value):
			c.Bad(field, "value must be valid UTF-8")
		case name == "pipeline":
			c.Bad(field, "reserved, set Pipeline instead")
		case !validLabelName(name):
			c.Bad(field, "invalid label name")
		}
	}
	if p := checkBuckets(o.DurationBuckets); p != "" {
		c.Bad("Options.DurationBuckets", "%s", p)
	}
	if p := checkBuckets(o.SizeBuckets); p != "" {
		c.Bad("Options.SizeBuckets", "%s", p)
	}
	return c.Err()
}

func checkBuckets(b []float64) string {
	for i := 1; i < len(b); i++ {
		if !(b[i] > b[i-1]) {
			return fmt.Sprintf("must be strictly increasing, got %v then %v", b[i-1], b[i])
		}
	}
	return ""
}

// validLabelName reports whether s is a Prometheus label name that is not reserved.
func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// Metrics is the set of collectors of one pipeline, its Durable Streams client and its
// Durable Streams producer. It implements [pipeline.Observer], [durablestreams.Observer] and
// [durablestreams.ProducerObserver]: pass it as pipeline.Options.Observer, to
// [durablestreams.WithObserver] and as durablestreams.ProducerOptions.Observer, and give the
// producer to [Metrics.WatchProducer] for its lag gauges. It also implements
// [durablestreams.SubscriptionObserver], for durablestreams.SubscriptionOptions.Observer.
// Its methods are safe for concurrent use, never block, and allocate nothing once a label
// value (a stage name, an HTTP status, a subscription id) has been seen.
type Metrics struct {
	reg      prometheus.Registerer
	all      []prometheus.Collector
	pipeline *pipelineMetrics
	client   *clientMetrics
	producer *producerMetrics
	subs     *subscriptionMetrics
}

// New creates the collectors of [Metrics] and registers them on reg, all at once: either
// every collector is registered or none is. reg is typically a *prometheus.Registry; New
// never uses the global default registry unless reg is prometheus.DefaultRegisterer. It
// returns an error naming the field for invalid options, and one wrapping
// [ErrAlreadyRegistered] when reg already holds the metrics of the same pipeline name (and
// constant labels). Several pipelines of different names can share one registry.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: New: the Registerer is nil")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Pipeline == "" {
		opts.Pipeline = "pipeline"
	}
	if opts.DurationBuckets == nil {
		opts.DurationBuckets = DefaultDurationBuckets
	}
	if opts.SizeBuckets == nil {
		opts.SizeBuckets = DefaultSizeBuckets
	}
	labels := prometheus.Labels{"pipeline": opts.Pipeline}
	for k, v := range opts.ConstLabels {
		labels[k] = v
	}
	f := factory{labels: labels, durations: opts.DurationBuckets, sizes: opts.SizeBuckets}
	m := &Metrics{reg: reg}
	m.pipeline = newPipelineMetrics(&f)
	m.client = newClientMetrics(&f)
	m.producer = newProducerMetrics(&f)
	m.subs = newSubscriptionMetrics(&f)
	m.all = f.all
	if err := reg.Register(collectorSet(m.all)); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil, fmt.Errorf("%w: the metrics of pipeline %q (constant labels %v) are already on this registry; give each pipeline its own name, or Unregister the old Metrics first", ErrAlreadyRegistered, opts.Pipeline, labels)
		}
		return nil, fmt.Errorf("metrics: registering the metrics of pipeline %q: %w", opts.Pipeline, err)
	}
	return m, nil
}

// Unregister removes the collectors from the registry New registered them on, and reports
// whether they were there. The Metrics can still be called; its values are no longer
// exported.
func (m *Metrics) Unregister() bool {
	return m.reg.Unregister(collectorSet(m.all))
}

// Collectors returns the Metrics' collectors, for a caller that registers them elsewhere too
// (another registry). The slice is a copy.
func (m *Metrics) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector(nil), m.all...)
}

// collectorSet registers several collectors as one, so that registration is all or nothing.
type collectorSet []prometheus.Collector

func (s collectorSet) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s {
		c.Describe(ch)
	}
}

func (s collectorSet) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s {
		c.Collect(ch)
	}
}

// factory builds collectors with the Metrics' constant labels and buckets and remembers them.
type factory struct {
	labels    prometheus.Labels
	durations []float64
	sizes     []float64
	all       []prometheus.Collector
}

func (f *factory) add(c prometheus.Collector) { f.all = append(f.all, c) }

func (f *factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: f.labels})
	f.add(c)
	return c
}

func (f *factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: f.labels}, labels)
	f.add(c)
	return c
}

func (f *factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: f.labels})
	f.add(g)
	return g
}

func (f *factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: f.labels}, labels)
	f.add(g)
	return g
}

func (f *factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: f.labels, Buckets: buckets})
	f.add(h)
	return h
}

func (f *factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: f.labels, Buckets: buckets}, labels)
	f.add(h)
	return h
}
