package metrics_test

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// scrape gathers reg and returns every sample as "name{label=value,...}" → value, with the
// labels sorted and the pipeline label left out. A histogram gives its _count and _sum.
func scrape(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				if l.GetName() == "pipeline" {
					continue
				}
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := f.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				name, labels, _ := strings.Cut(key, "{")
				if labels != "" {
					labels = "{" + labels
				}
				out[name+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+labels] = m.GetHistogram().GetSampleSum()
			default:
				t.Fatalf("unexpected metric type %v of %s", f.GetType(), f.GetName())
			}
		}
	}
	return out
}

// expect checks that each sample in want has the given value.
func expect(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: missing; have %s", k, nearby(got, k))
		case v != want[k]:
			t.Errorf("%s = %v, want %v", k, v, want[k])
		}
	}
}

// nearby lists the samples of the same metric name as k, for error messages.
func nearby(got map[string]float64, k string) string {
	name, _, _ := strings.Cut(k, "{")
	var s []string
	for g, v := range got {
		if n, _, _ := strings.Cut(g, "{"); n == name {
			s = append(s, fmt.Sprintf("%s=%v", g, v))
		}
	}
	sort.Strings(s)
	return "[" + strings.Join(s, " ") + "]"
}

// discardLogger keeps examples' output to what they print.
var discardLogger = slog.New(slog.DiscardHandler)
