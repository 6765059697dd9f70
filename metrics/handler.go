package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a new, empty Prometheus registry with the Go runtime and process
// collectors registered: a convenience for programs that need no other Prometheus API than
// New and Handler.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return reg
}

// Handler returns an http.Handler serving the metrics of g in the Prometheus exposition
// format, for a /metrics endpoint. g is typically the registry given to New. The handler is
// safe for concurrent use; each request gathers afresh.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
