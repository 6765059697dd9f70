package metrics_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
)

// Goroutines reporting at once, first sights of stage names and statuses included, lose no
// count.
func TestConcurrentEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, rounds, stages = 8, 200, 5
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				stage := fmt.Sprintf("s%d", (g+i)%stages)
				m.Processed(pipeline.ProcessedEvent{Processor: stage, Messages: 2, Failed: 1})
				m.RequestDone(dsclient.RequestDoneEvent{Op: dsclient.OpRead, Status: 200 + i%3})
			}
		})
	}
	wg.Wait()
	got := scrape(t, reg)
	var processed, failed, requests float64
	for s := range stages {
		processed += got[fmt.Sprintf("sluice_messages_processed_total{stage=s%d}", s)]
		failed += got[fmt.Sprintf("sluice_messages_failed_total{stage=s%d}", s)]
	}
	for st := 200; st < 203; st++ {
		requests += got[fmt.Sprintf("sluice_ds_requests_total{op=read,status=%d}", st)]
	}
	if want := float64(goroutines * rounds); processed != 2*want || failed != want || requests != want {
		t.Errorf("processed %v, failed %v, requests %v; want %v, %v, %v", processed, failed, requests, 2*want, want, want)
	}
}
