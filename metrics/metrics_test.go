package metrics_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-go/sluice/pipeline"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/metrics"
)

func TestNewRegistersOncePerPipeline(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = metrics.New(reg, metrics.Options{Pipeline: "orders"})
	if !errors.Is(err, metrics.ErrAlreadyRegistered) {
		t.Fatalf("second New: %v, want ErrAlreadyRegistered", err)
	}
	if !strings.Contains(err.Error(), `"orders"`) {
		t.Errorf("error %q does not name the pipeline", err)
	}
	// Another pipeline shares the registry.
	if _, err := metrics.New(reg, metrics.Options{Pipeline: "payments"}); err != nil {
		t.Fatalf("New for another pipeline: %v", err)
	}
	// Prometheus wants one set of label names per metric name in a registry: extra constant
	// labels must be the same on every Metrics of a registry.
	if _, err := metrics.New(reg, metrics.Options{Pipeline: "audit", ConstLabels: prometheus.Labels{"stream": "a"}}); err == nil {
		t.Error("New with other constant label names on the same registry: no error")
	} else if errors.Is(err, metrics.ErrAlreadyRegistered) {
		t.Errorf("New with other constant label names: %v, should not be ErrAlreadyRegistered", err)
	}
	reg2 := prometheus.NewRegistry()
	for _, stream := range []string{"a", "b"} {
		if _, err := metrics.New(reg2, metrics.Options{Pipeline: "orders", ConstLabels: prometheus.Labels{"stream": stream}}); err != nil {
			t.Fatalf("New for stream %s: %v", stream, err)
		}
	}
	if !m.Unregister() {
		t.Fatal("Unregister: false, want true")
	}
	if _, err := metrics.New(reg, metrics.Options{Pipeline: "orders"}); err != nil {
		t.Fatalf("New after Unregister: %v", err)
	}
	if _, err := metrics.New(nil, metrics.Options{}); err == nil || !strings.Contains(err.Error(), "Registerer") {
		t.Errorf("New(nil): %v, want an error naming the Registerer", err)
	}
}

func TestNewDefaultName(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.Options{}); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) == 0 {
		t.Fatal("nothing gathered")
	}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "sluice_") {
			t.Errorf("metric %s lacks the sluice_ prefix", f.GetName())
		}
		for _, m := range f.GetMetric() {
			var found bool
			for _, l := range m.GetLabel() {
				if l.GetName() == "pipeline" {
					found = l.GetValue() == "pipeline"
				}
			}
			if !found {
				t.Errorf("%s: no pipeline=\"pipeline\" label", f.GetName())
			}
		}
	}
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		opts metrics.Options
		want []string
	}{
		{"reserved label", metrics.Options{ConstLabels: prometheus.Labels{"pipeline": "x"}}, []string{`Options.ConstLabels["pipeline"]`}},
		{"bad label name", metrics.Options{ConstLabels: prometheus.Labels{"1x": "x"}}, []string{`Options.ConstLabels["1x"]`}},
		{"bad label value", metrics.Options{ConstLabels: prometheus.Labels{"x": "\xff"}}, []string{`Options.ConstLabels["x"]`}},
		{"bad pipeline", metrics.Options{Pipeline: "\xff"}, []string{"Options.Pipeline"}},
		{"buckets", metrics.Options{DurationBuckets: []float64{1, 1}, SizeBuckets: []float64{3, 2}}, []string{"Options.DurationBuckets", "Options.SizeBuckets"}},
		{"every problem at once", metrics.Options{Pipeline: "\xff", ConstLabels: prometheus.Labels{"1x": "x", "pipeline": "y"}, SizeBuckets: []float64{3, 2}},
			[]string{"Options.Pipeline", `Options.ConstLabels["1x"]`, `Options.ConstLabels["pipeline"]`, "Options.SizeBuckets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metrics.New(prometheus.NewRegistry(), tt.opts)
			var oe *pipeline.OptionsError
			if !errors.As(err, &oe) || len(oe.Problems) != len(tt.want) {
				t.Fatalf("error %v, want a *pipeline.OptionsError with %d problems", err, len(tt.want))
			}
			for i, w := range tt.want {
				if oe.Problems[i].Field != w {
					t.Errorf("problem %d is %v, want field %s", i, oe.Problems[i], w)
				}
			}
		})
	}
}

// Handler serves what New registered on a NewRegistry, with the runtime collectors.
func TestHandlerServesRegistry(t *testing.T) {
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "served"})
	if err != nil {
		t.Fatal(err)
	}
	m.Produced(pipeline.ProducedEvent{Messages: 7})
	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`sluice_messages_produced_total{pipeline="served"} 7`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Fatalf("scrape lacks %q", want)
		}
	}
}
