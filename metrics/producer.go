package metrics

// producerMetrics are the Durable Streams pipeline producer's collectors.
type producerMetrics struct{}

func newProducerMetrics(f *factory) *producerMetrics { return &producerMetrics{} }
